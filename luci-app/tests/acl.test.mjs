// The ACL grants what the views and the plugin use and nothing more; the menu points at views
// that exist; saving reaches the daemon as a reload (SIGHUP), never a restart.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ACL, MENU, REPO, VIEWS, Env, files } from './lib/luci.mjs';
import { config, hostHints } from './lib/fixtures.mjs';

const acl = JSON.parse(fs.readFileSync(ACL, 'utf8'));
const menu = JSON.parse(fs.readFileSync(MENU, 'utf8'));
const sources = files(VIEWS, '.js').map((f) => [ path.basename(f), fs.readFileSync(f, 'utf8') ]);
const all = sources.map(([ , s ]) => s).join('\n');

// What the view sources use, read from the source text (so code the test does not run counts):
// uci holds every config they name, written the configs of their forms and of uci calls that
// change something.
function used() {
	const ubus = {}, uci = new Set(), written = new Set(), file = new Set();
	for (const m of all.matchAll(/rpc\.declare\(\{([^}]*)\}/g)) {
		const object = /object:\s*'([^']+)'/.exec(m[1])?.[1], method = /method:\s*'([^']+)'/.exec(m[1])?.[1];
		assert.ok(object && method, `an rpc.declare without a literal object and method: ${m[0]}`);
		(ubus[object] ??= new Set()).add(method);
	}
	for (const m of all.matchAll(/form\.Map\(\s*'([^']+)'|\buci\.\w+\(\s*'([^']+)'/g))
		uci.add(m[1] || m[2]);
	for (const m of all.matchAll(/form\.Map\(\s*'([^']+)'|\buci\.(?:set|unset|add|remove|move|rename|save|apply)\(\s*'([^']+)'/g))
		written.add(m[1] || m[2]);
	for (const m of all.matchAll(/\bfs\.\w+\(\s*'([^']+)'/g))
		file.add(m[1]);
	assert.ok(!/\buci\.\w+\(\s*[^'\s)]/.test(all), 'every uci call names its config literally');
	return { ubus, uci, written, file };
}

test('the ACL file declares one grant, the one the menu depends on', () => {
	assert.deepEqual(Object.keys(acl), [ 'luci-app-airelay' ]);
	assert.deepEqual(menu['admin/services/airelay'].depends.acl, [ 'luci-app-airelay' ]);
	assert.deepEqual(menu['admin/services/airelay'].depends.uci, { airelay: true });
});

// The methods that change something on the router; every other one only reads.
const WRITES = { 'luci.airelay': [ 'clear_key', 'set_key' ] };

function grants(mode) {
	return Object.fromEntries(Object.entries(acl['luci-app-airelay'][mode].ubus ?? {}).map(([ o, m ]) => [ o, [ ...m ].sort() ]));
}

test('ubus: exactly the objects and methods the views declare; writes only the key methods', () => {
	const { ubus } = used();
	const want = { read: {}, write: {} };
	for (const [ o, methods ] of Object.entries(ubus))
		for (const m of [ ...methods ].sort())
			((WRITES[o] ?? []).includes(m) ? (want.write[o] ??= []) : (want.read[o] ??= [])).push(m);
	assert.deepEqual(grants('read'), want.read);
	assert.deepEqual(grants('write'), want.write);
	assert.deepEqual(grants('write'), WRITES, 'the write grant is set_key and clear_key, nothing else');
});

test('the keys file is granted to nobody: not as uci, not as a file', () => {
	const text = fs.readFileSync(ACL, 'utf8');
	assert.ok(!text.includes('airelay_keys'), 'the ACL names airelay_keys');
	for (const mode of [ 'read', 'write' ]) {
		assert.ok(!acl['luci-app-airelay'][mode].uci.includes('airelay_keys'));
		assert.equal(acl['luci-app-airelay'][mode].file, undefined);
	}
	const code = all.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
	assert.ok(!code.includes('airelay_keys'), 'a view touches airelay_keys');
});

test('uci: exactly the configs the views read and write; network and firewall only read', () => {
	const { uci, written } = used();
	assert.deepEqual([ ...uci ].sort(), [ 'airelay', 'firewall', 'network' ]);
	assert.deepEqual([ ...written ], [ 'airelay' ], 'the views change airelay only');
	assert.deepEqual(acl['luci-app-airelay'].read.uci, [ ...uci ].sort());
	assert.deepEqual(acl['luci-app-airelay'].write.uci, [ 'airelay' ]);
});

test('files: no grant, as the views read no file', () => {
	const { file } = used();
	assert.deepEqual([ ...file ], []);
	assert.ok(!sources.some(([ , s ]) => /'require fs'/.test(s)));
	for (const mode of [ 'read', 'write' ])
		assert.equal(acl['luci-app-airelay'][mode].file, undefined);
	assert.deepEqual(Object.keys(acl['luci-app-airelay']).sort(), [ 'description', 'read', 'write' ]);
	assert.deepEqual(Object.keys(acl['luci-app-airelay'].read).sort(), [ 'ubus', 'uci' ]);
	assert.deepEqual(Object.keys(acl['luci-app-airelay'].write).sort(), [ 'ubus', 'uci' ]);
});

test('what the views declare while rendering is within the ACL', async () => {
	const env = new Env({ uci: config, rpc: { 'luci-rpc.getHostHints': hostHints, 'luci.airelay.status': { running: false } } });
	for (const [ name ] of sources)
		if (name !== 'shared.js')
			await env.view(name.replace(/\.js$/, ''));
	assert.ok(env.declared.length > 0);
	const g = acl['luci-app-airelay'];
	for (const { object, method } of env.declared)
		assert.ok(g.read.ubus[object]?.includes(method) || g.write.ubus[object]?.includes(method), `${object}.${method} not granted`);
	for (const conf of env.uci.loaded)
		assert.ok(acl['luci-app-airelay'].read.uci.includes(conf), `uci ${conf} loaded, not granted`);
	for (const conf of env.maps.map((m) => m.config))
		assert.ok(acl['luci-app-airelay'].write.uci.includes(conf), `a form on ${conf}, not granted`);
	const uciChanged = Object.keys(env.uci.changed).concat(Object.keys(env.uci.deleted), [ ...env.uci.created ]);
	assert.deepEqual(uciChanged.filter((k) => !k.startsWith('airelay.')), []);
});

test('every menu entry leads to a view file under the app', () => {
	for (const [ p, e ] of Object.entries(menu)) {
		assert.match(p, /^admin\/services\/airelay(\/|$)/);
		if (e.action.type === 'view')
			assert.ok(fs.existsSync(path.join(VIEWS, '..', `${e.action.path}.js`)), `${p}: ${e.action.path}`);
		if (e.action.type === 'alias')
			assert.ok(menu[e.action.path], `${p} aliases a missing ${e.action.path}`);
	}
});

test('saving reloads airelay with SIGHUP and restarts nothing', () => {
	// The views leave Save & Apply to LuCI (uci apply, whose config.change event runs procd's
	// reload trigger) and start or restart no service themselves.
	const code = all.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
	assert.ok(!/setInitAction|init\.d|restart/.test(code), 'a view starts or restarts a service');
	const init = fs.readFileSync(path.join(REPO, 'files', 'airelay.init'), 'utf8');
	assert.match(init, /procd_add_reload_trigger\s+"?airelay"?/, 'uci changes to airelay trigger a reload');
	const reload = /reload_service\(\)\s*\{([\s\S]*?)\n\}/.exec(init)?.[1] ?? '';
	assert.match(reload, /procd_send_signal\s+airelay\s+'\*'\s+HUP/, 'the reload is a SIGHUP');
	assert.ok(!/restart/.test(reload));
});
