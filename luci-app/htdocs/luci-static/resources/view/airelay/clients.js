'use strict';
'require view';
'require form';
'require rpc';
'require uci';
'require view.airelay.shared as shared';

/*
 * Services → AI Relay → Clients: the 'client' sections. A client is a device or a group of
 * devices, matched by MAC or IP address, with its access and the providers it may use. The
 * MAC and address fields offer the devices the router knows (DHCP leases and neighbours,
 * through luci-rpc getHostHints).
 */

const callHostHints = rpc.declare({
	object: 'luci-rpc',
	method: 'getHostHints',
	expect: { '': {} }
});

function providerNames() {
	return uci.sections('airelay', 'provider').map(function(p) { return p['.name']; });
}

return view.extend({
	load: function() {
		return Promise.all([
			L.resolveDefault(callHostHints(), {}),
			uci.load('airelay'),
			shared.health()
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

		let o;

		o = s.option(form.Value, 'name', _('Name'), _('Label shown in the status page.'));
		o.validate = shared.validator('string');

		const macs = s.option(form.DynamicList, 'mac', _('MAC addresses'));
		macs.validate = shared.validator('mac');

		const addrs = s.option(form.DynamicList, 'ip', _('Addresses'),
			_('Addresses or prefixes, like 192.168.1.50, 192.168.1.0/24 or fd00::/64.'));
		addrs.validate = shared.validator('cidr');

		Object.keys(hints).sort().forEach(function(mac) {
			const h = hints[mac] || {};
			const v4 = Array.isArray(h.ipaddrs) ? h.ipaddrs : [];
			const v6 = Array.isArray(h.ip6addrs) ? h.ip6addrs : [];
			macs.value(mac, '%s (%s)'.format(mac, h.name || v4[0] || v6[0] || '?'));
			v4.concat(v6).forEach(function(ip) {
				addrs.value(ip, '%s (%s)'.format(ip, h.name || mac));
			});
		});

		o = s.option(form.ListValue, 'access', _('Access'));
		o.value('allow', _('Allow'));
		o.value('deny', _('Deny'));
		o.default = 'allow';
		shared.keepUnset(o);

		o = s.option(form.MultiValue, 'provider', _('Providers'),
			_('Only these providers are allowed; none selected: every provider.'));
		providerNames().forEach(function(name) { o.value(name); }); /* only names that exist */

		return m.render().then(function(node) {
			return E('div', {}, [ shared.banner(data[2]), node ]);
		});
	}
});
