'use strict';
'require view';
'require dom';
'require poll';
'require view.airelay.shared as shared';

/*
 * Services → AI Relay → Status: whether airelay runs, and which device uses which provider how
 * much. The rpcd plugin luci.airelay (root/usr/libexec/rpcd/luci.airelay) runs
 * `airelay status --json` and forwards its document, which holds counters and never a key.
 * Its "redirect" object, when present, says whether the firewall sends the LAN's HTTPS for AI
 * names to the relay ({"active":bool,"reason":"…"}); it is absent where that is not known.
 * Per device it may carry "name" and "name_source" ("client" or "dhcp"), "today" (tokens,
 * requests, bytes used today), "quota" (the same members, 0 = no limit; absent when there is
 * none) and "schedule" ({"open":bool,"windows":"…","next":"RFC 3339 time of the next change"};
 * absent when the device's client has no schedule) and "network" (the OpenWrt network its traffic
 * came from, when known). "networks" lists the router's LAN-side networks: [ { name, device,
 * zone, ipv4, ipv6, served, reason } ], served or not and why not. config.state says which
 * configuration serves ("current", "last_valid" or "fail_closed", with config.message for
 * people); every page's banner (shared.banner) warns when it is not the current one.
 */

const POLL_SECONDS = 5;
const BAR_COLORS = [ '#4a90d9', '#50b27c', '#e2a03f', '#c75d5d', '#8e6cc2', '#3fb2b8' ];

function num(v) {
	return Number(v) || 0;
}

function table(titles, rows, empty) {
	return E('table', { 'class': 'table' }, [
		E('tr', { 'class': 'tr table-titles' }, titles.map(function(t) {
			return E('th', { 'class': 'th' }, [ t ]);
		}))
	].concat(rows.length ? rows : [
		E('tr', { 'class': 'tr placeholder' }, [ E('td', { 'class': 'td' }, [ E('em', {}, [ empty ]) ]) ])
	]));
}

function row(cells) {
	return E('tr', { 'class': 'tr' }, cells.map(function(c) {
		return E('td', { 'class': 'td' }, Array.isArray(c) ? c : [ c ]);
	}));
}

/* usageChart draws one horizontal bar per provider a device used, scaled to the busiest
 * (bytes both ways); the tooltip gives the numbers. It returns SVG markup with every text
 * escaped, or '' when the device used no provider. */
function usageChart(providers) {
	const ids = Object.keys(providers || {}).sort();
	if (!ids.length)
		return '';
	const total = function(v) { return num(v.bytes_up) + num(v.bytes_down); };
	const max = Math.max.apply(null, ids.map(function(id) { return total(providers[id]); })) || 1;
	const w = 120, label = 80, h = 12;
	const bars = ids.map(function(id, i) {
		const v = providers[id], len = Math.max(1, Math.round(w * total(v) / max));
		const tip = _('%s: %s sent, %s received, %d requests, %d/%d tokens').format(id,
			shared.formatBytes(v.bytes_up), shared.formatBytes(v.bytes_down),
			num(v.requests), num(v.tokens_in), num(v.tokens_out));
		return '<g><title>' + shared.escapeXML(tip) + '</title>' +
			'<text x="0" y="' + (i * h + 9) + '" font-size="10" fill="currentColor">' +
			shared.escapeXML(id.length > 12 ? id.substring(0, 11) + '…' : id) + '</text>' +
			'<rect x="' + label + '" y="' + (i * h + 2) + '" width="' + len + '" height="' + (h - 3) +
			'" fill="' + BAR_COLORS[i % BAR_COLORS.length] + '"/></g>';
	});
	return '<svg xmlns="http://www.w3.org/2000/svg" class="airelay-usage" width="' + (label + w) +
		'" height="' + (ids.length * h) + '" role="img" aria-label="' +
		shared.escapeXML(_('Traffic by provider')) + '">' + bars.join('') + '</svg>';
}

function deviceLabel(d) {
	const who = d.name || d.client || '';
	if (d.addr === 'other')
		return [ E('em', {}, [ _('Other devices (over the device limit)') ]) ];
	return [
		who ? E('strong', { 'title': d.name_source === 'dhcp' ? _('Name from the DHCP lease') :
			d.name_source === 'client' ? _('Name of its client entry') : null }, [ who ]) : '',
		who && d.name_source === 'dhcp' ? E('small', {}, [ ' ', _('(DHCP)') ]) : '',
		who ? E('br') : '',
		d.addr || '?',
		d.mac ? E('br') : '',
		d.mac ? E('small', {}, [ d.mac ]) : ''
	];
}

/* The daily use the daemon counts against quotas: [ today's and quota's member, label, format ]. */
const QUOTAS = [
	[ 'tokens', _('tokens'), shared.formatThousands ],
	[ 'requests', _('requests'), shared.formatThousands ],
	[ 'bytes', _('traffic'), shared.formatBytes ]
];

