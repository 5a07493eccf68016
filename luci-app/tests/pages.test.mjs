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
