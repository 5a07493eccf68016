// The rpcd plugin, run as rpcd runs it (`luci.airelay list`, `luci.airelay call METHOD` with
// the arguments on stdin), under dash and, where busybox is installed, under busybox sh and
// busybox awk as on OpenWrt. AIRELAY_BIN points at stand-ins, then at the real airelay.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { PLUGIN, ACL, airelay } from './lib/luci.mjs';
import { SECRET } from './lib/fixtures.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luci-airelay-rpcd-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function which(cmd) {
	return spawnSync('sh', [ '-c', `command -v ${cmd}` ], { encoding: 'utf8' }).stdout.trim();
}

// Shells to run the plugin with: [name, shell argv, PATH prefix whose awk is the one to use].
const SHELLS = [ [ 'dash', [ which('dash') || 'sh' ], null ] ];
if (which('busybox')) {
	const bb = path.join(dir, 'busybox-bin');
	fs.mkdirSync(bb);
	for (const applet of [ 'awk', 'sh', 'head', 'tr', 'sed', 'mktemp', 'rm', 'cat' ])
		fs.symlinkSync(which('busybox'), path.join(bb, applet));
	SHELLS.push([ 'busybox', [ path.join(bb, 'sh') ], bb ]);
}

function script(name, body) {
	const f = path.join(dir, name);
	fs.writeFileSync(f, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
	return f;
}

const STATUS = {
	version: '1.2.3', uptime_seconds: 3725,
	config: { generation: 2, source: '/var/run/airelay/airelay', loaded_at: '2025-01-01T00:00:00Z' },
	listeners: { dns: '127.0.0.1:5353', tls: ':8443', http: ':8080', status: '127.0.0.1:9099' },
	providers: [ { id: 'openai', enabled: true, connections: 7, active: 1, requests: 5, denied: 0, errors: 1,
		bytes_up: 1000, bytes_down: 90000, tokens_in: 120, tokens_out: 480, status: [ 0, 0, 4, 0, 1, 0 ],
		api_key: SECRET } ],
	devices: [ { addr: '192.168.1.50', mac: 'aa:bb:cc:dd:ee:01', client: 'kids', name: 'Kids tablet',
		last_seen: '2025-01-01T00:00:00Z', connections: 7, active: 1, requests: 5, denied: 0, errors: 1,
		bytes_up: 1000, bytes_down: 90000, tokens_in: 120, tokens_out: 480, status: [ 0, 0, 4, 0, 1, 0 ],
		providers: { openai: { connections: 7, requests: 5, bytes_up: 1000, bytes_down: 90000, tokens_in: 120, tokens_out: 480,
			authorization: `Bearer ${SECRET}` } } } ],
	// decoys: a key at the top, nested in arrays, and spelled with \u escapes
	api_key: SECRET,
	debug: [ { password: SECRET, note: 'kept' }, { 'Api\u005fKey': SECRET } ],
	session_token: SECRET,
	key_policy: 'fill'
};

// The status document as the daemon prints it (indented), with one name \u-escaped.
const printed = JSON.stringify(STATUS, null, 2).replace('"Api_Key"', '"Api\\u005fKey"');
const good = script('good', `[ "$1 $2" = "status --json" ] || exit 9\ncat <<'EOF'\n${printed}\nEOF`);
const down = script('down', 'echo "airelay is not running or not reachable at 127.0.0.1:9099: connection refused" >&2\nexit 1');
const garbage = script('garbage', 'echo \'{"version": "1", "broken": [1, 2}\'');
const notObject = script('array', 'echo \'[1, 2]\'');

function run(shell, args, env = {}, input = '{}') {
	const [ , argv, pathPrefix ] = shell;
	const PATH = pathPrefix ? `${pathPrefix}:${process.env.PATH}` : process.env.PATH;
	const r = spawnSync(argv[0], [ ...argv.slice(1), PLUGIN, ...args ], {
		input, encoding: 'utf8', env: { PATH, TMPDIR: dir, AIRELAY_RUN_CONF: path.join(dir, 'none'), ...env }
	});
	return r;
}

function json(r) {
	assert.equal(r.status, 0, r.stderr);
	assert.match(r.stdout, /^\{.*\}\n$/s, 'one JSON object');
	return JSON.parse(r.stdout);
}

test('shellcheck passes, when installed', { skip: !which('shellcheck') && 'shellcheck is not installed' }, () => {
	const r = spawnSync('shellcheck', [ '-s', 'sh', PLUGIN ], { encoding: 'utf8' });
	assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('the plugin is executable and lists what the ACL grants', () => {
	assert.ok(fs.statSync(PLUGIN).mode & 0o111, 'rpcd runs only executable plugins');
	const r = spawnSync(PLUGIN, [ 'list' ], { encoding: 'utf8' });
	const methods = json(r);
	const grant = JSON.parse(fs.readFileSync(ACL, 'utf8'))['luci-app-airelay'];
	const acl = [ ...grant.read.ubus['luci.airelay'], ...grant.write.ubus['luci.airelay'] ];
	assert.deepEqual(Object.keys(methods).sort(), acl.sort());
	assert.deepEqual(methods, {
		status: {}, check: {}, keys: {}, history: { days: 31 },
		set_key: { provider: 'str', key: 'str' }, clear_key: { provider: 'str' }
	}, 'the arguments rpcd passes on (strings, and days a number)');
});

for (const shell of SHELLS) {
	test(`${shell[0]}: status forwards the document with running:true and no key`, () => {
		const r = run(shell, [ 'call', 'status' ], { AIRELAY_BIN: good });
		const doc = json(r);
		assert.ok(!r.stdout.includes(SECRET), `a key got through: ${r.stdout}`);
		assert.equal(doc.running, true);
		assert.equal(doc.version, '1.2.3');
		assert.deepEqual(doc.listeners, STATUS.listeners);
		assert.deepEqual(doc.providers[0].status, [ 0, 0, 4, 0, 1, 0 ]);
		assert.equal(doc.providers[0].tokens_out, 480, 'token counters are not credentials');
		assert.equal(doc.key_policy, 'fill', 'only names that look like credentials are dropped');
		assert.deepEqual(doc.debug, [ { note: 'kept' }, {} ]);
		for (const gone of [ 'api_key', 'session_token' ])
			assert.ok(!(gone in doc), `${gone} kept`);
		assert.ok(!('api_key' in doc.providers[0]));
		assert.deepEqual(Object.keys(doc.devices[0].providers.openai).sort(),
			[ 'bytes_down', 'bytes_up', 'connections', 'requests', 'tokens_in', 'tokens_out' ]);
	});

	test(`${shell[0]}: a daemon that does not answer gives running:false and why`, () => {
		const doc = json(run(shell, [ 'call', 'status' ], { AIRELAY_BIN: down }));
		assert.equal(doc.running, false);
		assert.match(doc.error, /not running or not reachable/);
	});

	test(`${shell[0]}: output that is not one JSON object gives running:false`, () => {
		for (const bin of [ garbage, notObject ]) {
			const doc = json(run(shell, [ 'call', 'status' ], { AIRELAY_BIN: bin }));
			assert.equal(doc.running, false);
			assert.match(doc.error, /no valid status document/);
		}
	});

	test(`${shell[0]}: no airelay binary gives running:false`, () => {
		const doc = json(run(shell, [ 'call', 'status' ], { AIRELAY_BIN: path.join(dir, 'missing') }));
		assert.deepEqual(doc, { running: false, error: `airelay is not installed (${path.join(dir, 'missing')})` });
	});

	test(`${shell[0]}: check reports the saved config, without credentials`, () => {
		const ok = path.join(dir, 'ok.uci'), bad = path.join(dir, 'bad.uci');
		fs.writeFileSync(ok, 'config airelay \'main\'\n\toption dns_listen \'127.0.0.1:5353\'\n');
		fs.writeFileSync(bad, 'config airelay \'main\'\n\toption dns_ttl \'0\'\nconfig provider \'p\'\n\toption upstream \'https://user:hunter2@api.example.com\'\n\tlist host \'api.example.com\'\n');
		let doc = json(run(shell, [ 'call', 'check' ], { AIRELAY_BIN: airelay(), AIRELAY_CONF: ok }));
		assert.equal(doc.valid, true);
		assert.match(doc.message, /ok/);
		doc = json(run(shell, [ 'call', 'check' ], { AIRELAY_BIN: airelay(), AIRELAY_CONF: bad }));
		assert.equal(doc.valid, false);
		assert.match(doc.message, /dns_ttl/);
		assert.ok(!doc.message.includes('hunter2'), doc.message);
	});
}

// The history document as `airelay history --json` prints it, with decoys as in STATUS.
const HISTORY = {
	days: 31, from: '2026-11-01', to: '2026-12-01',
	rows: [
		{ day: '2026-12-01', addr: '192.168.1.50', mac: 'aa:bb:cc:dd:ee:01', name: 'Kids tablet', provider: 'openai',
			tokens_in: 1, tokens_out: 2, requests: 3, bytes_up: 4, bytes_down: 5, denied: 0 },
		{ day: '2026-11-30', addr: '192.168.1.51', mac: '', name: '', provider: 'anthropic',
			tokens_in: 10, tokens_out: 20, requests: 1, bytes_up: 400, bytes_down: 500, denied: 2, api_key: SECRET }
	],
	secret: SECRET, debug: { 'X-Api-Key': SECRET, authorization: `Bearer ${SECRET}` }
};
// A stand-in daemon: prints the document, and its arguments to a file the test reads.
const argsLog = path.join(dir, 'history-args');
const historyBin = script('history', `printf '%s\n' "$*" >'${argsLog}'
[ "$1 $2" = "history --json" ] || exit 9
cat <<'EOF'
${JSON.stringify(HISTORY, null, 2)}
EOF`);
const historyDown = script('history-down', 'echo "history: airelay is not running and history_file is not set" >&2\nexit 1');

for (const shell of SHELLS) {
	test(`${shell[0]}: history forwards the document without credentials, with --days when asked`, () => {
		const conf = path.join(dir, 'run-conf');
		fs.writeFileSync(conf, 'config airelay \'main\'\n');
		let r = run(shell, [ 'call', 'history' ], { AIRELAY_BIN: historyBin, AIRELAY_RUN_CONF: conf });
		let doc = json(r);
		assert.ok(!r.stdout.includes(SECRET), `a key got through: ${r.stdout}`);
		assert.deepEqual(fs.readFileSync(argsLog, 'utf8').trim(), `history --json --config ${conf}`);
		assert.deepEqual(doc.rows[0], HISTORY.rows[0], 'counters (tokens_in, tokens_out…) are not credentials');
		assert.deepEqual(Object.keys(doc.rows[1]).sort(), Object.keys(HISTORY.rows[0]).sort());
		assert.deepEqual([ doc.days, doc.from, doc.to ], [ 31, '2026-11-01', '2026-12-01' ]);
		assert.deepEqual(doc.debug, {});
		assert.ok(!('secret' in doc) && !('running' in doc));

		for (const [ input, days ] of [ [ '{"days":7}', '7' ], [ '{ "days" : 366 }', '366' ], [ '{"days":"14"}', '14' ], [ '{"other":1}', null ] ]) {
			doc = json(run(shell, [ 'call', 'history' ], { AIRELAY_BIN: historyBin }, input));
			assert.equal(doc.rows.length, 2);
			const want = days ? ` --days ${days}` : '';
			assert.equal(fs.readFileSync(argsLog, 'utf8').trim(), `history --json${want}`, input);
		}
	});

	test(`${shell[0]}: history refuses days outside 1..366 without running airelay`, () => {
		for (const input of [ '{"days":0}', '{"days":367}', '{"days":-1}', '{"days":1.5}', '{"days":"7; reboot"}', '{"days":007}', '{"days":true}', '{"days":12345678901234567890}' ]) {
			fs.rmSync(argsLog, { force: true });
			const doc = json(run(shell, [ 'call', 'history' ], { AIRELAY_BIN: historyBin }, input));
			assert.deepEqual(doc, { error: 'days: want a whole number from 1 to 366' }, input);
			assert.ok(!fs.existsSync(argsLog), `${input}: airelay ran`);
		}
	});

	test(`${shell[0]}: history errors: a failing daemon, invalid output, no binary`, () => {
		let doc = json(run(shell, [ 'call', 'history' ], { AIRELAY_BIN: historyDown }));
		assert.deepEqual(doc, { error: 'history: airelay is not running and history_file is not set' });
		for (const bin of [ garbage, notObject ]) {
			doc = json(run(shell, [ 'call', 'history' ], { AIRELAY_BIN: bin }));
			assert.deepEqual(doc, { error: 'airelay history printed no valid history document' });
		}
		doc = json(run(shell, [ 'call', 'history' ], { AIRELAY_BIN: path.join(dir, 'missing') }));
		assert.deepEqual(doc, { error: `airelay is not installed (${path.join(dir, 'missing')})` });
	});
}

test('an unknown method is an error', () => {
	const r = spawnSync(PLUGIN, [ 'call', 'nosuch' ], { input: '{}', encoding: 'utf8' });
	assert.notEqual(r.status, 0);
});

function freePort() {
	return new Promise((resolve) => {
		const s = net.createServer().listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

test('against a running airelay: running:true with its version and listeners', async (t) => {
	const bin = airelay();
	const port = await freePort();
	const conf = path.join(dir, 'run.uci');
	fs.writeFileSync(conf, [
		'config airelay \'main\'',
		'\toption dns_listen \'\'', '\toption tls_listen \'\'', '\toption http_listen \'\'',
		`\toption status_listen '127.0.0.1:${port}'`,
		'config provider \'openai\'', '\tlist host \'api.openai.com\'', `\toption api_key '${SECRET}'`, ''
	].join('\n'));
	const daemon = spawn(bin, [ 'run', '--config', conf ], { stdio: 'ignore' });
	t.after(() => daemon.kill());
	let doc;
	for (let i = 0; i < 50; i++) {
		const r = run(SHELLS[0], [ 'call', 'status' ], { AIRELAY_BIN: bin, AIRELAY_RUN_CONF: conf });
		doc = json(r);
		assert.ok(!r.stdout.includes(SECRET));
		if (doc.running)
			break;
		await new Promise((r) => setTimeout(r, 100));
	}
	assert.equal(doc.running, true, doc.error);
	assert.equal(doc.listeners.status, `127.0.0.1:${port}`);
	assert.deepEqual(doc.providers.map((p) => p.id), [ 'openai' ]);
	daemon.kill();
	await new Promise((r) => daemon.once('exit', r));
	doc = json(run(SHELLS[0], [ 'call', 'status' ], { AIRELAY_BIN: bin, AIRELAY_RUN_CONF: conf }));
	assert.equal(doc.running, false);
});
