'use strict';
'require view';
'require form';
'require uci';
'require view.airelay.shared as shared';

/*
 * Services → AI Relay → Providers: the 'provider' sections, one per AI API, named by the
 * section (that name is also the default gateway prefix, /NAME).
 *
 * The API key is write-only here: the form never loads it into a field; an empty field keeps
 * the stored key, a new value replaces it, and "Remove the API key" deletes it.
 */

function providerNames() {
	return uci.sections('airelay', 'provider').map(function(p) { return p['.name']; });
}

return view.extend({
	load: function() {
		return uci.load('airelay');
	},

	render: function() {
		const m = new form.Map('airelay', _('AI Relay: providers'),
			_('The AI APIs that airelay intercepts and relays. Devices reach them by their usual names; the HTTP gateway also serves each under its prefix and adds its API key.'));

		const s = m.section(form.GridSection, 'provider', _('Providers'));
		s.addremove = true;
		s.anonymous = false;
		s.nodescriptions = true;
		s.addbtntitle = _('Add provider');
		s.modaltitle = function(section_id) {
			return _('Provider') + ' » ' + section_id;
		};

		let o;

		o = s.option(form.Flag, 'enabled', _('Enabled'), _('Intercept, relay and route this provider.'));
		o.default = '1';
		o.rmempty = false;
		o.editable = true;

		o = s.option(form.DynamicList, 'host', _('Host names'),
			_('Names intercepted and relayed: exact, or *.example.com for every subdomain.'));
		o.validate = shared.validator('host');

		o = s.option(form.Value, 'upstream', _('Upstream URL'),
			_('Base URL of gateway requests. Empty: https:// and the first exact host name.'));
		o.validate = shared.validator('url');
		o.placeholder = 'https://…';

		o = s.option(form.Value, 'prefix', _('Gateway prefix'),
			_('Path the gateway routes to this provider. Empty: / and the provider\'s name.'));
		o.validate = shared.validator('prefix');
		o.placeholder = '/…';

		o = s.option(form.DummyValue, '_api_key_state', _('API key'));
		o.modalonly = false;
		o.cfgvalue = function(section_id) {
			return uci.get('airelay', section_id, 'api_key') ? _('set') : _('none');
		};

		o = s.option(form.Value, 'connect', _('Connect to'),
			_('host:port that relay and gateway dial instead of resolving the name.'));
		o.modalonly = true;
		o.validate = shared.validator('dialaddr');

		o = s.option(form.Value, 'egress', _('Egress'),
			_('How connections leave: empty (direct), iface:NAME, socks5://host:port or http://host:port.'));
		o.modalonly = true;
		o.validate = shared.validator('egress');

		o = s.option(form.ListValue, 'auth', _('Key header'), _('Header that carries the API key.'));
		o.modalonly = true;
		o.value('bearer', 'Authorization: Bearer');
		o.value('x-api-key', 'x-api-key');
		o.value('x-goog-api-key', 'x-goog-api-key');
		o.default = 'bearer';

		o = s.option(form.ListValue, 'key_policy', _('Key policy'),
			_('When the gateway puts the API key on a request.'));
		o.modalonly = true;
		o.value('fill', _('When the device sent none or a placeholder'));
		o.value('replace', _('Always, replacing the device\'s key'));
		o.value('pass', _('Never: pass the device\'s key'));
		o.default = 'fill';

		o = s.option(form.Value, 'api_key', _('API key'),
			_('Kept on the router and never shown. Leave empty to keep the current key.'));
		o.modalonly = true;
		o.password = true;
		o.rmempty = true;
		o.validate = shared.validator('secret');
		o.cfgvalue = function() {
			return null; /* never load the key into the page's form */
		};
		o.remove = function() {
			/* an empty field keeps the stored key */
		};
		o.renderWidget = function(section_id, option_index) {
			this.placeholder = uci.get('airelay', section_id, 'api_key') ?
				_('(unchanged)') : _('(no key)');
			return form.Value.prototype.renderWidget.call(this, section_id, option_index, null);
		};

		o = s.option(form.Flag, '_api_key_remove', _('Remove the API key'),
			_('Delete the stored key on save.'));
		o.modalonly = true;
		o.cfgvalue = function() {
			return '0';
		};
		o.write = function(section_id, value) {
			if (value === '1')
				uci.unset('airelay', section_id, 'api_key');
		};
		o.remove = function() {};

		o = s.option(form.Flag, 'stream_usage', _('Count tokens of streams'),
			_('For OpenAI-style chat completions streamed without usage: ask the provider for it and drop that extra chunk before it reaches the device. Only for providers that accept stream_options.'));
		o.modalonly = true;
		o.default = '0';
		o.rmempty = false;

		o = s.option(form.DynamicList, 'fallback', _('Fallback providers'),
			_('Tried in this order on a connection error, timeout, 429 or 5xx before any byte reached the device.'));
		o.modalonly = true;
		o.load = function(section_id) {
			this.keylist = [];
			this.vallist = [];
			providerNames().forEach(L.bind(function(name) {
				if (name !== section_id)
					this.value(name);
			}, this));
			return form.DynamicList.prototype.load.call(this, section_id);
		};
		o.validate = shared.validator('ref', { names: providerNames, notSelf: true });

		o = s.option(form.Flag, 'allow_private', _('Allow private addresses'),
			_('Relay to private or loopback addresses learned from DNS (refused by default: loops, open proxy).'));
		o.modalonly = true;
		o.default = '0';
		o.rmempty = false;

		return m.render();
	}
});
