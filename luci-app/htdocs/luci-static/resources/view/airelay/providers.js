'use strict';
'require view';
'require form';
'require uci';
'require rpc';
'require ui';
'require view.airelay.shared as shared';

/*
 * Services → AI Relay → Providers: the 'provider' sections, one per AI API, named by the
 * section (that name is also the default gateway prefix, /NAME).
 *
 * API keys never reach the browser and never enter LuCI's uci changes. They live in
 * /etc/config/airelay_keys, which only root reads and the ACL does not grant; the rpcd plugin
 * says which providers have one (keys) and writes them (set_key, clear_key), applied at once.
 * The key field is write-only: an empty field keeps the stored key, a typed one replaces it
 * when the dialog is saved, "Remove the API key" deletes it. Deleting a provider deletes its
 * key and takes the provider out of other providers' fallbacks and clients' provider lists.
 * A refused value in any field of the dialog (a host name typed and not added included) saves
 * nothing, not the key either, and says which field and why (shared.strictList, guardDialog).
 */

const callKeys = rpc.declare({
	object: 'luci.airelay',
	method: 'keys',
	expect: { keys: {} }
});

const callSetKey = rpc.declare({
	object: 'luci.airelay',
	method: 'set_key',
	params: [ 'provider', 'key' ]
});

const callClearKey = rpc.declare({
	object: 'luci.airelay',
	method: 'clear_key',
	params: [ 'provider' ]
});

function providerNames() {
	return uci.sections('airelay', 'provider').map(function(p) { return p['.name']; });
}

/* keyCall runs set_key or clear_key and tells the user how it went; it rejects on failure so
 * the dialog stays open. */
function keyCall(keys, promise, provider, done, isSet) {
	return L.resolveDefault(promise, { error: _('the router did not answer') }).then(function(r) {
		if (r && r.result === true) {
			/* the page's idea of which providers have a key follows what the router now has */
			if (keys)
				keys[provider] = isSet;
			ui.addNotification(null, E('p', {}, [ done.format(provider) ]), 'info');
			return;
		}
		const msg = _('API key of provider "%s" not changed: %s').format(provider, (r && r.error) || _('unknown error'));
		ui.addNotification(null, E('p', {}, [ msg ]), 'danger');
		throw new Error(msg);
	});
}

/* dropProvider takes a provider that is being deleted out of every reference to it, so the
 * saved config stays one the daemon accepts, and returns what it changed, in words. A client
 * left with no allowed provider would be allowed every provider (an empty list means all): its
 * access becomes deny instead, which is what it had. */
function dropProvider(name) {
	const changed = [];
	uci.sections('airelay', 'provider').forEach(function(p) {
		const fb = L.toArray(p.fallback);
		if (p['.name'] === name || fb.indexOf(name) < 0)
			return;
		const rest = fb.filter(function(n) { return n !== name; });
		uci.set('airelay', p['.name'], 'fallback', rest.length ? rest : null);
		changed.push(_('removed from the fallbacks of provider "%s"').format(p['.name']));
	});
	uci.sections('airelay', 'client').forEach(function(c) {
		const allowed = L.toArray(c.provider);
		if (allowed.indexOf(name) < 0)
			return;
		const rest = allowed.filter(function(n) { return n !== name; });
		const who = c.name || c['.name'];
		if (rest.length) {
			uci.set('airelay', c['.name'], 'provider', rest);
			changed.push(_('removed from the providers of client "%s"').format(who));
		} else {
			uci.unset('airelay', c['.name'], 'provider');
			uci.set('airelay', c['.name'], 'access', 'deny');
			changed.push(_('client "%s" could use only this provider: its access is now deny').format(who));
		}
	});
	return changed;
}

