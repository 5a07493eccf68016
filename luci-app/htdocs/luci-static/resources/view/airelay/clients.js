'use strict';
'require view';
'require form';
'require rpc';
'require uci';
'require view.airelay.shared as shared';

/*
 * Services → AI Relay → Clients: the 'client' sections. A client is a device or a group of
 * devices, matched by MAC or IP address and by network, with its access and the providers it
 * may use. The MAC and address fields offer the devices the router knows (DHCP leases and
 * neighbours, through luci-rpc getHostHints), the network field the router's networks
 * (/etc/config/network and firewall, read only). The schedule and the daily quotas limit when
 * and how much; the quotas and the cut-off are in the Edit dialog only, to keep the table
 * narrow. A refused value in any field, a list entry typed and not added included, keeps the
 * dialog from saving anything and says which field and why (shared.strictList, guardDialog).
 */

const callHostHints = rpc.declare({
	object: 'luci-rpc',
	method: 'getHostHints',
	expect: { '': {} }
});

const QUOTA_MAX = 1125899906842624; /* 2^50, the daemon's limit for the daily quotas */

function providerNames() {
	return uci.sections('airelay', 'provider').map(function(p) { return p['.name']; });
}

/* A daily quota count: a whole number from 0 (the main section's default) to 2^50. */
function quota(s, name, title, descr) {
	const o = s.option(form.Value, name, title, descr);
	o.placeholder = '0';
	o.datatype = 'range(0,' + QUOTA_MAX + ')'; /* written out: no format() for a 2^50 */
	o.validate = shared.validator('int', { min: 0, max: QUOTA_MAX });
	o.modalonly = true;
	return o;
}

return view.extend({
	load: function() {
		return Promise.all([
			L.resolveDefault(callHostHints(), {}),
			uci.load('airelay'),
			shared.health(),
			L.resolveDefault(uci.load('network'), null),
			L.resolveDefault(uci.load('firewall'), null)
		]);
	},

	render: function(data) {
		const hints = data[0] || {};
		const m = new form.Map('airelay', _('AI Relay: clients'),
			_('Devices, matched by MAC or IP address, and what they may do. Devices that no entry matches get the default access of the settings page.'));

		const s = m.section(form.GridSection, 'client', _('Clients'));
		s.addremove = true;
		s.anonymous = true;
		s.nodescriptions = true;
		s.addbtntitle = _('Add client');
		s.modaltitle = function(section_id) {
			const name = uci.get('airelay', section_id, 'name');
			return _('Client') + ' » ' + (name || section_id);
		};
		shared.guardDialog(s);

		let o;

		o = s.option(form.Value, 'name', _('Name'), _('Label shown in the status page.'));
		o.validate = shared.validator('string');

		const macs = s.option(form.DynamicList, 'mac', _('MAC addresses'));
		macs.validate = shared.validator('mac');
		shared.strictList(macs);

		const addrs = s.option(form.DynamicList, 'ip', _('Addresses'),
			_('Addresses or prefixes, like 192.168.1.50, 192.168.1.0/24 or fd00::/64. A device that also has IPv6 reaches the router from its IPv6 addresses too, which IPv4 entries do not match: give it its MAC address.'));
		addrs.validate = shared.validator('cidr');
		shared.strictList(addrs);

		Object.keys(hints).sort().forEach(function(mac) {
			const h = hints[mac] || {};
			const v4 = Array.isArray(h.ipaddrs) ? h.ipaddrs : [];
			const v6 = Array.isArray(h.ip6addrs) ? h.ip6addrs : [];
			macs.value(mac, '%s (%s)'.format(mac, h.name || v4[0] || v6[0] || '?'));
			v4.concat(v6).forEach(function(ip) {
				addrs.value(ip, '%s (%s)'.format(ip, h.name || mac));
			});
		});

		o = s.option(form.DynamicList, 'network', _('Networks'),
			_('OpenWrt networks (lan, guest, iot) this entry matches. Alone: every device on them. With MAC addresses or addresses: a device must match one of those and be on one of these networks. Empty: any network.'));
		o.validate = shared.validator('network');
		shared.networkChoices(o, shared.routerNetworks(uci.sections('network', 'interface'), uci.sections('firewall', 'zone')));
		shared.strictList(o);

		o = s.option(form.ListValue, 'access', _('Access'));
		o.value('allow', _('Allow'));
		o.value('deny', _('Deny'));
		o.default = 'allow';
		shared.keepUnset(o);

		o = s.option(form.Flag, 'gateway', _('HTTP gateway'),
			_('Off: the device may not use the gateway, which puts the router\'s API keys on its requests (relay only, with the device\'s own key). For guests who must not spend the household\'s keys. Token and request quotas count gateway use only; daily data limits the relay.'));
		o.default = '1';
		o.rmempty = false;
		o.modalonly = true;
		shared.keepUnset(o);

		o = s.option(form.MultiValue, 'provider', _('Providers'),
			_('Only these providers are allowed; none selected: every provider.'));
		providerNames().forEach(function(name) { o.value(name); }); /* only names that exist */
		/* A provider the entry names that no longer exists stays shown and refused: dropped
		 * silently, it could leave the list empty, which allows every provider. */
		o.load = function(section_id) {
			const known = providerNames();
			this.keylist = [];
			this.vallist = [];
			known.forEach(L.bind(function(name) { this.value(name); }, this));
			L.toArray(uci.get('airelay', section_id, 'provider')).forEach(L.bind(function(name) {
				if (known.indexOf(name) < 0)
					this.value(name, _('%s (no such provider)').format(name));
			}, this));
			return form.MultiValue.prototype.load.call(this, section_id);
		};
		o.validate = shared.validator('ref', { names: providerNames });
		shared.strictList(o);

		o = s.option(form.DynamicList, 'schedule', _('Schedule'),
			_('Times AI is allowed, on the router\'s clock: days and a time range, like "Mon-Fri 15:00-20:00", "Sat,Sun 09:00-21:00" or "daily 07:00-21:00". A range that ends at or before its start runs past midnight. Outside them the device is denied. Empty: always.'));
		o.placeholder = 'Mon-Fri 15:00-20:00';
		o.validate = shared.validator('schedule');
		shared.strictList(o);

		o = s.option(form.Value, 'schedule_cut', _('Cut when closed'),
			_('Connections and streams still open when the schedule closes are cut this long after it closes, like 5m. Empty: they finish on their own.'));
		o.validate = shared.validator('duration');
		o.modalonly = true;

		quota(s, 'daily_tokens', _('Tokens per day'),
			_('Tokens (in + out) each matching device may use through the gateway per day. 0 or empty: the default of the settings page.'));
		quota(s, 'daily_requests', _('Requests per day'),
			_('Gateway requests each matching device may make per day. 0 or empty: the default of the settings page.'));
		o = s.option(form.Value, 'daily_bytes', _('Traffic per day'),
			_('Bytes (up + down, relay and gateway) each matching device may move per day, like 500M. 0 or empty: the default of the settings page.'));
		o.placeholder = '0';
		o.validate = shared.validator('size');
		o.modalonly = true;

		return shared.liveWidgets(m).render().then(function(node) {
			return E('div', {}, [ shared.banner(data[2]), node ]);
		});
	}
});
