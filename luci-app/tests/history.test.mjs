// The History page: the data path from the plugin's rows to the bars (shared.historySeries,
// historyBars: per-day per-device sums, stacking order, tokens or bytes, empty history), and
// the page drawn from it (SVG made with createElementNS, legend, totals table, switches).
import test from 'node:test';
import assert from 'node:assert/strict';
import { Env, text } from './lib/luci.mjs';

const row = (day, who, tin, tout, up, down, extra = {}) => ({
	day, addr: who.addr, mac: who.mac ?? '', name: who.name ?? '', provider: 'openai',
	tokens_in: tin, tokens_out: tout, requests: 1, bytes_up: up, bytes_down: down, denied: 0, ...extra
});
const KIDS = { addr: '192.168.1.50', mac: 'aa:bb:cc:dd:ee:01', name: 'Kids tablet' };
const LAPTOP = { addr: '192.168.1.60', mac: 'AA:BB:CC:DD:EE:02', name: 'Laptop' };
const GUEST = { addr: '192.168.1.99' }; // no MAC, no name

const DOC = {
	days: 3, from: '2026-11-29', to: '2026-12-01',
	rows: [
		row('2026-11-29', KIDS, 100, 200, 1000, 5000),
		row('2026-11-29', KIDS, 10, 20, 0, 0, { provider: 'anthropic' }), // same device, another provider: summed
		row('2026-11-29', LAPTOP, 1000, 4000, 10, 10),
		row('2026-12-01', LAPTOP, 50, 50, 2000000, 3000000, { mac: 'aa:bb:cc:dd:ee:02', addr: '192.168.1.61' }), // same MAC, any case
		row('2026-12-01', GUEST, 7, 0, 1, 1, { denied: 3 })
		// 2026-11-30: no use, still a day of the chart
	]
};

const env = new Env();
const shared = env.require('view.airelay.shared');

test('series: every day of the period, per-day per-device sums of tokens in + out', () => {
	const s = shared.historySeries(DOC, 'tokens');
	assert.equal(s.metric, 'tokens');
	assert.deepEqual(s.days, [ '2026-11-29', '2026-11-30', '2026-12-01' ]);
	const [ laptop, kids, guest ] = s.devices;
	assert.deepEqual(s.devices.map((d) => d.label), [ 'Laptop', 'Kids tablet', '192.168.1.99' ], 'busiest first');
	assert.deepEqual(s.values['2026-11-29'], { [kids.key]: 330, [laptop.key]: 5000 });
	assert.deepEqual(s.values['2026-11-30'], {});
	assert.deepEqual(s.values['2026-12-01'], { [laptop.key]: 100, [guest.key]: 7 });
	assert.deepEqual(s.totals, { '2026-11-29': 5330, '2026-11-30': 0, '2026-12-01': 107 });
	assert.deepEqual(s.devices.map((d) => d.total), [ 5100, 330, 7 ]);
});

test('series: bytes up + down, and the order follows the metric', () => {
	const s = shared.historySeries(DOC, 'bytes');
	assert.equal(s.metric, 'bytes');
	assert.deepEqual(s.devices.map((d) => [ d.label, d.total ]), [ [ 'Laptop', 5000020 ], [ 'Kids tablet', 6000 ], [ '192.168.1.99', 2 ] ]);
	assert.deepEqual(s.totals, { '2026-11-29': 6020, '2026-11-30': 0, '2026-12-01': 5000002 });
	assert.equal(shared.historySeries(DOC, 'nonsense').metric, 'tokens', 'an unknown metric is tokens');
});

test('devices: totals over the period, one entry per MAC (or address without one), latest name', () => {
	const d = shared.historyDevices({ rows: [ ...DOC.rows, row('2026-11-28', { ...KIDS, name: 'Old name' }, 1, 1, 1, 1) ] }, 'tokens');
	const kids = d.find((x) => x.mac === 'aa:bb:cc:dd:ee:01');
	assert.equal(kids.label, 'Kids tablet', 'the name of the latest day wins');
	assert.deepEqual([ kids.tokens_in, kids.tokens_out, kids.requests, kids.bytes_up, kids.bytes_down ], [ 111, 221, 3, 1001, 5001 ]);
	assert.deepEqual(kids.providers, [ 'anthropic', 'openai' ]);
	assert.equal(d.length, 3);
	assert.equal(d.find((x) => x.label === '192.168.1.99').denied, 3);
});

