// Every file parses: JavaScript (node --check), JSON, the plugin (sh -n); the views' 'require'
// lines name LuCI modules or files of this app; the translation template is complete.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { APP, RESOURCES, PLUGIN, Env, files, requires } from './lib/luci.mjs';
import { POT, msgids, parsePot, pot } from './lib/pot.mjs';
import { config } from './lib/fixtures.mjs';

// LuCI's own client modules (modules/luci-base/htdocs/luci-static/resources).
const LUCI = [ 'baseclass', 'dom', 'form', 'fs', 'network', 'poll', 'request', 'rpc', 'uci', 'ui', 'validation', 'view', 'firewall', 'tools.widgets' ];

for (const f of files(APP, '.js', '.mjs')) {
	test(`node --check ${path.relative(APP, f)}`, () => {
		const r = spawnSync(process.execPath, [ '--check', f ], { encoding: 'utf8' });
		assert.equal(r.status, 0, r.stderr);
	});
}

for (const f of files(APP, '.json')) {
	test(`valid JSON: ${path.relative(APP, f)}`, () => {
		assert.doesNotThrow(() => JSON.parse(fs.readFileSync(f, 'utf8')));
	});
}

test('sh -n on the rpcd plugin, which starts with #!/bin/sh', () => {
	assert.match(fs.readFileSync(PLUGIN, 'utf8'), /^#!\/bin\/sh\n/);
	const r = spawnSync('sh', [ '-n', PLUGIN ], { encoding: 'utf8' });
	assert.equal(r.status, 0, r.stderr);
});

for (const f of files(RESOURCES, '.js')) {
	test(`LuCI module header: ${path.relative(RESOURCES, f)}`, () => {
		const src = fs.readFileSync(f, 'utf8');
		assert.match(src, /^'use strict';\n/, 'starts with \'use strict\'');
		const deps = requires(src);
		assert.ok(deps.length > 0, 'requires its modules');
		for (const d of deps) {
			const own = path.join(RESOURCES, ...d.name.split('.')) + '.js';
			assert.ok(LUCI.includes(d.name) || fs.existsSync(own), `require ${d.name}: no such module`);
		}
		assert.match(src, /\nreturn (view|baseclass)\.extend\(\{/, 'returns a class');
	});
}

test('the .pot has every translatable string, and no stale one', () => {
	const have = parsePot(fs.readFileSync(POT, 'utf8'));
	const want = msgids().map(([ id ]) => id);
	assert.deepEqual(want.filter((id) => !have.includes(id)), [], 'missing: run node luci-app/tests/lib/pot.mjs > luci-app/po/templates/airelay.pot');
	assert.deepEqual(have.filter((id) => !want.includes(id)), [], 'stale msgids');
	assert.equal(fs.readFileSync(POT, 'utf8'), pot(), 'the .pot is not what tests/lib/pot.mjs writes');
});

test('every string the views translate while rendering is in the .pot', async () => {
	const env = new Env({ uci: config, rpc: { 'luci.airelay.status': { running: true, providers: [ {} ], devices: [ { addr: '10.0.0.1', name: 'x', name_source: 'dhcp', providers: { a: {} }, today: { tokens: 1, requests: 1, bytes: 1 }, quota: { tokens: 5 }, schedule: { open: false } } ], config: { last_error: 'x' }, listeners: { dns: ':53' } }, 'luci.airelay.check': { valid: false } } });
	env.rpcReplies['luci.airelay.history'] = { days: 1, from: '2026-12-01', to: '2026-12-01', rows: [ { day: '2026-12-01', addr: '10.0.0.1', tokens_in: 1 } ] };
	for (const v of [ 'settings', 'providers', 'clients', 'status', 'history' ])
		await env.view(v);
	const have = new Set(parsePot(fs.readFileSync(POT, 'utf8')));
	assert.ok(env.translated.length > 50);
	assert.deepEqual([ ...new Set(env.translated) ].filter((s) => !have.has(s)), []);
});
