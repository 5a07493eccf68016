'use strict';
'require view';
'require dom';
'require rpc';
'require view.airelay.shared as shared';

/*
 * Services → AI Relay → History: each device's use per day over the kept history (main's
 * history_days), as a stacked bar chart (one bar per day, one colour per device; tokens or
 * traffic) and a table of each device's totals. The rpcd plugin's history method runs
 * `airelay history --json [--days N]` and forwards its document through its credential filter.
 * The numbers come from shared.historySeries and shared.historyBars (pure, tested); this file
 * only draws them, with SVG elements made by document.createElementNS (E() makes HTML ones).
 * Each device's network is that of its history rows, or, where they do not say, the one the
 * daemon's status knows it on now.
 */

const callHistory = rpc.declare({
	object: 'luci.airelay',
	method: 'history',
	params: [ 'days' ],
	expect: { '': {} }
});

const SVG_NS = 'http://www.w3.org/2000/svg';
const COLORS = [ '#4a90d9', '#50b27c', '#e2a03f', '#c75d5d', '#8e6cc2', '#3fb2b8', '#d97eb5', '#8c8c3c', '#6b7f99', '#b5723f' ];
const PERIODS = [ 7, 14, 31, 90, 366 ];

/* Plot area and margins of the chart, in SVG units (the SVG scales to the page's width). */
const PLOT = { w: 720, h: 220, left: 64, right: 8, top: 10, bottom: 42 };

function svg(tag, attrs, children) {
	const n = document.createElementNS(SVG_NS, tag);
	Object.keys(attrs || {}).forEach(function(k) {
		if (attrs[k] != null)
			n.setAttribute(k, String(attrs[k]));
	});
	(children || []).forEach(function(c) {
		if (c != null && c !== '')
			n.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
	});
	return n;
}

function color(i) {
	return COLORS[i % COLORS.length];
}

function amount(metric, n) {
	return metric === 'bytes' ? shared.formatBytes(n) : shared.formatCount(n);
}

function round(n) {
	return Math.round(n * 10) / 10;
}

/* chart draws a series (shared.historySeries) as stacked bars with axes, labels and a tooltip
 * per segment; null when there is nothing to draw. */
function chart(series) {
	if (!series.days.length || !series.devices.length)
		return null;
	const g = shared.historyBars(series, PLOT.w, PLOT.h);
	const W = PLOT.left + PLOT.w + PLOT.right, H = PLOT.top + PLOT.h + PLOT.bottom;
	const parts = [];
	const every = Math.max(1, Math.ceil(series.days.length / 10)); /* at most about 10 day labels */

	g.ticks.forEach(function(t) {
		const y = round(PLOT.top + t.y);
		parts.push(svg('line', { x1: PLOT.left, x2: PLOT.left + PLOT.w, y1: y, y2: y, stroke: 'currentColor', 'stroke-opacity': t.value ? 0.15 : 0.6 }));
		parts.push(svg('text', { x: PLOT.left - 6, y: y + 3, 'text-anchor': 'end', 'font-size': 10, fill: 'currentColor' }, [ amount(series.metric, t.value) ]));
	});
	g.bars.forEach(function(b, i) {
		b.segments.forEach(function(s) {
			const dev = series.devices[s.index];
			parts.push(svg('rect', {
				'x': round(PLOT.left + b.x), 'y': round(PLOT.top + s.y), 'width': round(b.w), 'height': round(s.h),
				'fill': color(s.index), 'data-device': dev.key, 'data-day': b.day
			}, [ svg('title', {}, [ '%s, %s: %s'.format(dev.label, b.day, amount(series.metric, s.value)) ]) ]));
		});
		if (i % every === 0)
			parts.push(svg('text', {
				'x': round(PLOT.left + b.x + b.w / 2), 'y': PLOT.top + PLOT.h + 14, 'text-anchor': 'middle', 'font-size': 10, 'fill': 'currentColor'
			}, [ b.day.substring(5) ]));
	});
	parts.push(svg('text', { x: PLOT.left + PLOT.w / 2, y: H - 4, 'text-anchor': 'middle', 'font-size': 11, fill: 'currentColor' }, [ _('Day') ]));
	parts.push(svg('text', {
		'x': 0, 'y': 0, 'transform': 'translate(12 %d) rotate(-90)'.format(PLOT.top + PLOT.h / 2),
		'text-anchor': 'middle', 'font-size': 11, 'fill': 'currentColor'
	}, [ series.metric === 'bytes' ? _('Traffic (sent + received)') : _('Tokens (in + out)') ]));

	return svg('svg', {
		'class': 'airelay-history', 'width': '100%', 'viewBox': '0 0 %d %d'.format(W, H),
		'role': 'img', 'aria-label': series.metric === 'bytes' ? _('Traffic per day and device') : _('Tokens per day and device')
	}, parts);
}

function legend(series) {
	return E('div', { 'class': 'airelay-legend', 'style': 'display:flex; flex-wrap:wrap; gap:.3em 1.2em; margin:.5em 0' },
		series.devices.map(function(d, i) {
			return E('span', { 'data-device': d.key }, [
				E('span', { 'style': 'display:inline-block; width:.9em; height:.9em; margin-right:.3em; vertical-align:middle; background:' + color(i) }),
				'%s (%s)'.format(d.label, amount(series.metric, d.total))
			]);
		}));
}

/* networksNow: the network each device is on now, from the status document: { 'mac:…' or
 * 'addr:…': network }. */
