// The status page shows what the plugin returns (running or not, the TLS redirect, devices,
// providers, usage bars) and polls; client fields offer the router's known devices.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Env, text } from './lib/luci.mjs';
import { config } from './lib/fixtures.mjs';

const STATUS = {
	running: true, version: '1.2.3', uptime_seconds: 90061,
	config: { generation: 3, source: '/var/run/airelay/airelay', loaded_at: '2025-01-01T00:00:00Z', last_error: 'provider \'x\': bad' },
	listeners: { dns: '127.0.0.1:5353', status: '127.0.0.1:9099' },
	providers: [ { id: 'openai', enabled: true, connections: 12, requests: 40, bytes_up: 2048, bytes_down: 3145728, tokens_in: 5000, tokens_out: 123456 } ],
	devices: [
		{ addr: '192.168.1.50', mac: 'aa:bb:cc:dd:ee:01', name: 'Kids tablet', last_seen: new Date().toISOString(),
			connections: 12, requests: 40, bytes_up: 2048, bytes_down: 3145728, tokens_in: 5000, tokens_out: 123456,
			providers: { openai: { bytes_up: 2048, bytes_down: 3000000, requests: 30 }, '<b>evil</b>': { bytes_up: 1, bytes_down: 1 } } },
		{ addr: 'other', last_seen: new Date().toISOString(), providers: {} }
	]
};

test('running: service facts, providers and devices with a usage chart each', async () => {
	const env = new Env({ rpc: { 'luci.airelay.status': STATUS, 'luci.airelay.check': { valid: true, message: 'ok' } } });
	const { view, node } = await env.view('status');
	const t = text(node);
	for (const want of [ 'Running', '1.2.3', '1d 1h 1m', 'generation 3', 'Last reload failed', 'provider \'x\': bad',
		'Listener: dns', '127.0.0.1:5353', 'openai', 'Kids tablet', '192.168.1.50', 'aa:bb:cc:dd:ee:01',
		'3.0\u00a0MiB', '123k', 'Other devices', 'valid' ])
		assert.ok(t.includes(want), `status page lacks ${JSON.stringify(want)}`);
	assert.equal(view.handleSaveApply, null, 'a status page has no Save & Apply');

	const svg = view.usageChart(STATUS.devices[0].providers);
	assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>.*<\/svg>$/);
	assert.equal(svg.match(/<rect /g).length, 2, 'one bar per provider');
	assert.ok(!svg.includes('<b>'), 'provider names are escaped in the SVG');
	assert.ok(svg.includes('&lt;b&gt;evil'));
	const widths = [ ...svg.matchAll(/<rect [^>]*width="(\d+)"/g) ].map((m) => +m[1]);
	assert.ok(widths[1] > widths[0], `the busier provider has the longer bar: ${widths}`); // sorted: '<b>…' first
	assert.equal(view.usageChart({}), '', 'no bars for a device that used no provider');
});

test('not running: says so with the reason, and hides the tables', async () => {
	const env = new Env({ rpc: { 'luci.airelay.status': { running: false, error: 'airelay is not running or not reachable' } } });
	const { node } = await env.view('status');
	const t = text(node);
	assert.ok(t.includes('Not running') && t.includes('not reachable'), t);
	assert.ok(!t.includes('Tokens in'));
});

test('a failing rpc call (plugin missing) reads as not running', async () => {
	const env = new Env({ rpc: { 'luci.airelay.status': new Error('Object not found'), 'luci.airelay.check': new Error('x') } });
	const { node } = await env.view('status');
	assert.ok(text(node).includes('Not running'));
});

test('polls status every 5 seconds and redraws', async () => {
	const env = new Env({ rpc: { 'luci.airelay.status': { running: false } } });
	const { node } = await env.view('status');
	assert.equal(env.polls.length, 1);
	assert.equal(env.polls[0].interval, 5);
	env.rpcReplies['luci.airelay.status'] = STATUS;
	const before = env.calls.length;
	await env.polls[0].fn();
	assert.equal(env.calls.length, before + 1, 'the poll calls status only (check runs once per page load)');
	assert.ok(text(node).includes('Kids tablet'), 'the poll redrew the page');
});

