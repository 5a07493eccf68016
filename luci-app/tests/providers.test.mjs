// The providers page: API keys never reach the page nor LuCI's uci changes (keys, set_key,
// clear_key of the plugin instead); deleting a provider keeps the config one `airelay check`
// accepts; saving stages only what the user changed.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Env, text, airelay, uciQuote } from './lib/luci.mjs';
import { config, SECRET } from './lib/fixtures.mjs';

const KEYS = { openai: true, anthropic: false, local: false };

async function page(rpc = {}) {
	const env = new Env({ uci: config, rpc: { 'luci.airelay.keys': { keys: KEYS }, 'luci.airelay.set_key': { result: true }, 'luci.airelay.clear_key': { result: true }, ...rpc } });
	const { node } = await env.view('providers');
	const section = env.maps[0].children[0];
	const opt = (name) => section.children.find((o) => o.option === name);
	const calls = (method) => env.calls.filter((c) => c.object === 'luci.airelay' && c.method === method).map((c) => c.args);
	return { env, node, section, opt, calls, changes: () => env.uci.changes('airelay') };
}

test('keys: the page shows set/none from the plugin and never holds a key', async () => {
	const { env, node, opt } = await page();
	assert.ok(env.calls.some((c) => c.method === 'keys'));
	assert.equal(opt('_api_key_state').cfgvalue('openai'), 'set');
	assert.equal(opt('_api_key_state').cfgvalue('anthropic'), 'none');
	for (const o of env.maps[0].children[0].children)
		for (const v of [ o.cfgvalue('openai'), o.textvalue('openai'), o.load('openai') ])
			assert.ok(!JSON.stringify(v ?? '').includes(SECRET), `${o.option} exposes the key`);
	assert.ok(!text(node).includes(SECRET), 'nothing the page draws holds the key');
	const key = opt('api_key');
	assert.equal(key.password, true);
	assert.equal(key.renderWidget('openai', 0).placeholder, '(unchanged)');
	assert.equal(key.renderWidget('anthropic', 0).placeholder, '(no key)');
	assert.match(key.description, /applied at once/i, 'the field says it is not staged');
});

test('keys: typing a key and saving the dialog calls set_key and stages no uci change', async () => {
	const { env, section, calls, changes } = await page();
	const modal = section.modal('anthropic');
	modal.option('api_key').formvalues.anthropic = 'sk-typed-DECOY';
	await modal.save();
	assert.deepEqual(calls('set_key'), [ [ 'anthropic', 'sk-typed-DECOY' ] ]);
	assert.deepEqual(changes(), [], 'a key edit is not a uci change (and defaults are not written)');
	assert.ok(!JSON.stringify(env.uci.data).includes('sk-typed-DECOY'), 'the key is not in the page\'s uci data');
	assert.match(env.notifications.at(-1).text, /API key of provider "anthropic" set/);
});

test('keys: an empty field keeps the key: no call, no change', async () => {
	const { section, calls, changes } = await page();
	for (const p of [ 'openai', 'anthropic', 'local' ]) {
		const modal = section.modal(p);
		modal.option('api_key').formvalues[p] = '';
		await modal.save();
	}
	assert.deepEqual(calls('set_key'), []);
	assert.deepEqual(calls('clear_key'), []);
	assert.deepEqual(changes(), []);
});

test('keys: a refusal of the plugin is shown and keeps the dialog open', async () => {
	const { env, section, changes } = await page({ 'luci.airelay.set_key': { error: 'provider \'anthropic\': the key holds a space' } });
	const modal = section.modal('anthropic');
	modal.option('api_key').formvalues.anthropic = 'sk x';
	await modal.save();
	assert.equal(modal.isOpen(), true, 'the dialog stays open');
	const n = env.notifications.at(-1);
	assert.match(n.text, /not changed: provider 'anthropic': the key holds a space/);
	assert.ok(n.classes.includes('danger'));
	assert.deepEqual(changes(), []);
});

test('keys: "Remove the API key" calls clear_key at once, no uci change', async () => {
	const { section, calls, changes } = await page();
	const modal = section.modal('openai');
	modal.option('_api_key_remove').formvalues.openai = '1';
	await modal.save();
	assert.deepEqual(calls('clear_key'), [ [ 'openai' ] ]);
	assert.deepEqual(changes(), []);
});

test('keys: a provider not yet saved on the router cannot take a key yet, and says so', async () => {
	const { env, opt } = await page();
	env.uci.add('airelay', 'provider', 'newone');
	const w = opt('api_key').renderWidget('newone', 0);
	assert.equal(w.readonly, true);
	assert.match(w.placeholder, /Save & Apply the new provider first/);
	assert.equal(opt('_api_key_state').cfgvalue('newone'), 'none');
});

// uciFile renders the page's airelay config as /etc/config/airelay.
function uciFile(sections) {
	let out = '';
	for (const s of sections) {
		out += `config ${s['.type']} ${uciQuote(s['.name'])}\n`;
		for (const [ k, v ] of Object.entries(s))
			if (!k.startsWith('.'))
				for (const x of Array.isArray(v) ? v : [ v ])
					out += `\t${Array.isArray(v) ? 'list' : 'option'} ${k} ${uciQuote(x)}\n`;
	}
	return out;
}

