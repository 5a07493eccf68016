'use strict';
'require view';
'require form';
'require uci';
'require view.airelay.shared as shared';

/*
 * Services → AI Relay → Settings: the 'main' section of /etc/config/airelay.
 * Save & Apply commits the config; procd's reload trigger (procd_add_reload_trigger airelay in
 * /etc/init.d/airelay) then reloads airelay with SIGHUP: connections stay up, nothing restarts.
 * An emptied field is removed from the config, so the daemon's default (the placeholder) applies;
 * switches and choices left at their default stay out of the config (shared.keepUnset).
 * The networks served are chosen from the router's own (/etc/config/network, read only, with
 * /etc/config/firewall for which are LAN-side). A list holding a refused entry, typed and not
 * added too, stops Save with the field and why (shared.strictList).
 */

const QUOTA_MAX = 1125899906842624; /* 2^50, the daemon's limit for the daily quotas */

/* A text field validated as the daemon validates options of kind. */
function text(s, tab, name, title, descr, kind, def, opts) {
	const o = s.taboption(tab, form.Value, name, title, descr);
	if (def)
		o.placeholder = def;
	o.validate = shared.validator(kind, opts);
	return o;
}

function flag(s, tab, name, title, descr, def) {
	const o = s.taboption(tab, form.Flag, name, title, descr);
	o.default = def;
	o.rmempty = false; /* a changed switch is written as 0 or 1, never removed */
	return shared.keepUnset(o);
}

function choice(s, tab, name, title, descr, def, values) {
	const o = s.taboption(tab, form.ListValue, name, title, descr);
	values.forEach(function(v) { o.value(v[0], v[1]); });
	o.default = def;
	return shared.keepUnset(o);
}

function integer(s, tab, name, title, descr, def, min, max) {
	const o = text(s, tab, name, title, descr, 'int', def, { min: min, max: max });
	o.datatype = 'range(' + min + ',' + max + ')'; /* written out: no format() for the quotas' 2^50 */
	return o;
}

