// The plugin's key methods (keys, set_key, clear_key) under dash and busybox, against a uci
// stand-in (tests/lib/uci.mjs), an init script stand-in and a ubus stand-in: keys go to the 0600
// file airelay_keys and nowhere else: not to stdout or stderr, not onto any command line, not
// into /etc/config/airelay, not into a staged uci change left behind. A running airelay is
// reloaded; a stopped one stays stopped.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PLUGIN, APP } from './lib/luci.mjs';
import { parse } from './lib/uci.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luci-airelay-keys-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function which(cmd) {
	return spawnSync('sh', [ '-c', `command -v ${cmd}` ], { encoding: 'utf8' }).stdout.trim();
}

// `uci` in PATH is the stand-in; `init` stands for /etc/init.d/airelay on OpenWrt and logs its
// verbs: its `running` answers yes whatever runs (rc.common's default, which the init script
// keeps), and its reload starts a daemon that is not running (files/airelay.init's
// reload_service), which it logs as "start". `ubus` answers `ubus call service list
// '{"name":"airelay"}'` as procd does: the service with its instance running (UBUS_STATE=running),
// not running (crashed), or nothing (stopped: procd forgets a stopped service).
const bin = path.join(dir, 'bin');
fs.mkdirSync(bin);
fs.writeFileSync(path.join(bin, 'uci'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(APP, 'tests', 'lib', 'uci.mjs')}" "$@"\n`, { mode: 0o755 });
const ubusBin = path.join(dir, 'ubus-bin');
fs.mkdirSync(ubusBin);
fs.writeFileSync(path.join(ubusBin, 'ubus'), `#!/bin/sh
printf '%s\\n' "$*" >>"$UBUS_LOG"
[ "$1 $2 $3 $4" = 'call service list {"name":"airelay"}' ] || exit 2
case $UBUS_STATE in
running|crashed)
	r=true; [ "$UBUS_STATE" = running ] || r=false
	printf '{\\n\\t"airelay": {\\n\\t\\t"instances": {\\n\\t\\t\\t"airelay": {\\n\\t\\t\\t\\t"running": %s,\\n\\t\\t\\t\\t"pid": 1234,\\n\\t\\t\\t\\t"command": [ "/usr/sbin/airelay", "run" ]\\n\\t\\t\\t}\\n\\t\\t}\\n\\t}\\n}\\n' "$r" ;;
*)	printf '{\\n\\t\\n}\\n' ;;
esac
`, { mode: 0o755 });
const init = path.join(dir, 'init');
fs.writeFileSync(init, '#!/bin/sh\necho "$1" >>"$INIT_LOG"\nif [ "$1" = reload ] && [ "$UBUS_STATE" != running ]; then echo start >>"$INIT_LOG"; fi\nexit 0\n', { mode: 0o755 });

const SHELLS = [ [ 'dash', which('dash') || 'sh', null ] ];
if (which('busybox')) {
	const bb = path.join(dir, 'busybox-bin');
	fs.mkdirSync(bb);
	for (const applet of [ 'awk', 'sh', 'head', 'tr', 'sed', 'mktemp', 'rm', 'cat', 'chmod' ])
		fs.symlinkSync(which('busybox'), path.join(bb, applet));
	SHELLS.push([ 'busybox', path.join(bb, 'sh'), bb ]);
}

const KEY = 'sk-proj-DECOY\'"\\$(touch${IFS}x)`id`%s%n-0123456789';
const AIRELAY = [
	'config airelay \'main\'', '\toption enabled \'1\'',
	'config provider \'openai\'', '\tlist host \'api.openai.com\'', '\toption api_key \'sk-legacy-DECOY\'',
	'config provider \'anthropic\'', '\tlist host \'api.anthropic.com\'',
	'config provider \'local\'', '\tlist host \'llm.lan\'',
	'config client \'kids\'', '\tlist provider \'openai\'', ''
].join('\n');

// fixture makes a fresh config directory and returns a runner for the plugin in it. state is
// what procd says of airelay (running, crashed, stopped); ubus: whether there is a ubus at all.
function fixture(shell, { state = 'running', ubus = true } = {}) {
	const root = fs.mkdtempSync(path.join(dir, 'root-'));
	const conf = path.join(root, 'config');
	fs.mkdirSync(conf);
	fs.writeFileSync(path.join(conf, 'airelay'), AIRELAY, { mode: 0o644 });
	const env = {
		PATH: `${shell[2] ? shell[2] + ':' : ''}${bin}:${ubus ? ubusBin + ':' : ''}${process.env.PATH}`,
		UCI_CONFIG_DIR: conf, UCI_SAVEDIR: path.join(root, 'save'), UCI_LOG: path.join(root, 'argv'),
		AIRELAY_INIT: init, INIT_LOG: path.join(root, 'init'), UBUS_STATE: state, UBUS_LOG: path.join(root, 'ubus'), TMPDIR: root
	};
	const call = (method, args = {}) => {
		const r = spawnSync(shell[1], [ PLUGIN, 'call', method ], { input: JSON.stringify(args), encoding: 'utf8', env });
		assert.equal(r.status, 0, r.stderr);
		assert.equal(r.stderr, '', 'nothing on stderr');
		assert.match(r.stdout, /^\{.*\}\n$/s, 'one JSON object');
		return { reply: JSON.parse(r.stdout), raw: r.stdout };
	};
	const read = (name) => {
		const f = path.join(conf, name);
		return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : null;
	};
	const keyOf = (p) => parse(read('airelay_keys') ?? '').find((s) => s.name === p && s.type === 'key')?.options.api_key ?? null;
	const mode = (name) => fs.statSync(path.join(conf, name)).mode & 0o777;
	const leaks = (secret) => {
		// every command line uci saw, every staged change left, the init log
		const places = { argv: read('../argv') ?? '', init: read('../init') ?? '', airelay: read('airelay') };
		const save = path.join(root, 'save');
		if (fs.existsSync(save))
			for (const f of fs.readdirSync(save))
				places[`staged ${f}`] = fs.readFileSync(path.join(save, f), 'utf8');
		return Object.entries(places).filter(([ , v ]) => v.includes(secret)).map(([ k ]) => k);
	};
	return { call, read, keyOf, mode, leaks, root };
}

for (const shell of SHELLS) {
	test(`${shell[0]}: keys says which providers have a key, never the key`, () => {
		const f = fixture(shell);
		const { reply, raw } = f.call('keys');
		assert.deepEqual(reply, { keys: { openai: true, anthropic: false, local: false } });
		assert.ok(!raw.includes('DECOY'));
	});

	test(`${shell[0]}: set_key stores the key in airelay_keys (0600) only, and reloads airelay`, () => {
		const f = fixture(shell);
		const { reply, raw } = f.call('set_key', { provider: 'anthropic', key: KEY });
		assert.deepEqual(reply, { result: true });
		assert.ok(!raw.includes('DECOY'));
		assert.equal(f.keyOf('anthropic'), KEY, 'stored exactly, quotes and all');
		assert.equal(f.mode('airelay_keys'), 0o600, 'only root reads the keys file');
		assert.equal(f.mode('airelay'), 0o644, 'the main config keeps its mode');
		assert.equal(f.read('airelay'), AIRELAY, 'the main config is untouched');
		assert.deepEqual(f.leaks(KEY), [], 'the key is only in the keys file');
		assert.ok(!fs.existsSync(path.join(f.root, 'x')), 'nothing in the key was run');
		assert.deepEqual(f.read('../init').trim().split('\n'), [ 'reload' ], 'procd runs it: reloaded');
		assert.deepEqual(f.read('../ubus').trim().split('\n'), [ 'call service list {"name":"airelay"}' ]);
		assert.deepEqual(f.call('keys').reply.keys, { openai: true, anthropic: true, local: false });

		// a second key, and a new one replacing the first
		f.call('set_key', { provider: 'local', key: 'sk-local' });
		f.call('set_key', { provider: 'anthropic', key: 'sk-second' });
		assert.equal(f.keyOf('anthropic'), 'sk-second');
		assert.equal(f.keyOf('local'), 'sk-local');
		assert.equal(f.mode('airelay_keys'), 0o600);
	});

	test(`${shell[0]}: set_key moves a legacy key out of /etc/config/airelay`, () => {
		const f = fixture(shell);
		assert.deepEqual(f.call('set_key', { provider: 'openai', key: 'sk-new' }).reply, { result: true });
		assert.equal(f.keyOf('openai'), 'sk-new');
		assert.ok(!f.read('airelay').includes('api_key'), 'the legacy key is deleted');
		assert.ok(f.read('airelay').includes('api.openai.com'), 'the rest of the section stays');
		assert.equal(f.mode('airelay'), 0o644);
		assert.deepEqual(f.leaks('sk-new'), []);
	});

	test(`${shell[0]}: set_key refuses what it cannot store, naming what is wrong`, () => {
		const f = fixture(shell);
		const cases = [
			[ { provider: 'nosuch', key: 'sk-x' }, /provider 'nosuch': no provider section/ ],
			[ { provider: 'kids', key: 'sk-x' }, /provider 'kids': no provider section/ ],
			[ { provider: 'main', key: 'sk-x' }, /provider 'main': no provider section/ ],
			[ { provider: 'open ai', key: 'sk-x' }, /provider: not a section name/ ],
			[ { provider: 'x;reboot', key: 'sk-x' }, /provider: not a section name/ ],
			[ { provider: 'a'.repeat(65), key: 'sk-x' }, /longer than 64/ ],
			[ { key: 'sk-x' }, /missing the argument provider/ ],
			[ { provider: 'anthropic' }, /the key is empty/ ],
			[ { provider: 'anthropic', key: '' }, /the key is empty/ ],
			[ { provider: 'anthropic', key: 'sk-' + 'x'.repeat(4094) }, /longer than 4096 bytes/ ],
			[ { provider: 'anthropic', key: 'sk-a\nb' }, /line break/ ],
			[ { provider: 'anthropic', key: 'sk-a\r' }, /line break/ ],
			[ { provider: 'anthropic', key: 'sk a' }, /space/ ],
			[ { provider: 'anthropic', key: 'sk-\u0001' }, /control/ ],
			[ { provider: 'anthropic', key: 'sk-\u00e9' }, /non-ASCII/ ],
			[ { provider: 'anthropic', key: 'sk-a\'\nset airelay.main.enabled=0' }, /line break/ ]
		];
		for (const [ args, want ] of cases) {
			const { reply } = f.call('set_key', args);
			assert.match(reply.error ?? '', want, JSON.stringify(args));
			assert.ok(!JSON.stringify(reply).includes('sk-'), 'the refusal does not echo the key');
		}
		assert.equal(f.read('airelay_keys'), null, 'nothing was written');
		assert.equal(f.read('airelay'), AIRELAY);
		assert.equal(f.read('../init'), null, 'nothing was reloaded');
		assert.deepEqual(f.call('set_key', { provider: 'anthropic', key: 'k'.repeat(4096) }).reply, { result: true }, '4096 bytes fit');
	});

	test(`${shell[0]}: clear_key removes the key (and a legacy one) and reloads`, () => {
		const f = fixture(shell);
		f.call('set_key', { provider: 'anthropic', key: KEY });
		assert.deepEqual(f.call('clear_key', { provider: 'anthropic' }).reply, { result: true });
		assert.equal(f.keyOf('anthropic'), null);
		assert.deepEqual(f.call('clear_key', { provider: 'openai' }).reply, { result: true });
		assert.ok(!f.read('airelay').includes('api_key'), 'the legacy key is gone too');
		assert.deepEqual(f.call('keys').reply.keys, { openai: false, anthropic: false, local: false });
		assert.deepEqual(f.call('clear_key', { provider: 'gone' }).reply, { result: true }, 'clearing a deleted provider\'s key is fine');
		assert.match(f.call('clear_key', { provider: '../x' }).reply.error, /not a section name/);
		assert.equal(f.mode('airelay_keys'), 0o600);
		assert.deepEqual(f.leaks(KEY), []);
	});

	// Issue 19.6: saving a key started a daemon the user had stopped (`init running` said yes).
	for (const state of [ 'stopped', 'crashed' ])
		test(`${shell[0]}: a ${state} airelay is not started by a key change; the key is stored`, () => {
			const f = fixture(shell, { state });
			assert.deepEqual(f.call('set_key', { provider: 'anthropic', key: 'sk-x' }).reply, { result: true });
			assert.equal(f.keyOf('anthropic'), 'sk-x');
			assert.deepEqual(f.call('clear_key', { provider: 'openai' }).reply, { result: true });
			assert.equal(f.read('../init'), null, 'the init script was not run: nothing reloaded or started');
			assert.ok(f.read('../ubus').includes('call service list {"name":"airelay"}'), 'procd was asked');
		});

	test(`${shell[0]}: without ubus (not OpenWrt) nothing is reloaded or started`, () => {
		const f = fixture(shell, { ubus: false });
		assert.deepEqual(f.call('set_key', { provider: 'anthropic', key: 'sk-x' }).reply, { result: true });
		assert.equal(f.read('../init'), null);
	});
}
