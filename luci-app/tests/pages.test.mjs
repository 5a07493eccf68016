// What every page shares: a banner when airelay refuses the saved configuration (after a Save &
// Apply, the page reloads and shows it wherever the user is), and saves that stage only what
// the user changed. The settings page's DoH canary switch.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Env, text } from './lib/luci.mjs';
import { config, hostHints } from './lib/fixtures.mjs';

const PAGES = [ 'status', 'history', 'settings', 'providers', 'clients' ];
const REFUSED = 'uci: /etc/config/airelay: provider \'openai\' option \'fallback\': no provider section \'anthropic\'';
const RELOAD = '/etc/config/airelay: option dns_ttl: 0 is out of range';

function env(rpc) {
	return new Env({ uci: config, rpc: { 'luci-rpc.getHostHints': hostHints, 'luci.airelay.keys': { keys: {} }, ...rpc } });
}

// banner finds the refusal warning in a rendered page.
function banner(node) {
	const find = (n) => {
		if (n == null || typeof n !== 'object')
			return null;
		if (n.attrs?.id === 'airelay-refused')
			return n;
		for (const c of n.children ?? []) {
			const f = find(c);
			if (f)
				return f;
		}
		return null;
	};
	return find(node);
}

for (const name of PAGES) {
	test(`${name}: a saved config that airelay check refuses is shown in a banner`, async () => {
		const e = env({ 'luci.airelay.status': { running: true }, 'luci.airelay.check': { valid: false, message: REFUSED } });
		const { node } = await e.view(name);
		const b = banner(node);
		assert.ok(b, 'no banner');
		assert.match(b.attrs.class, /alert-message warning/);
		assert.ok(text(b).includes('airelay refuses the saved configuration'), text(b));
		assert.ok(text(b).includes(REFUSED), 'the daemon\'s own words');
		assert.ok(e.calls.some((c) => c.method === 'check'), 'the page asked');
	});

	test(`${name}: a failed reload of the running daemon is shown in a banner`, async () => {
		const e = env({ 'luci.airelay.status': { running: true, config: { generation: 2, last_error: RELOAD } }, 'luci.airelay.check': { valid: true, message: 'ok' } });
		const { node } = await e.view(name);
		const b = banner(node);
		assert.ok(b, 'no banner');
		assert.ok(text(b).includes('The last reload failed') && text(b).includes(RELOAD), text(b));
	});

	// Issue 19.2: the daemon serves the last valid config, or none passed and it refuses the
	// devices the config restricts: every page says so, in the daemon's words.
	test(`${name}: the config state, when not the current one, is shown with the daemon's message`, async () => {
		const msg = 'serving the last valid config from 2026-12-01T10:00:00+01:00; /etc/config/airelay: section \'kid\' option \'schedule\' value \'Mon-Fry 15:00-20:00\': unknown day \'Fry\' (Mon, Tue, Wed, Thu, Fri, Sat, Sun)';
		let e = env({ 'luci.airelay.status': { running: true, config: { generation: 1, state: 'last_valid', message: msg, last_error: 'x' } }, 'luci.airelay.check': { valid: false, message: 'the same, from airelay check' } });
		let b = banner((await e.view(name)).node);
		assert.ok(b, 'no banner');
		assert.match(b.attrs.class, /alert-message warning/);
		assert.equal(b.attrs['data-state'], 'last_valid');
		assert.ok(text(b).includes('does not pass: airelay serves the last valid one') && text(b).includes(msg), text(b));
		assert.ok(!text(b).includes('The last reload failed'), 'said once, by the state');
		assert.ok(text(b).includes('the same, from airelay check'), 'and the saved config\'s refusal');

		const closed = 'no configuration passed: devices it restricts are refused; /etc/config/airelay: section \'main\' option \'tls_listen\' value \':80\': port 80 is below 1024';
		e = env({ 'luci.airelay.status': { running: true, config: { generation: 1, state: 'fail_closed', message: closed } }, 'luci.airelay.check': { valid: false, message: 'x' } });
		b = banner((await e.view(name)).node);
		assert.match(b.attrs.class, /alert-message danger/);
		assert.ok(text(b).includes('devices the configuration restricts are refused until it is corrected') && text(b).includes(closed), text(b));

		// the current config, or a daemon that is not running: no state to report
		for (const st of [ { running: true, config: { state: 'current' } }, { running: true, config: { state: '' } },
			{ running: false, config: { state: 'fail_closed', message: 'stale' } } ]) {
			e = env({ 'luci.airelay.status': st, 'luci.airelay.check': { valid: true } });
			assert.equal(banner((await e.view(name)).node), null, JSON.stringify(st));
		}
	});

	test(`${name}: no banner when the config is accepted, or when the plugin does not answer`, async () => {
		let { node } = await env({ 'luci.airelay.status': { running: true, config: {} }, 'luci.airelay.check': { valid: true } }).view(name);
		assert.equal(banner(node), null);
		({ node } = await env({ 'luci.airelay.status': new Error('x'), 'luci.airelay.check': new Error('x') }).view(name));
		assert.equal(banner(node), null);
	});
}