return view.extend({
	load: function() {
		return Promise.all([
			uci.load('airelay'),
			L.resolveDefault(callKeys(), null),
			shared.health()
		]);
	},

	render: function(data) {
		/* provider name → key set or not; only providers saved on the router are in it */
		const keys = data[1];
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
		shared.guardDialog(s);
		s.handleRemove = function(section_id, ev) {
			const self = this, args = arguments;
			const changed = dropProvider(section_id);
			/* Cleared whether or not the page thinks there is a key, so that a provider made
			 * later under the same name never inherits it (it could send the key elsewhere).
			 * At once: Reset does not bring the key back, and the notice says so. */
			const cleared = (keys && section_id in keys) ?
				keyCall(keys, callClearKey(section_id), section_id,
					_('API key of provider "%s" deleted at once (Reset does not bring it back).'), false) :
				Promise.resolve();
			return cleared.catch(function() {}).then(function() {
				if (changed.length)
					ui.addNotification(null, [
						E('p', {}, [ _('Provider "%s" deleted, and with it:').format(section_id) ]),
						E('ul', {}, changed.map(function(c) { return E('li', {}, [ c ]); }))
					], 'info');
				return form.GridSection.prototype.handleRemove.apply(self, args);
			});
		};

		let o;

		o = s.option(form.Flag, 'enabled', _('Enabled'), _('Intercept, relay and route this provider.'));
		o.default = '1';
		o.rmempty = false;
		o.editable = true;
		shared.keepUnset(o);

		o = s.option(form.DynamicList, 'host', _('Host names'),
			_('Names intercepted and relayed: exact, or *.example.com for every subdomain.'));
		o.validate = shared.validator('host');
		shared.strictList(o);

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
			if (!keys)
				return '?';
			return keys[section_id] === true ? _('set') : _('none');
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
		shared.keepUnset(o);

		o = s.option(form.ListValue, 'key_policy', _('Key policy'),
			_('When the gateway puts the API key on a request.'));
		o.modalonly = true;
		o.value('fill', _('When the device sent none or a placeholder'));
		o.value('replace', _('Always, replacing the device\'s key'));
		o.value('pass', _('Never: pass the device\'s key'));
		o.default = 'fill';
		shared.keepUnset(o);

		o = s.option(form.Value, 'api_key', _('API key'),
			_('Kept on the router in a file only root reads, never shown. Applied at once when this dialog is saved (not staged for Save & Apply). Leave empty to keep the current key.'));
		o.modalonly = true;
		o.password = true;
		o.rmempty = true;
		o.validate = shared.validator('secret');
		o.cfgvalue = function() {
			return null; /* the page never has the key */
		};
		o.write = function(section_id, value) {
			return keyCall(keys, callSetKey(section_id, value), section_id, _('API key of provider "%s" set.'), true);
		};
		o.remove = function() {
			/* an empty field keeps the stored key */
		};
		o.renderWidget = function(section_id, option_index) {
			const saved = keys && section_id in keys;
			this.readonly = !saved;
			this.placeholder = !keys ? _('(the router did not say)') : !saved ?
				_('(Save & Apply the new provider first)') :
				keys[section_id] ? _('(unchanged)') : _('(no key)');
			return form.Value.prototype.renderWidget.call(this, section_id, option_index, null);
		};

		o = s.option(form.Flag, '_api_key_remove', _('Remove the API key'),
			_('Deletes the stored key when this dialog is saved, at once.'));
		o.modalonly = true;
		o.cfgvalue = function() {
			return '0';
		};
		o.write = function(section_id, value) {
			if (value === '1')
				return keyCall(keys, callClearKey(section_id), section_id, _('API key of provider "%s" deleted.'), false);
		};
		o.remove = function() {};
		o.renderWidget = function(section_id, option_index, cfgvalue) {
			/* only a stored key can be removed */
			this.readonly = !(keys && keys[section_id] === true);
			return form.Flag.prototype.renderWidget.call(this, section_id, option_index, cfgvalue);
		};

		o = s.option(form.Flag, 'stream_usage', _('Count tokens of streams'),
			_('For OpenAI-style chat completions streamed without usage: ask the provider for it and drop that extra chunk before it reaches the device. Only for providers that accept stream_options.'));
		o.modalonly = true;
		o.default = '0';
		o.rmempty = false;
		shared.keepUnset(o);

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
		shared.strictList(o);

		o = s.option(form.Flag, 'allow_private', _('Allow private addresses'),
			_('Relay to private or loopback addresses learned from DNS (refused by default: loops, open proxy).'));
		o.modalonly = true;
		o.default = '0';
		o.rmempty = false;
		shared.keepUnset(o);

		return shared.liveWidgets(m).render().then(function(node) {
			return E('div', {}, [ shared.banner(data[2]), node ]);
		});
	}
});