/* todayUse: a device's use today ("tokens 1,234 / 5,000" and a bar where it has a quota) and
 * whether its schedule is open; '-' when the daemon sent neither. */
function todayUse(d, now) {
	const today = (d.today && typeof d.today === 'object') ? d.today : {};
	const quota = (d.quota && typeof d.quota === 'object') ? d.quota : {};
	const out = [];
	QUOTAS.forEach(function(q) {
		const used = num(today[q[0]]), limit = num(quota[q[0]]);
		if (!limit && !used)
			return;
		out.push(E('div', { 'class': 'airelay-today', 'data-kind': q[0] }, [
			limit ? '%s %s / %s'.format(q[1], q[2](used), q[2](limit)) : '%s %s'.format(q[1], q[2](used))
		]));
		if (limit) {
			const pct = Math.min(100, Math.round(100 * used / limit));
			out.push(E('div', { 'class': 'airelay-quota', 'title': '%d%%'.format(pct),
				'style': 'width:8em; height:4px; background:rgba(128,128,128,.3); margin-bottom:2px' }, [
				E('div', { 'style': 'height:100%; width:' + pct + '%; background:' + (used >= limit ? '#c75d5d' : '#50b27c') })
			]));
		}
	});
	const sc = d.schedule;
	if (sc && typeof sc === 'object') {
		const when = shared.scheduleWhen(sc.next, now);
		let line;
		if (sc.open === true)
			line = when ? _('Schedule: open until %s').format(when) : _('Schedule: open');
		else
			line = when ? _('Schedule: closed until %s').format(when) : _('Schedule: closed');
		out.push(E('div', { 'class': 'airelay-schedule', 'title': sc.windows || null,
			'style': sc.open === true ? null : 'color:#c75d5d' }, [ line ]));
	}
	return out.length ? out : '-';
}

function lastSeen(iso) {
	const t = Date.parse(iso);
	if (isNaN(t) || t <= 0)
		return '-';
	const ago = Math.max(0, Math.round((Date.now() - t) / 1000));
	return _('%s ago').format(shared.formatUptime(ago));
}