test('settings: the DoH canary switch, on by default, in the DNS tab', async () => {
	const e = env({});
	await e.view('settings');
	const o = e.maps[0].children[0].children.find((x) => x.option === 'doh_canary');
	assert.equal(o.constructor.name, 'Flag');
	assert.equal(o.tab, 'dns');
	assert.equal(o.default, '1');
	assert.match(o.title, /Tell browsers not to use their own DNS over HTTPS/);
	assert.match(o.description, /use-application-dns\.net with NXDOMAIN while airelay runs/);
	o.formvalues.main = '0';
	await e.maps[0].save();
	assert.deepEqual(e.uci.changes('airelay'), [ [ 'set', 'airelay.main.doh_canary', '0' ] ]);
});

for (const name of [ 'settings', 'clients' ]) {
	test(`${name}: saving an untouched page stages nothing`, async () => {
		const e = env({});
		await e.view(name);
		await e.maps[0].save();
		assert.deepEqual(e.uci.changes('airelay'), []);
	});
}

test('clients: an untouched Edit dialog stages nothing; a schedule and a quota are one change each', async () => {
	const e = env({});
	await e.view('clients');
	const grid = e.maps[0].children[0];
	const sid = 'cfg0a1b2c';
	let m = grid.modal(sid);
	for (const name of [ 'schedule', 'schedule_cut', 'daily_tokens', 'daily_requests', 'daily_bytes' ])
		assert.ok(m.option(name), `the dialog has ${name}`);
	for (const name of [ 'schedule_cut', 'daily_tokens', 'daily_requests', 'daily_bytes' ])
		assert.equal(m.option(name).modalonly, true, `${name} is in the dialog only`);
	await m.save();
	assert.deepEqual(e.uci.changes('airelay'), []);
	m = grid.modal(sid);
	m.option('schedule').formvalues[sid] = [ 'Mon-Fri 15:00-20:00' ];
	m.option('daily_tokens').formvalues[sid] = '5000';
	await m.save();
	assert.deepEqual(e.uci.changes('airelay'), [
		[ 'set', `airelay.${sid}.schedule`, [ 'Mon-Fri 15:00-20:00' ] ],
		[ 'set', `airelay.${sid}.daily_tokens`, '5000' ]
	]);
});

test('settings: the quota defaults and the history options are in the "Quotas & history" tab', async () => {
	const e = env({});
	await e.view('settings');
	const main = e.maps[0].children[0];
	assert.equal(main.tabs.quota, 'Quotas & history');
	const names = main.children.filter((o) => o.tab === 'quota').map((o) => o.option);
	assert.deepEqual(names, [ 'default_daily_tokens', 'default_daily_requests', 'default_daily_bytes', 'history_days', 'history_interval', 'history_file' ]);
	const interval = main.children.find((o) => o.option === 'history_interval');
	assert.equal(interval.validate('main', '30s'), 'must be at least 1m');
	assert.equal(interval.validate('main', '2m'), true);
});