test('bars: stacked from the bottom in device order, heights proportional, axis on nice steps', () => {
	const s = shared.historySeries(DOC, 'tokens');
	const g = shared.historyBars(s, 300, 100);
	assert.equal(g.max, 6000, 'top of the axis: 5330 rounded up to a step of 2000');
	assert.deepEqual(g.ticks.map((t) => t.value), [ 0, 2000, 4000, 6000 ]);
	assert.deepEqual(g.ticks.map((t) => Math.round(t.y * 1000) / 1000), [ 100, 66.667, 33.333, 0 ]);
	assert.equal(g.bars.length, 3);
	assert.deepEqual(g.bars.map((b) => b.day), s.days);
	const [ first, empty, last ] = g.bars;
	assert.deepEqual(empty.segments, [], 'a day without use has no segment');
	assert.deepEqual(first.segments.map((x) => x.key), [ s.devices[0].key, s.devices[1].key ], 'the busiest device at the bottom');
	const [ a, b ] = first.segments;
	assert.ok(Math.abs(a.y + a.h - 100) < 1e-9, 'the first segment stands on the axis');
	assert.ok(Math.abs(b.y + b.h - a.y) < 1e-9, 'the next one on top of it');
	assert.ok(Math.abs(a.h - 100 * 5000 / 6000) < 1e-9 && Math.abs(b.h - 100 * 330 / 6000) < 1e-9);
	assert.deepEqual(last.segments.map((x) => x.value), [ 100, 7 ]);
	// evenly spaced, inside the plot
	assert.ok(g.bars.every((x, i) => x.x >= i * 100 && x.x + x.w <= (i + 1) * 100 && x.w > 90));
});

test('bars: the tokens/bytes switch changes heights and scale, not the days', () => {
	const t = shared.historyBars(shared.historySeries(DOC, 'tokens'), 300, 100);
	const b = shared.historyBars(shared.historySeries(DOC, 'bytes'), 300, 100);
	assert.deepEqual(b.bars.map((x) => x.day), t.bars.map((x) => x.day));
	assert.equal(b.max, 6 * 1048576, 'bytes step in MiB: 4.8 MiB rounded up to a step of 2 MiB');
	assert.deepEqual(b.ticks.map((t) => t.value / 1048576), [ 0, 2, 4, 6 ]);
	assert.ok(b.bars[2].segments[0].h > 75 && t.bars[2].segments[0].h < 2, 'Dec 1 is big in bytes, small in tokens');
});

test('empty history: days but no bars, or nothing at all', () => {
	let s = shared.historySeries({ days: 2, from: '2026-11-30', to: '2026-12-01', rows: [] }, 'tokens');
	assert.deepEqual(s.days, [ '2026-11-30', '2026-12-01' ]);
	assert.deepEqual(s.devices, []);
	const g = shared.historyBars(s, 100, 100);
	assert.deepEqual(g.bars.map((b) => b.segments.length), [ 0, 0 ]);
	assert.equal(g.max, 1, 'a flat axis still has a top');
	s = shared.historySeries({}, 'bytes');
	assert.deepEqual([ s.days, s.devices ], [ [], [] ]);
	assert.deepEqual(shared.historyBars(s, 100, 100).bars, []);
	s = shared.historySeries({ rows: [ null, 5, { day: 'yesterday', tokens_in: 5 } ] }, 'tokens');
	assert.deepEqual(s.days, [], 'rows without a date are left out');
	assert.equal(shared.historySeries({ from: '2025-01-01', to: '2026-12-01', rows: [] }).days.length, 366, 'at most 366 days');
});

test('nice scale', () => {
	assert.deepEqual(shared.niceScale(0), { max: 1, ticks: [ 0, 1 ] });
	assert.deepEqual(shared.niceScale(7), { max: 8, ticks: [ 0, 2, 4, 6, 8 ] });
	assert.deepEqual(shared.niceScale(100), { max: 100, ticks: [ 0, 50, 100 ] });
	assert.deepEqual(shared.niceScale(1234).ticks, [ 0, 500, 1000, 1500 ]);
});

// find returns the nodes of a rendered tree that pass fn.
function findAll(n, fn, out = []) {
	if (n == null || typeof n !== 'object')
		return out;
	if (fn(n))
		out.push(n);
	for (const c of n.children ?? [])
		findAll(c, fn, out);
	return out;
}
const byId = (n, id) => findAll(n, (x) => x.attrs?.id === id)[0];

test('page: a chart of SVG elements, a legend and the totals', async () => {
	const e = new Env({ rpc: { 'luci.airelay.history': DOC, 'luci.airelay.status': { running: true }, 'luci.airelay.check': { valid: true } } });
	const { view, node } = await e.view('history');
	assert.equal(view.handleSaveApply, null);
	assert.ok(e.calls.some((c) => c.method === 'history' && c.args.length === 0), 'the first call asks for the default period');
	const svg = findAll(node, (x) => x.tag === 'svg')[0];
	assert.equal(svg.ns, 'http://www.w3.org/2000/svg', 'made with createElementNS');
	const rects = findAll(svg, (x) => x.tag === 'rect');
	assert.equal(rects.length, 4, 'Nov 29: 2 devices, Dec 1: 2');
	assert.ok(rects.every((r) => r.ns === 'http://www.w3.org/2000/svg'));
	assert.ok(text(svg).includes('Laptop, 2026-11-29: 5000'), 'tooltips');
	assert.ok(text(svg).includes('Tokens (in + out)') && text(svg).includes('Day'), 'axis titles');
	assert.ok(text(svg).includes('11-29') && text(svg).includes('12-01'), 'day labels');
	const legend = findAll(node, (x) => x.attrs?.class === 'airelay-legend')[0];
	assert.deepEqual(legend.children.map((c) => text(c).trim()), [ 'Laptop (5100)', 'Kids tablet (330)', '192.168.1.99 (7)' ]);
	// one colour per device, the same in the legend and the bars
	const colour = (key) => rects.find((r) => r.attrs['data-device'] === key).attrs.fill;
	const s = shared.historySeries(DOC, 'tokens');
	assert.equal(new Set(s.devices.slice(0, 2).map((d) => colour(d.key))).size, 2);
	assert.ok(legend.children[0].children[0].attrs.style.includes(colour(s.devices[0].key)));
	const totals = text(byId(node, 'airelay-history-totals'));
	for (const want of [ 'Kids tablet', 'aa:bb:cc:dd:ee:01', 'anthropic, openai', 'Laptop', '2.9\u00a0MiB' ])
		assert.ok(totals.includes(want), `totals lack ${want}: ${totals}`);
});