test('client fields offer the known devices as hints', async () => {
	const env = new Env({ uci: config, rpc: { 'luci-rpc.getHostHints': { 'AA:BB:CC:DD:EE:01': { name: 'tablet', ipaddrs: [ '192.168.1.50' ], ip6addrs: [ 'fd00::50' ] } } } });
	await env.view('clients');
	const opts = env.maps[0].children[0].children;
	const mac = opts.find((o) => o.option === 'mac'), ip = opts.find((o) => o.option === 'ip');
	assert.deepEqual(mac.keylist, [ 'AA:BB:CC:DD:EE:01' ]);
	assert.deepEqual(mac.vallist, [ 'AA:BB:CC:DD:EE:01 (tablet)' ]);
	assert.deepEqual(ip.keylist, [ '192.168.1.50', 'fd00::50' ]);
	assert.ok(env.calls.some((c) => c.object === 'luci-rpc' && c.method === 'getHostHints'));
});

// find returns the first node of a rendered tree whose id is id.
function find(n, id) {
	if (n == null || typeof n !== 'object')
		return null;
	if (n.attrs?.id === id)
		return n;
	for (const c of n.children ?? []) {
		const f = find(c, id);
		if (f)
			return f;
	}
	return null;
}

test('the TLS redirect: active, not active with the reason (a warning), or unknown (nothing)', async () => {
	let env = new Env({ rpc: { 'luci.airelay.status': { ...STATUS, redirect: { active: true, reason: '' } } } });
	let { node } = await env.view('status');
	let r = find(node, 'airelay-redirect');
	assert.ok(r, 'no redirect line');
	assert.equal(text(r).trim(), 'TLS redirect: active');
	assert.doesNotMatch(r.attrs.class, /warning/);

	const reason = 'fw4 is not running: the nft table inet fw4 is missing';
	env = new Env({ rpc: { 'luci.airelay.status': { ...STATUS, redirect: { active: false, reason } } } });
	({ node } = await env.view('status'));
	r = find(node, 'airelay-redirect');
	assert.match(r.attrs.class, /alert-message warning/);
	assert.ok(text(r).includes('TLS redirect: not active') && text(r).includes(`\u2014 ${reason}`), text(r));
	assert.ok(text(node).includes(`not active ( ${reason} )`) || text(node).includes(reason), 'also in the service table');

	env = new Env({ rpc: { 'luci.airelay.status': STATUS } });
	({ node } = await env.view('status'));
	assert.equal(find(node, 'airelay-redirect'), null, 'unknown (not on OpenWrt): no claim either way');
	assert.ok(!text(node).includes('TLS redirect'));

	// the poll redraws it
	env = new Env({ rpc: { 'luci.airelay.status': { ...STATUS, redirect: { active: true } } } });
	({ node } = await env.view('status'));
	env.rpcReplies['luci.airelay.status'] = { ...STATUS, redirect: { active: false, reason } };
	await env.polls[0].fn();
	assert.ok(text(find(node, 'airelay-redirect')).includes(reason));
});

// Issue 16: per device its name and where it comes from, today's use against its quotas, and
// whether its schedule is open now.
const HOME = {
	running: true,
	devices: [
		{ addr: '192.168.1.50', mac: 'aa:bb:cc:dd:ee:01', name: 'Kids tablet', name_source: 'client', last_seen: new Date().toISOString(),
			today: { tokens: 1234, requests: 7, bytes: 3145728 }, quota: { tokens: 5000, requests: 0, bytes: 1048576 },
			schedule: { open: true, windows: 'Mon,Tue,Wed,Thu,Fri 15:00-20:00; Sat,Sun 09:00-21:00', next: '2026-12-01T20:00:00+01:00' } },
		{ addr: '192.168.1.60', mac: 'aa:bb:cc:dd:ee:02', name: 'phone-anna', name_source: 'dhcp', last_seen: new Date().toISOString(),
			today: { tokens: 0, requests: 0, bytes: 0 },
			schedule: { open: false, windows: 'Mon 15:00-20:00', next: '2026-12-07T15:00:00+01:00' } },
		{ addr: '192.168.1.70', last_seen: new Date().toISOString() }
	]
};
// 2026-12-01 12:00 in the router's zone (+01:00), a Tuesday
const NOON = new Date('2026-12-01T11:00:00Z');

