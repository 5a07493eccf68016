// A form must not ask LuCI for a widget LuCI has already let go of (issue 19, point 6: the
// Providers page threw "Cannot read properties of undefined (reading '_class')" between opening
// the key dialog and saving it). dom.content() deletes the registry entries of a container's
// nodes before it takes them out; taking out the field that has the focus makes Chromium fire
// its change event (when it was typed into), form.js answers with Map.checkDepends, which asks
// every option for its widget through dom.findClassInstance. Seen in Chromium on luci-base
// master: the dialog's Save pressed while the focus stays in the field typed into, a dialog
// replaced by another modal (Save & Apply's), a page's form drawn again (Reset, Save). The
// stand-in (tests/lib/luci.mjs) keeps dom.registry, dom.content() and the change on removal as
// luci.js and Chromium do.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Env, E } from './lib/luci.mjs';
import { config } from './lib/fixtures.mjs';

const KEYS = { openai: true, anthropic: false, local: false };

async function page(view, rpc = {}) {
	const env = new Env({ uci: config, rpc: { 'luci.airelay.keys': { keys: KEYS }, 'luci.airelay.set_key': { result: true }, 'luci.airelay.clear_key': { result: true }, ...rpc } });
	await env.view(view);
	const calls = (method) => env.calls.filter((c) => c.object === 'luci.airelay' && c.method === method).map((c) => c.args);
	return { env, map: env.maps[0], section: env.maps[0].children[0], calls };
}

test('providers: the dialog\'s Save with the focus still in the API key field saves the key and throws nothing', async () => {
	const { env, section, calls } = await page('providers');
	const dlg = section.modal('openai');
	dlg.type('api_key', 'sk-typed-DECOY');
	await dlg.save();
	assert.deepEqual(env.pageErrors, [], 'no page error while the dialog\'s form is drawn again');
	assert.deepEqual(calls('set_key'), [ [ 'openai', 'sk-typed-DECOY' ] ]);
	assert.equal(dlg.isOpen(), false, 'the dialog closed');
});

test('providers: a modal that replaces the dialog (Save & Apply\'s) while a typed field has the focus throws nothing', async () => {
	for (const field of [ 'api_key', 'upstream' ]) {
		const { env, section } = await page('providers');
		const dlg = section.modal('anthropic');
		dlg.type(field, field === 'upstream' ? 'https://api.anthropic.com' : 'sk-typed-DECOY');
		/* ui.showModal: dom.content() on the dialog */
		env.builtin('dom').content(dlg.dialog, [ E('h4', {}, [ '' ]) ]);
		assert.deepEqual(env.pageErrors, [], field);
	}
});

test('clients: the dialog\'s Save with the focus still in the name field throws nothing', async () => {
	const { env, section } = await page('clients');
	const dlg = section.modal('cfg0a1b2c');
	dlg.type('name', 'Kids laptop');
	await dlg.save();
	assert.deepEqual(env.pageErrors, []);
	assert.equal(env.uci.get('airelay', 'cfg0a1b2c', 'name'), 'Kids laptop');
	assert.equal(dlg.isOpen(), false);
});

test('settings: the page drawn again (Reset, Save) while a typed field has the focus throws nothing', async () => {
	const { env, map, section } = await page('settings');
	const o = section.children.find((x) => x.option === 'dns_listen');
	o.formvalues.main = '127.0.0.1:5354';
	env.focus(map.findElement('id', o.cbid('main')));
	/* LuCI's Map.reset, and Map.save after it staged the changes, end with renderContents */
	await map.renderContents();
	assert.deepEqual(env.pageErrors, []);
});

test('every option of every form, and of every dialog, answers "no widget" for a node LuCI has let go of', async () => {
	for (const view of [ 'settings', 'providers', 'clients' ]) {
		const { env, map, section } = await page(view);
		const forms = [ map ];
		if (typeof section.modal === 'function') {
			section.modal(section.cfgsections()[0]);
			forms.push(env.modal.map);
		}
		let n = 0;
		for (const m of forms) {
			const gone = m.drawn().flatMap((d) => d.options.map((o) => [ o, d.sid ]));
			const kept = [ ...m.root.children ];
			env.builtin('dom').content(m.root, []); /* forgets the widgets' registry entries */
			/* the nodes taken out, kept and put back: each still carries its forgotten data-idref */
			for (const frame of kept)
				m.root.appendChild(frame);
			for (const [ o, sid ] of gone) {
				assert.equal(o.getUIElement(sid), null, `${view}: ${o.option}`);
				n++;
			}
		}
		assert.ok(n >= 5, `${view}: ${n} widgets`);
	}
});