test('page: switching to traffic redraws in bytes; another period asks the plugin', async () => {
	const e = new Env({ rpc: { 'luci.airelay.history': DOC } });
	const { node } = await e.view('history');
	byId(node, 'airelay-history-metric').attrs.change({ target: { value: 'bytes' } });
	const svg = findAll(node, (x) => x.tag === 'svg')[0];
	assert.ok(text(svg).includes('Traffic (sent + received)'));
	assert.ok(text(svg).includes('Laptop, 2026-12-01: 4.8\u00a0MiB'), text(svg));
	const days = byId(node, 'airelay-history-days');
	assert.deepEqual(days.children.map((o) => o.attrs.value), [ '3', '7', '14', '31', '90', '366' ], 'the document\'s period is a choice');
	e.rpcReplies['luci.airelay.history'] = (n) => ({ ...DOC, days: n, rows: [] });
	await days.attrs.change({ target: { value: '7' } });
	assert.deepEqual(e.calls.at(-1).args, [ 7 ]);
	assert.ok(text(byId(node, 'airelay-history')).includes('No use recorded in this period.'));
});

test('page: an error from the plugin is shown, not a chart', async () => {
	const e = new Env({ rpc: { 'luci.airelay.history': { error: 'history: airelay is not running' } } });
	const { node } = await e.view('history');
	assert.ok(text(byId(node, 'airelay-history-error')).includes('airelay is not running'));
	assert.equal(findAll(node, (x) => x.tag === 'svg').length, 0);
	const failed = new Env({ rpc: { 'luci.airelay.history': new Error('Access denied') } });
	assert.ok(text((await failed.view('history')).node).includes('The history could not be read.'));
});

test('page: device names are text, never markup', async () => {
	const evil = { ...DOC, rows: [ row('2026-12-01', { addr: '10.0.0.9', mac: 'aa:00', name: '<img src=x onerror=alert(1)>' }, 5, 5, 5, 5) ] };
	const e = new Env({ rpc: { 'luci.airelay.history': evil } });
	const { node } = await e.view('history');
	assert.deepEqual(findAll(node, (x) => x.html != null), [], 'no node is given a string as its HTML');
	assert.ok(text(node).includes('<img src=x'), 'the name is shown, as text');
});

// Issue 20: each device's network, from its rows (the latest that says) or else from where the
// daemon's status sees it now.
test('page: each device\'s network', async () => {
	const doc = { ...DOC, rows: [
		row('2026-12-01', { addr: '192.168.2.20', mac: 'aa:00:00:00:00:01', name: 'Phone' }, 5, 5, 5, 5, { network: 'guest' }),
		row('2026-11-29', { addr: '192.168.2.20', mac: 'aa:00:00:00:00:01', name: 'Phone' }, 5, 5, 5, 5, { network: 'lan' }),
		row('2026-12-01', { addr: '192.168.3.30', mac: 'aa:00:00:00:00:02', name: 'Plug' }, 1, 1, 1, 1),
		row('2026-12-01', { addr: '192.168.1.40', name: 'Old' }, 1, 1, 1, 1)
	] };
	assert.equal(shared.historyDevices(doc, 'tokens').find((d) => d.name === 'Phone').network, 'guest', 'the latest row\'s');
	const status = { running: true, devices: [ { addr: '192.168.3.30', mac: 'AA:00:00:00:00:02', network: 'iot' } ] };
	const e = new Env({ rpc: { 'luci.airelay.history': doc, 'luci.airelay.status': status } });
	const { node } = await e.view('history');
	const t = byId(node, 'airelay-history-totals');
	assert.equal(text(t.children[0].children[1]).trim(), 'Network');
	const net = Object.fromEntries(t.children.slice(1).map((r) => [ text(r.children[0]).trim().split(/\s+/)[0], text(r.children[1]).trim() ]));
	assert.deepEqual(net, { Phone: 'guest', Plug: 'iot', Old: '-' });
});