return view.extend({
	load: function() {
		return Promise.all([
			shared.health(),
			L.resolveDefault(uci.load('network'), null),
			L.resolveDefault(uci.load('firewall'), null)
		]).then(function(r) {
			return r[0];
		});
	},

	render: function(health) {
		const m = new form.Map('airelay', _('AI Relay'),
			_('airelay answers DNS for AI API names with this router, relays their TLS by name to the real providers, and serves an HTTP gateway that keeps the API keys on the router.'));

		const s = m.section(form.NamedSection, 'main', 'airelay', _('Global settings'));
		s.addremove = false;
		s.anonymous = true;

		s.tab('general', _('General'));
		s.tab('listen', _('Listeners'));
		s.tab('dns', _('DNS'));
		s.tab('limits', _('Limits'));
		s.tab('gateway', _('HTTP gateway'));
		s.tab('quota', _('Quotas & history'));

		flag(s, 'general', 'enabled', _('Enabled'),
			_('When off, airelay keeps running and answers status, but relays nothing.'), '1');
		choice(s, 'general', 'default_access', _('Default access'),
			_('Access for devices that no client entry matches.'), 'allow',
			[ [ 'allow', _('Allow') ], [ 'deny', _('Deny') ] ]);
		choice(s, 'general', 'log_level', _('Log level'),
			_('Least severe level written to the system log.'), 'info',
			[ [ 'debug', _('Debug') ], [ 'info', _('Info') ], [ 'warn', _('Warning') ], [ 'error', _('Error') ] ]);

		const nets = shared.routerNetworks(uci.sections('network', 'interface'), uci.sections('firewall', 'zone'));
		const lanSide = nets.filter(function(n) { return n.lanSide; }).map(function(n) { return n.name; });
		const served = s.taboption('general', form.DynamicList, 'network', _('Networks served'),
			_('OpenWrt networks whose devices airelay serves: their AI names resolve to this router, their HTTPS is relayed, the gateway listens on them and the client rules apply. Networks not listed are left untouched: their devices get the providers\' real addresses and reach them as before. Empty: every LAN-side network (every firewall zone that does not masquerade), here: %s. The Status page says which are served, and why not.')
				.format(lanSide.length ? lanSide.join(', ') : _('none found')));
		served.validate = shared.validator('network');
		shared.networkChoices(served, nets);
		shared.strictList(served);

		text(s, 'general', 'lan_ipv4', _('LAN IPv4 address'),
			_('Address given to devices for AI names. Empty: the address of the LAN interface.'), 'ipv4');
		text(s, 'general', 'lan_ipv6', _('LAN IPv6 address'),
			_('IPv6 address given to devices for AI names. Empty: the LAN interface\'s, or none (devices then use IPv4).'), 'ipv6');

		text(s, 'listen', 'dns_listen', _('DNS interceptor'),
			_('UDP and TCP address that dnsmasq forwards the AI names to. "off" switches it off.'), 'hostport', '127.0.0.1:5353');
		text(s, 'listen', 'tls_listen', _('TLS relay'),
			_('Where the firewall sends the LAN\'s HTTPS for AI names. ":8443" listens on every address; "off" switches it off.'), 'hostport', ':8443');
		text(s, 'listen', 'tls_fallback', _('Other TLS goes to'),
			_('host:port for TLS without a known name (such as this router\'s own web interface). Empty: such connections are closed.'), 'dialaddr');
		text(s, 'listen', 'http_listen', _('HTTP gateway'),
			_('Address of the plain-HTTP gateway that adds the API keys. "off" switches it off.'), 'hostport', ':8080');
		text(s, 'listen', 'status_listen', _('Status and metrics'),
			_('Address of /status and /metrics. Keep it on loopback; "off" switches it off.'), 'hostport', '127.0.0.1:9099');
		text(s, 'listen', 'listen_device', _('Accept on device'),
			_('The relay and the gateway take only connections that arrive on this network device. Empty: the LAN interface\'s device (br-lan), filled in at start.'), 'device');

		flag(s, 'dns', 'dns_forward', _('Forward other names'),
			_('Also resolve names that are not AI names (standalone use). Off: they are refused.'), '0');
		flag(s, 'dns', 'doh_canary', _('Tell browsers not to use their own DNS over HTTPS'),
			_('Answers use-application-dns.net with NXDOMAIN while airelay runs, the signal that keeps browsers such as Firefox from switching to DNS over HTTPS by themselves, past the interception. DNS over HTTPS set up by hand, or a VPN on the device, stays out of reach.'), '1');
		integer(s, 'dns', 'dns_ttl', _('Answer TTL'),
			_('Seconds devices may cache an intercepted answer.'), '60', 1, 86400);
		const r = s.taboption('dns', form.DynamicList, 'resolver', _('Upstream resolvers'),
			_('DNS servers (IP address, optionally :port) for the providers\' real addresses. Empty: the WAN\'s resolvers.'));
		r.validate = shared.validator('resolver');
		shared.strictList(r);

		integer(s, 'limits', 'max_conns', _('Most connections'),
			_('Relay connections at once, and as many gateway connections; more wait in the kernel\'s queue.'), '1024', 1, 1048576);
		integer(s, 'limits', 'max_conns_per_device', _('Most connections per device'),
			_('Connections one device may hold on the relay, and as many on the gateway (its idle ones are closed first), so that one device cannot take every connection.'), '64', 1, 1048576);
		text(s, 'limits', 'memory_limit', _('Memory limit'),
			_('Soft limit for the Go runtime, like 32M; 0: none.'), 'size', '32M');
		text(s, 'limits', 'hello_timeout', _('TLS hello timeout'),
			_('Time a device has to start TLS, like 5s.'), 'duration', '5s');
		text(s, 'limits', 'connect_timeout', _('Connect timeout'),
			_('Time to resolve and connect to a provider.'), 'duration', '10s');
		text(s, 'limits', 'idle_timeout', _('Idle timeout'),
			_('A relayed connection with no traffic for this long is closed.'), 'duration', '10m');
		text(s, 'limits', 'write_timeout', _('Write timeout'),
			_('A device that takes none of what is sent to it for this long is cut, so that a device that stops reading cannot hold its connection.'), 'duration', '30s');
		text(s, 'limits', 'drain_timeout', _('Drain timeout'),
			_('On stop, how long open connections may finish.'), 'duration', '10s');

		text(s, 'gateway', 'max_header_bytes', _('Largest request header'),
			_('At least 1K.'), 'size', '64K', { minBytes: 1024, minText: '1K' });
		text(s, 'gateway', 'max_body', _('Largest request body'),
			_('Larger requests get 413; 0: no limit.'), 'size', '64M');
		text(s, 'gateway', 'retry_body', _('Retry buffer'),
			_('Request bodies up to this size are kept so a fallback provider can be tried.'), 'size', '1M');
		text(s, 'gateway', 'header_timeout', _('Header timeout'),
			_('Time a device has to send its request headers.'), 'duration', '10s');
		text(s, 'gateway', 'first_byte_timeout', _('First byte timeout'),
			_('Time a provider has to start its answer (504 past it).'), 'duration', '5m');
		text(s, 'gateway', 'stream_idle_timeout', _('Stream idle timeout'),
			_('Longest pause inside a streamed answer.'), 'duration', '5m');

		integer(s, 'quota', 'default_daily_tokens', _('Tokens per device and day'),
			_('Tokens (in + out) each device may use through the gateway per day, unless its client entry sets its own; 0: no limit. Days start at midnight on the router\'s clock.'), '0', 0, QUOTA_MAX);
		integer(s, 'quota', 'default_daily_requests', _('Requests per device and day'),
			_('Gateway requests each device may make per day, unless its client entry sets its own; 0: no limit.'), '0', 0, QUOTA_MAX);
		text(s, 'quota', 'default_daily_bytes', _('Traffic per device and day'),
			_('Bytes (up + down, relay and gateway) each device may move per day, like 500M, unless its client entry sets its own; 0: no limit.'), 'size', '0');
		integer(s, 'quota', 'history_days', _('Days of history'),
			_('Days of usage per device and provider kept for the History page.'), '31', 1, 366);
		text(s, 'quota', 'history_interval', _('History write interval'),
			_('The history is written to its file at most this often, and when airelay stops; at least 1m. Flash wears with every write.'), 'duration', '1h',
			{ minSeconds: 60, minText: '1m' });
		text(s, 'quota', 'history_file', _('History file'),
			_('File the history is kept in, so that it outlives a reboot, like /etc/airelay/history.json. Empty: memory only.'), 'string');

		return shared.liveWidgets(m).render().then(function(node) {
			return E('div', {}, [ shared.banner(health), node ]);
		});
	}
});