return view.extend({
	handleSaveApply: null,
	handleSave: null,
	handleReset: null,

	load: function() {
		return shared.health();
	},

	/* The TLS redirect's state, shown above everything else: without it devices reach the
	 * providers directly and nothing is relayed. Nothing when the daemon does not know it. */
	renderRedirect: function(st) {
		const r = st.redirect;
		if (st.running !== true || r == null || typeof r !== 'object')
			return '';
		if (r.active === true)
			return E('div', { 'class': 'alert-message notice', 'id': 'airelay-redirect' }, [
				E('strong', {}, [ _('TLS redirect: active') ])
			]);
		return E('div', { 'class': 'alert-message warning', 'id': 'airelay-redirect' }, [
			E('strong', {}, [ _('TLS redirect: not active') ]),
			r.reason ? ' \u2014 ' + r.reason : ''
		]);
	},

	renderService: function(st, chk) {
		const running = st.running === true;
		const cfg = st.config || {};
		const rows = [
			row([ _('Service'), running ?
				E('span', { 'style': 'color:green' }, [ _('Running') ]) :
				E('span', { 'style': 'color:red' }, [ _('Not running') ].concat(st.error ? [ ' (', st.error, ')' ] : [])) ])
		];
		if (running) {
			rows.push(row([ _('Version'), st.version || '?' ]));
			rows.push(row([ _('Uptime'), shared.formatUptime(st.uptime_seconds) ]));
			rows.push(row([ _('Configuration'), _('%s, generation %d, loaded %s').format(
				cfg.source || '?', num(cfg.generation), cfg.loaded_at || '?') ]));
			if (cfg.state === 'last_valid' || cfg.state === 'fail_closed')
				rows.push(row([ _('Configuration in use'), E('span', { 'style': 'color:red', 'data-state': cfg.state }, [
					cfg.state === 'fail_closed' ? _('none valid: devices it restricts are refused') : _('the last valid one'),
					cfg.message ? ' (' + cfg.message + ')' : ''
				]) ]));
			else if (cfg.last_error)
				rows.push(row([ _('Last reload failed'), E('span', { 'style': 'color:red' }, [ cfg.last_error ]) ]));
			if (st.redirect && typeof st.redirect === 'object')
				rows.push(row([ _('TLS redirect'), st.redirect.active === true ? _('active') :
					E('span', { 'style': 'color:red' }, [ _('not active') ].concat(st.redirect.reason ? [ ' (', st.redirect.reason, ')' ] : [])) ]));
			Object.keys(st.listeners || {}).sort().forEach(function(role) {
				rows.push(row([ _('Listener: %s').format(role), st.listeners[role] ]));
			});
		}
		if (chk && chk.valid != null)
			rows.push(row([ _('Saved configuration'), chk.valid ?
				E('span', {}, [ _('valid') ]) :
				E('pre', { 'style': 'color:red; white-space:pre-wrap' }, [ chk.message || _('not valid') ]) ]));
		return E('table', { 'class': 'table' }, rows);
	},

	/* The router's LAN-side networks: each served (its devices intercepted, relayed, counted and
	 * controlled) or left untouched, and why; absent where the daemon does not know them. */
	renderNetworks: function(st) {
		if (!Array.isArray(st.networks) || !st.networks.length)
			return null;
		const rows = st.networks.map(function(n) {
			n = (n && typeof n === 'object') ? n : {};
			const addrs = [];
			[ n.ipv4, n.ipv6 ].forEach(function(a) {
				if (a)
					addrs.push(addrs.length ? E('br') : '', a);
			});
			return row([
				E('strong', {}, [ String(n.name || '?') ]),
				n.device || '-',
				n.zone || '-',
				addrs.length ? addrs : '-',
				n.served === true ?
					E('span', { 'style': 'color:green', 'data-served': 'yes' }, [ _('served') ].concat(n.reason ? [ ' (', n.reason, ')' ] : [])) :
					E('span', { 'style': 'color:#c75d5d', 'data-served': 'no' }, [ _('not served: left untouched') ].concat(n.reason ? [ ' (', n.reason, ')' ] : []))
			]);
		});
		return E('div', { 'id': 'airelay-networks' }, [
			E('h3', {}, [ _('Networks') ]),
			table([ _('Network'), _('Device'), _('Zone'), _('Router\'s addresses'), _('Served') ], rows, '')
		]);
	},

	renderProviders: function(st) {
		const rows = (st.providers || []).map(function(p) {
			return row([
				p.id, p.enabled ? _('yes') : _('no'),
				shared.formatCount(p.connections), shared.formatCount(p.active),
				shared.formatCount(p.requests), shared.formatCount(p.denied), shared.formatCount(p.errors),
				shared.formatBytes(p.bytes_up), shared.formatBytes(p.bytes_down),
				shared.formatCount(p.tokens_in), shared.formatCount(p.tokens_out)
			]);
		});
		return table([ _('Provider'), _('Enabled'), _('Connections'), _('Active'), _('Requests'),
			_('Denied'), _('Errors'), _('Sent'), _('Received'), _('Tokens in'), _('Tokens out') ],
			rows, _('No provider is configured.'));
	},

	renderDevices: function(st) {
		const rows = (st.devices || []).map(function(d) {
			return row([
				deviceLabel(d), d.network || '-', lastSeen(d.last_seen), todayUse(d, new Date()),
				shared.formatCount(d.connections), shared.formatCount(d.requests),
				shared.formatCount(d.denied),
				shared.formatBytes(d.bytes_up), shared.formatBytes(d.bytes_down),
				shared.formatCount(d.tokens_in), shared.formatCount(d.tokens_out),
				E('div', {}, usageChart(d.providers))
			]);
		});
		return table([ _('Device'), _('Network'), _('Last seen'), _('Today'), _('Connections'), _('Requests'), _('Denied'),
			_('Sent'), _('Received'), _('Tokens in'), _('Tokens out'), _('By provider') ],
			rows, _('No device has used a provider yet.'));
	},

	renderAll: function(st, chk) {
		st = st || {};
		const parts = [
			shared.banner({ status: st, check: chk }),
			this.renderRedirect(st),
			E('h3', {}, [ _('Service') ]), this.renderService(st, chk)
		];
		if (st.running === true) {
			const nets = this.renderNetworks(st);
			if (nets)
				parts.push(nets);
			parts.push(E('h3', {}, [ _('Providers') ]), this.renderProviders(st));
			parts.push(E('h3', {}, [ _('Devices') ]), this.renderDevices(st));
		}
		return parts;
	},

	render: function(health) {
		const self = this;
		const check = health.check;
		const body = E('div', { 'id': 'airelay-status' }, this.renderAll(health.status, check));

		poll.add(function() {
			return L.resolveDefault(shared.callStatus(), { running: false }).then(function(st) {
				dom.content(body, self.renderAll(st, check));
			});
		}, POLL_SECONDS);

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('AI Relay') ]),
			E('div', { 'class': 'cbi-map-descr' }, [
				_('Live counters of airelay since it started, updated every %d seconds.').format(POLL_SECONDS)
			]),
			body
		]);
	},

	/* exposed for the tests */
	usageChart: usageChart,
	todayUse: todayUse
});