function check(sections) {
	const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'luci-airelay-cascade-')), 'airelay');
	fs.writeFileSync(f, uciFile(sections));
	const r = spawnSync(airelay(), [ 'check', '--config', f ], { encoding: 'utf8' });
	fs.rmSync(path.dirname(f), { recursive: true, force: true });
	return { ok: r.status === 0, out: r.stdout + r.stderr };
}

const CASCADE = {
	airelay: [
		...config.airelay.filter((s) => s['.type'] !== 'client'),
		{ '.name': 'kids', '.type': 'client', name: 'Kids tablet', mac: [ 'aa:bb:cc:dd:ee:01' ], provider: [ 'anthropic' ] },
		{ '.name': 'work', '.type': 'client', name: 'Laptop', mac: [ 'aa:bb:cc:dd:ee:02' ], provider: [ 'openai', 'anthropic' ] }
	]
};

test('delete: without the cascade airelay check refuses the result (the bug)', () => {
	const plain = CASCADE.airelay.filter((s) => s['.name'] !== 'anthropic');
	const r = check(plain);
	assert.equal(r.ok, false, r.out);
	assert.match(r.out, /anthropic/);
	assert.equal(check(CASCADE.airelay).ok, true, 'the fixture itself is valid');
});

test('delete: a deleted provider leaves fallbacks and client lists, the config stays valid', async () => {
	const env = new Env({ uci: CASCADE, rpc: { 'luci.airelay.keys': { keys: KEYS }, 'luci.airelay.clear_key': { result: true } } });
	await env.view('providers');
	const section = env.maps[0].children[0];
	await section.handleRemove('anthropic');
	const u = env.uci;
	assert.equal(u.get('airelay', 'anthropic'), null);
	assert.equal(u.get('airelay', 'openai', 'fallback'), null, 'openai falls back to nothing now');
	assert.deepEqual(u.get('airelay', 'work', 'provider'), [ 'openai' ]);
	assert.equal(u.get('airelay', 'kids', 'provider'), null);
	assert.equal(u.get('airelay', 'kids', 'access'), 'deny', 'a client allowed only the deleted provider is allowed nothing, not everything');
	const r = check(u.sections('airelay'));
	assert.equal(r.ok, true, r.out);
	const n = env.notifications.at(-1).text;
	for (const want of [ 'Provider "anthropic" deleted', 'fallbacks of provider "openai"', 'providers of client "Laptop"', 'client "Kids tablet" could use only this provider: its access is now deny' ])
		assert.ok(n.includes(want), `the notification lacks ${want}: ${n}`);
	/* cleared even without a known key: a provider made later under the same name must not
	 * inherit one (it could be sent to another upstream) */
	assert.deepEqual(env.calls.filter((c) => c.object === 'luci.airelay' && c.method === 'clear_key').map((c) => c.args), [ [ 'anthropic' ] ]);
});

test('a key set on the page counts as set: deleting the provider then clears it, and Remove is offered', async () => {
	const { section, calls, opt } = await page();
	const modal = section.modal('anthropic'); /* no key yet */
	modal.option('api_key').formvalues.anthropic = 'sk-new';
	await modal.save();
	assert.deepEqual(calls('set_key'), [ [ 'anthropic', 'sk-new' ] ]);
	assert.equal(opt('_api_key_state').cfgvalue('anthropic'), 'set', 'the grid says set after set_key');
	await section.handleRemove('anthropic');
	assert.deepEqual(calls('clear_key'), [ [ 'anthropic' ] ]);
	assert.equal(opt('_api_key_state').cfgvalue('anthropic'), 'none', 'and none after clear_key');
	assert.equal(opt('_api_key_remove').renderWidget('local', 0).disabled ?? opt('_api_key_remove').readonly, true, 'no Remove for a provider without a key');
});

test('delete: a provider\'s key is deleted with it', async () => {
	const { env, section, calls } = await page();
	await section.handleRemove('openai');
	assert.deepEqual(calls('clear_key'), [ [ 'openai' ] ]);
	assert.match(env.notifications.map((n) => n.text).join('\n'), /API key of provider "openai" deleted/);
	const r = check(env.uci.sections('airelay'));
	assert.equal(r.ok, true, r.out);
});

test('saving stages only what changed: Save & Apply untouched, each dialog opened and saved', async () => {
	const { env, section, changes } = await page();
	await env.maps[0].save();
	assert.deepEqual(changes(), [], 'Save & Apply of an untouched page');
	for (const p of [ 'openai', 'anthropic', 'local' ])
		await section.modal(p).save();
	assert.deepEqual(changes(), [], 'dialogs opened and saved unchanged write no default');
});

test('saving stages only what changed: one edit, one change', async () => {
	const { section, changes, opt } = await page();
	const modal = section.modal('anthropic');
	modal.option('key_policy').formvalues.anthropic = 'replace';
	modal.option('api_key').formvalues.anthropic = 'sk-x';
	await modal.save();
	assert.deepEqual(changes(), [ [ 'set', 'airelay.anthropic.key_policy', 'replace' ] ]);
	opt('enabled').formvalues.local = '1'; /* stored as '0': switched on */
	await section.map.save();
	assert.deepEqual(changes(), [ [ 'set', 'airelay.anthropic.key_policy', 'replace' ], [ 'set', 'airelay.local.enabled', '1' ] ]);
});