function networksNow(status) {
	const out = {};
	((status && Array.isArray(status.devices)) ? status.devices : []).forEach(function(d) {
		if (!d || !d.network)
			return;
		if (d.mac)
			out['mac:' + String(d.mac).toLowerCase()] = String(d.network);
		if (d.addr)
			out['addr:' + String(d.addr)] = String(d.network);
	});
	return out;
}

function totalsTable(devices, now) {
	const titles = [ _('Device'), _('Network'), _('Providers'), _('Requests'), _('Denied'), _('Tokens in'), _('Tokens out'), _('Sent'), _('Received') ];
	const rows = devices.map(function(d) {
		const who = [ E('strong', {}, [ d.label ]) ];
		[ d.mac, d.addr ].forEach(function(x) {
			if (x && x !== d.label)
				who.push(E('br'), E('small', {}, [ x ]));
		});
		const net = d.network || (now || {})[d.key] || (d.addr ? (now || {})['addr:' + d.addr] : '') || '-';
		return E('tr', { 'class': 'tr' }, [
			who, net, d.providers.join(', ') || '-', shared.formatCount(d.requests), shared.formatCount(d.denied),
			shared.formatCount(d.tokens_in), shared.formatCount(d.tokens_out),
			shared.formatBytes(d.bytes_up), shared.formatBytes(d.bytes_down)
		].map(function(c) {
			return E('td', { 'class': 'td' }, Array.isArray(c) ? c : [ c ]);
		}));
	});
	return E('table', { 'class': 'table', 'id': 'airelay-history-totals' }, [
		E('tr', { 'class': 'tr table-titles' }, titles.map(function(t) { return E('th', { 'class': 'th' }, [ t ]); }))
	].concat(rows.length ? rows : [
		E('tr', { 'class': 'tr placeholder' }, [ E('td', { 'class': 'td' }, [ E('em', {}, [ _('No use recorded in this period.') ]) ]) ])
	]));
}

return view.extend({
	handleSaveApply: null,
	handleSave: null,
	handleReset: null,

	metric: 'tokens',

	load: function() {
		return Promise.all([
			shared.health(),
			L.resolveDefault(callHistory(), { error: _('The history could not be read.') })
		]);
	},

	/* renderBody: the chart with its legend and the totals table for a history document. */
	renderBody: function(doc) {
		const now = networksNow(this.status);
		if (!doc || typeof doc !== 'object' || doc.error || !Array.isArray(doc.rows))
			return [ E('div', { 'class': 'alert-message warning', 'id': 'airelay-history-error' }, [
				_('No history: %s').format((doc && doc.error) || _('airelay sent no history.'))
			]) ];
		const series = shared.historySeries(doc, this.metric);
		const c = chart(series);
		return [
			E('p', {}, [ _('From %s to %s.').format(doc.from || (series.days[0] || '?'), doc.to || (series.days[series.days.length - 1] || '?')) ]),
			c ? E('div', { 'id': 'airelay-history-chart' }, [ c, legend(series) ]) :
				E('p', { 'id': 'airelay-history-chart' }, [ E('em', {}, [ _('No use recorded in this period.') ]) ]),
			E('h3', {}, [ _('Per device') ]),
			totalsTable(shared.historyDevices(doc, this.metric), now)
		];
	},

	render: function(data) {
		const self = this;
		let doc = data[1];
		this.status = (data[0] && data[0].status) || {};
		const body = E('div', { 'id': 'airelay-history' }, this.renderBody(doc));
		const days = (doc && doc.days) || 31;

		const metric = E('select', { 'class': 'cbi-input-select', 'id': 'airelay-history-metric', 'change': function(ev) {
			self.metric = ev.target.value === 'bytes' ? 'bytes' : 'tokens';
			dom.content(body, self.renderBody(doc));
		} }, [
			E('option', { 'value': 'tokens', 'selected': self.metric === 'tokens' ? '' : null }, [ _('Tokens (in + out)') ]),
			E('option', { 'value': 'bytes', 'selected': self.metric === 'bytes' ? '' : null }, [ _('Traffic (sent + received)') ])
		]);

		const periods = PERIODS.indexOf(days) < 0 ? PERIODS.concat([ days ]).sort(function(a, b) { return a - b; }) : PERIODS;
		const period = E('select', { 'class': 'cbi-input-select', 'id': 'airelay-history-days', 'change': function(ev) {
			const n = +ev.target.value;
			return L.resolveDefault(callHistory(n), { error: _('The history could not be read.') }).then(function(d) {
				doc = d;
				dom.content(body, self.renderBody(doc));
			});
		} }, periods.map(function(n) {
			return E('option', { 'value': String(n), 'selected': n === days ? '' : null }, [ _('last %d days').format(n) ]);
		}));

		return E('div', { 'class': 'cbi-map' }, [
			shared.banner(data[0]),
			E('h2', {}, [ _('AI Relay: history') ]),
			E('div', { 'class': 'cbi-map-descr' }, [
				_('Use per device and day, kept for the days set on the settings page (Quotas & history). Days start at midnight on the router\'s clock; today is still counting.')
			]),
			E('div', { 'style': 'display:flex; gap:1em; align-items:center; flex-wrap:wrap' }, [
				E('label', {}, [ _('Show'), ' ', metric ]),
				E('label', {}, [ _('Period'), ' ', period ])
			]),
			body
		]);
	},

	/* exposed for the tests */
	chart: chart
});