function devicesTable(node) {
	const tables = [];
	(function walk(n) {
		if (n && typeof n === 'object') {
			if (n.tag === 'table')
				tables.push(n);
			(n.children ?? []).forEach(walk);
		}
	})(node);
	return tables.at(-1);
}

test('devices: name and its source, today against the quotas, the schedule now', async () => {
	const env = new Env({ rpc: { 'luci.airelay.status': HOME } });
	const { view, node } = await env.view('status');
	const table = devicesTable(node);
	assert.ok(text(table.children[0]).includes('Today'));
	const [ kids, anna, bare ] = table.children.slice(1).map(text);
	assert.ok(kids.includes('Kids tablet') && kids.includes('aa:bb:cc:dd:ee:01') && !kids.includes('(DHCP)'), kids);
	assert.ok(kids.includes('tokens 1,234 / 5,000'), kids);
	assert.ok(kids.includes('requests 7') && !kids.includes('requests 7 /'), 'no quota: the count alone');
	assert.ok(kids.includes('traffic 3.0\u00a0MiB / 1.0\u00a0MiB'), kids);
	assert.ok(kids.includes('Schedule: open until'), kids);
	assert.ok(anna.includes('phone-anna') && anna.includes('(DHCP)'), anna);
	assert.ok(anna.includes('Schedule: closed until'), anna);
	assert.ok(!anna.includes('tokens'), 'nothing used and no quota: no line');
	assert.ok(bare.includes(' - '), 'neither today nor a schedule: a dash');

	// the bars and the wording, at a fixed time
	const cell = view.todayUse(HOME.devices[0], NOON);
	const bars = cell.filter((n) => n.attrs?.class === 'airelay-quota');
	assert.equal(bars.length, 2, 'a bar per quota');
	assert.match(bars[0].children[0].attrs.style, /width:25%/, '1234 of 5000');
	assert.match(bars[1].children[0].attrs.style, /width:100%; background:#c75d5d/, 'over the quota: full and red');
	assert.equal(text(cell.at(-1)).trim(), 'Schedule: open until 20:00', 'today: the time only');
	assert.equal(cell.at(-1).attrs.title, HOME.devices[0].schedule.windows);
	assert.equal(text(view.todayUse(HOME.devices[1], NOON).at(-1)).trim(), 'Schedule: closed until Mon 15:00', 'another day: its name');
	assert.equal(text(view.todayUse({ schedule: { open: false } }, NOON)).trim(), 'Schedule: closed', 'no next change');
	assert.equal(text(view.todayUse({ schedule: { open: true, next: '' } }, NOON)).trim(), 'Schedule: open');
});

test('scheduleWhen reads the time on the router\'s clock, whatever the browser\'s zone', async () => {
	const env = new Env();
	const shared = env.require('view.airelay.shared');
	// 23:30 on Tuesday in +01:00 is 22:30Z; the next change at 00:30 is on Wednesday there
	const late = new Date('2026-12-01T22:30:00Z');
	assert.equal(shared.scheduleWhen('2026-12-02T00:30:00+01:00', late), 'Wed 00:30');
	assert.equal(shared.scheduleWhen('2026-12-01T23:45:00+01:00', late), '23:45');
	assert.equal(shared.scheduleWhen('2026-12-01T17:00:00-08:00', new Date('2026-12-01T20:00:00Z')), '17:00');
	assert.equal(shared.scheduleWhen('2026-12-06T09:00:00Z', NOON), 'Sun 09:00');
	assert.equal(shared.scheduleWhen('2026-12-01T20:00:00.123+01:00', NOON), '20:00');
	for (const bad of [ '', null, 'soon', '2026-12-01', '2026-13-45T10:00:00Z' ])
		assert.equal(shared.scheduleWhen(bad, NOON), '', String(bad));
	assert.equal(shared.formatThousands(1234567), '1,234,567');
	assert.equal(shared.formatThousands(999), '999');
	assert.equal(shared.formatThousands(1125899906842624), '1,125,899,906,842,624');
});

// Issue 20: the router's LAN-side networks, served or left untouched and why, and each device's
// network.
const NETS = {
	...STATUS,
	networks: [
		{ name: 'lan', device: 'br-lan', zone: 'lan', ipv4: '192.168.1.1', ipv6: 'fd00::1', served: true },
		{ name: 'guest', device: 'br-guest', zone: 'guest', ipv4: '192.168.2.1', served: true },
		{ name: 'iot', device: 'br-iot', zone: 'iot', ipv4: '192.168.3.1', served: false, reason: 'not in option network' },
		{ name: 'lab', zone: 'lab', served: false, reason: 'no device: the network is down' }
	],
	devices: [ { ...STATUS.devices[0], network: 'guest' }, { addr: '192.168.1.51', last_seen: new Date().toISOString() } ]
};

test('networks: each LAN-side network, served or not and why; each device\'s network', async () => {
	const env = new Env({ rpc: { 'luci.airelay.status': NETS } });
	const { node } = await env.view('status');
	const nets = find(node, 'airelay-networks');
	assert.ok(nets, 'no networks table');
	const rows = nets.children[1].children.slice(1).map((r) => r.children.map((c) => text(c).replace(/\s+/g, ' ').trim()));
	assert.deepEqual(rows, [
		[ 'lan', 'br-lan', 'lan', '192.168.1.1 fd00::1', 'served' ],
		[ 'guest', 'br-guest', 'guest', '192.168.2.1', 'served' ],
		[ 'iot', 'br-iot', 'iot', '192.168.3.1', 'not served: left untouched ( not in option network )' ],
		[ 'lab', '-', 'lab', '-', 'not served: left untouched ( no device: the network is down )' ]
	]);
	const dev = find(node, 'airelay-status').children.find((c) => c.tag === 'table' && text(c).includes('Last seen'));
	const titles = dev.children[0].children.map((c) => text(c).trim());
	assert.equal(titles[1], 'Network');
	assert.equal(text(dev.children[1].children[1]).trim(), 'guest', 'the device\'s network');
	assert.equal(text(dev.children[2].children[1]).trim(), '-', 'not known');

	// a daemon that does not know the networks (not on OpenWrt): no table
	const bare = new Env({ rpc: { 'luci.airelay.status': STATUS } });
	assert.equal(find((await bare.view('status')).node, 'airelay-networks'), null);
});

test('the configuration in use: the last valid one, or none (devices it restricts refused), with the daemon\'s words', async () => {
	const msg = 'serving the last valid config from 2026-12-01 10:00; /etc/config/airelay: section \'kid\' option \'schedule\' value \'Mon-Fry 15:00-20:00\': unknown day \'Fry\'';
	let env = new Env({ rpc: { 'luci.airelay.status': { ...STATUS, config: { ...STATUS.config, last_error: '', state: 'last_valid', message: msg } } } });
	let t = text((await env.view('status')).node);
	assert.ok(t.includes('Configuration in use') && t.includes('the last valid one') && t.includes(msg), t);
	env = new Env({ rpc: { 'luci.airelay.status': { ...STATUS, config: { ...STATUS.config, state: 'fail_closed', message: 'no valid config; /etc/config/airelay: …' } } } });
	t = text((await env.view('status')).node);
	assert.ok(t.includes('none valid: devices it restricts are refused') && t.includes('no valid config;'), t);
	env = new Env({ rpc: { 'luci.airelay.status': { ...STATUS, config: { ...STATUS.config, last_error: '', state: 'current' } } } });
	assert.ok(!text((await env.view('status')).node).includes('Configuration in use'));
});
