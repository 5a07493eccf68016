// The forms accept what the daemon accepts: each value below goes through the validator the
// view attached to its field, and, in a config file, through `airelay check --config FILE`
// (exit 0: valid, 2: refused). The two must agree.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Env, options, airelay, uciQuote } from './lib/luci.mjs';
import { config, hostHints } from './lib/fixtures.mjs';

// [section type, option, value, accepted by the daemon (what the test expects of both)]
const CASES = [
	[ 'airelay', 'lan_ipv4', '192.168.1.1', true ],
	[ 'airelay', 'lan_ipv4', '10.0.0.256', false ],
	[ 'airelay', 'lan_ipv4', '192.168.01.1', false ],
	[ 'airelay', 'lan_ipv4', '192.168.1.0/24', false ],
	[ 'airelay', 'lan_ipv4', '::ffff:1.2.3.4', false ],
	[ 'airelay', 'lan_ipv4', '1.2.3', false ],
	[ 'airelay', 'lan_ipv4', 'router', false ],
	[ 'airelay', 'lan_ipv6', 'fd00::1', true ],
	[ 'airelay', 'lan_ipv6', '::', true ],
	[ 'airelay', 'lan_ipv6', '::ffff:1.2.3.4', true ],
	[ 'airelay', 'lan_ipv6', '::1.2.3.4', true ],
	[ 'airelay', 'lan_ipv6', '1:2:3:4:5:6:7:8', true ],
	[ 'airelay', 'lan_ipv6', '1:2:3:4:5:6:7:8:9', false ],
	[ 'airelay', 'lan_ipv6', '1::2::3', false ],
	[ 'airelay', 'lan_ipv6', '12345::', false ],
	[ 'airelay', 'lan_ipv6', 'fe80::1%br-lan', false ],
	[ 'airelay', 'lan_ipv6', 'fd00::/64', false ],
	[ 'airelay', 'lan_ipv6', '1.2.3.4', false ],
	[ 'airelay', 'dns_listen', '127.0.0.1:5353', true ],
	[ 'airelay', 'dns_listen', ':53', true ],
	[ 'airelay', 'dns_listen', '[::1]:53', true ],
	[ 'airelay', 'dns_listen', '0.0.0.0:0', true ],
	[ 'airelay', 'dns_listen', 'localhost:53', true ],
	[ 'airelay', 'dns_listen', ':+53', true ],
	[ 'airelay', 'dns_listen', '127.0.0.1', false ],
	[ 'airelay', 'dns_listen', '127.0.0.1:99999', false ],
	[ 'airelay', 'dns_listen', '::1:53', false ],
	[ 'airelay', 'dns_listen', 'Router.lan:53', false ],
	[ 'airelay', 'dns_listen', 'a b:53', false ],
	[ 'airelay', 'tls_listen', ':9443', true ],
	[ 'airelay', 'tls_listen', 'off', true ],
	[ 'airelay', 'listen_device', 'br-lan', true ],
	[ 'airelay', 'listen_device', 'eth0.2', true ],
	[ 'airelay', 'listen_device', 'br/lan', false ],
	[ 'airelay', 'listen_device', 'a-name-too-long0', false ],
	[ 'airelay', 'listen_device', 'br lan', false ],
	[ 'airelay', 'http_listen', 'off', true ],
	[ 'airelay', 'tls_listen', 'of', false ],
	[ 'airelay', 'status_listen', '[::1]:9099', true ],
	[ 'airelay', 'tls_fallback', '127.0.0.1:443', true ],
	[ 'airelay', 'tls_fallback', 'uhttpd.lan:443', true ],
	[ 'airelay', 'tls_fallback', ':443', false ],
	[ 'airelay', 'tls_fallback', 'off', true ],
	[ 'airelay', 'tls_fallback', '127.0.0.1:0', false ],
	[ 'airelay', 'resolver', '9.9.9.9', true ],
	[ 'airelay', 'resolver', '9.9.9.9:5353', true ],
	[ 'airelay', 'resolver', '[2620:fe::fe]:53', true ],
	[ 'airelay', 'resolver', '2620:fe::fe', true ],
	[ 'airelay', 'resolver', 'dns.quad9.net', false ],
	[ 'airelay', 'resolver', '9.9.9.9:0', false ],
	[ 'airelay', 'resolver', '9.9.9.9:', false ],
	[ 'airelay', 'resolver', 'fe80::1%eth0', false ],
	[ 'airelay', 'dns_ttl', '60', true ],
	[ 'airelay', 'dns_ttl', '86400', true ],
	[ 'airelay', 'dns_ttl', '+5', true ],
	[ 'airelay', 'dns_ttl', '007', true ],
	[ 'airelay', 'dns_ttl', '0', false ],
	[ 'airelay', 'dns_ttl', '86401', false ],
	[ 'airelay', 'dns_ttl', '1.5', false ],
	[ 'airelay', 'dns_ttl', 'abc', false ],
	[ 'airelay', 'max_conns', '1048576', true ],
	[ 'airelay', 'max_conns', '1048577', false ],
	[ 'airelay', 'memory_limit', '24M', true ],
	[ 'airelay', 'memory_limit', '0', true ],
	[ 'airelay', 'memory_limit', '64k', true ],
	[ 'airelay', 'memory_limit', '2MB', true ],
	[ 'airelay', 'memory_limit', '2 M', true ],
	[ 'airelay', 'memory_limit', '1024G', true ],
	[ 'airelay', 'memory_limit', '1025G', false ],
	[ 'airelay', 'memory_limit', '-1', false ],
	[ 'airelay', 'memory_limit', '1.5M', false ],
	[ 'airelay', 'memory_limit', 'M', false ],
	[ 'airelay', 'memory_limit', 'lots', false ],
	[ 'airelay', 'max_header_bytes', '1K', true ],
	[ 'airelay', 'max_header_bytes', '1024', true ],
	[ 'airelay', 'max_header_bytes', '1023', false ],
	[ 'airelay', 'idle_timeout', '10m', true ],
	[ 'airelay', 'idle_timeout', '90', true ],
	[ 'airelay', 'idle_timeout', '1h30m', true ],
	[ 'airelay', 'idle_timeout', '1.5h', true ],
	[ 'airelay', 'idle_timeout', '.5s', true ],
	[ 'airelay', 'idle_timeout', '+5s', true ],
	[ 'airelay', 'idle_timeout', '300ms', true ],
	[ 'airelay', 'idle_timeout', '1ns', true ],
	[ 'airelay', 'idle_timeout', '2147483647', true ],
	[ 'airelay', 'idle_timeout', '2147483648', false ],
	[ 'airelay', 'idle_timeout', '0.1ns', false ],
	[ 'airelay', 'idle_timeout', '0', false ],
	[ 'airelay', 'idle_timeout', '0s', false ],
	[ 'airelay', 'idle_timeout', '-5s', false ],
	[ 'airelay', 'idle_timeout', '5 s', false ],
	[ 'airelay', 'idle_timeout', '1d', false ],
	[ 'provider', 'host', 'api.openai.com', true ],
	[ 'provider', 'host', '*.openai.azure.com', true ],
	[ 'provider', 'host', 'API.OpenAI.com', true ],
	[ 'provider', 'host', 'api.example.net.', true ],
	[ 'provider', 'host', 'exa_mple.com', true ],
	[ 'provider', 'host', '10.1.2.3', true ],
	[ 'provider', 'host', 'localhost', false ],
	[ 'provider', 'host', '*.com', false ],
	[ 'provider', 'host', '-bad.com', false ],
	[ 'provider', 'host', 'a..b', false ],
	[ 'provider', 'host', 'https://api.openai.com', false ],
	[ 'provider', 'upstream', 'https://api.openai.com', true ],
	[ 'provider', 'upstream', 'https://api.openai.com/', true ],
	[ 'provider', 'upstream', 'http://10.0.0.2:8080/v1', true ],
	[ 'provider', 'upstream', 'HTTPS://api.openai.com', true ],
	[ 'provider', 'upstream', 'https://[fd00::1]:8443', true ],
	[ 'provider', 'upstream', 'ftp://api.openai.com', false ],
	[ 'provider', 'upstream', 'api.openai.com', false ],
	[ 'provider', 'upstream', 'https://user:pw@api.openai.com', false ],
	[ 'provider', 'upstream', 'https://api.openai.com/?a=1', false ],
	[ 'provider', 'upstream', 'https://api.openai.com/#top', false ],
	[ 'provider', 'upstream', 'https://api.openai.com:80:80', false ],
	[ 'provider', 'upstream', 'https://api openai.com', false ],
	[ 'provider', 'upstream', 'https://', false ],
	[ 'provider', 'upstream', 'https:api.openai.com', false ],
	[ 'provider', 'prefix', '/openai', true ],
	[ 'provider', 'prefix', '/a/b/', true ],
	[ 'provider', 'prefix', 'openai', false ],
	[ 'provider', 'prefix', '/', false ],
	[ 'provider', 'prefix', '/a//b', false ],
	[ 'provider', 'prefix', '/a?b', false ],
	[ 'provider', 'prefix', '/a b', false ],
	[ 'provider', 'prefix', '/a%20', false ],
	[ 'provider', 'connect', '10.0.0.5:443', true ],
	[ 'provider', 'connect', 'proxy.lan:8443', true ],
	[ 'provider', 'connect', '10.0.0.5', false ],
	[ 'provider', 'connect', ':443', false ],
	[ 'provider', 'egress', 'direct', true ],
	[ 'provider', 'egress', 'iface:wan', true ],
	[ 'provider', 'egress', 'socks5://127.0.0.1:1080', true ],
	[ 'provider', 'egress', 'socks5h://u:p@proxy.lan:1080', true ],
	[ 'provider', 'egress', 'http://proxy:3128', true ],
	[ 'provider', 'egress', 'http://proxy:3128/', true ],
	[ 'provider', 'egress', 'iface:', false ],
	[ 'provider', 'egress', 'iface:a/b', false ],
	[ 'provider', 'egress', 'iface:averyveryverylongname', false ],
	[ 'provider', 'egress', 'https://proxy:3128', false ],
	[ 'provider', 'egress', 'socks5://proxy', false ],
	[ 'provider', 'egress', 'socks5://proxy:1080/x', false ],
	[ 'provider', 'egress', 'socks5://:1080', false ],
	[ 'provider', 'egress', 'proxy:1080', false ],
	[ 'provider', 'api_key', 'sk-abc', true ],
	[ 'provider', 'api_key', 'a"b\\c', true ],
	// uci (and so LuCI's save) writes a ' as '\'', which the daemon reads back as a '
	[ 'provider', 'api_key', 'it\'s a key', true ],
	[ 'provider', 'upstream', 'https://api.openai.com/it\'s', true ],
	[ 'client', 'name', 'O\'Brien\'s tablet', true ],
	[ 'client', 'name', 'Kids tablet', true ],
	[ 'client', 'mac', 'aa:bb:cc:dd:ee:ff', true ],
	[ 'client', 'mac', 'AA-BB-CC-DD-EE-FF', true ],
	[ 'client', 'mac', 'aabb.ccdd.eeff', true ],
	[ 'client', 'mac', 'aa:bb:cc:dd:ee', false ],
	[ 'client', 'mac', 'aa:bb-cc:dd:ee:ff', false ],
	[ 'client', 'mac', 'aa:bb:cc:dd:ee:ff:00:11', false ],
	[ 'client', 'mac', 'gg:bb:cc:dd:ee:ff', false ],
	[ 'client', 'ip', '192.168.1.50', true ],
	[ 'client', 'ip', '192.168.1.0/24', true ],
	[ 'client', 'ip', '10.0.0.0/8', true ],
	[ 'client', 'ip', 'fd00::/64', true ],
	[ 'client', 'ip', 'fe80::1%br-lan', true ],
	[ 'client', 'ip', '192.168.1.0/33', false ],
	[ 'client', 'ip', '192.168.1.0/024', false ],
	[ 'client', 'ip', 'fe80::1%br-lan/64', false ],
	[ 'client', 'ip', 'lan', false ],
	[ 'client', 'schedule', 'Mon-Fri 15:00-20:00', true ],
	[ 'client', 'schedule', 'Sat,Sun 09:00-21:00', true ],
	[ 'client', 'schedule', 'daily 07:00-21:00', true ],
	[ 'client', 'schedule', 'DAILY 7:00-9:30', true ],
	[ 'client', 'schedule', 'every 07:00-21:00', true ],
	[ 'client', 'schedule', '15:00-20:00', true ],
	[ 'client', 'schedule', '  Mon   15:00-20:00  ', true ],
	[ 'client', 'schedule', 'Fri-Mon 22:00-02:00', true ],
	[ 'client', 'schedule', 'monday,WEDNESDAY,fri 08:00-09:00', true ],
	[ 'client', 'schedule', 'Mon-Wed,Sat 0:00-24:00', true ],
	[ 'client', 'schedule', 'Sun 23:59-00:00', true ],
	[ 'client', 'schedule', 'Mon-Mon 10:00-11:00', true ],
	[ 'client', 'schedule', 'Fry 10:00-11:00', false ],
	[ 'client', 'schedule', 'Tues 10:00-11:00', false ],
	[ 'client', 'schedule', 'Mon,,Tue 10:00-11:00', false ],
	[ 'client', 'schedule', 'Mon- 10:00-11:00', false ],
	[ 'client', 'schedule', '-Fri 10:00-11:00', false ],
	[ 'client', 'schedule', 'Mon-Tue-Wed 10:00-11:00', false ],
	[ 'client', 'schedule', 'Mon 10:00', false ],
	[ 'client', 'schedule', 'Mon 10-11', false ],
	[ 'client', 'schedule', 'Mon 10:0-11:00', false ],
	[ 'client', 'schedule', 'Mon 100:00-11:00', false ],
	[ 'client', 'schedule', 'Mon +1:00-11:00', false ],
	[ 'client', 'schedule', 'Mon 10:00-11:00-12:00', false ],
	[ 'client', 'schedule', 'Mon 24:00-10:00', false ],
	[ 'client', 'schedule', 'Mon 10:00-24:01', false ],
	[ 'client', 'schedule', 'Mon 10:60-11:00', false ],
	[ 'client', 'schedule', 'Mon 10:00-10:00', false ],
	[ 'client', 'schedule', '00:00-00:00', false ],
	[ 'client', 'schedule', 'Mon Tue 10:00-11:00', false ],
	[ 'client', 'schedule', 'Mon-Fri', false ],
	[ 'client', 'schedule_cut', '5m', true ],
	[ 'client', 'schedule_cut', '30', true ],
	[ 'client', 'schedule_cut', '0', false ],
	[ 'client', 'schedule_cut', 'soon', false ],
	[ 'client', 'daily_tokens', '5000', true ],
	[ 'client', 'daily_tokens', '0', true ],
	[ 'client', 'daily_tokens', '1125899906842624', true ],
	[ 'client', 'daily_tokens', '1125899906842625', false ],
	[ 'client', 'daily_tokens', '-1', false ],
	[ 'client', 'daily_tokens', '5k', false ],
	[ 'client', 'daily_requests', '100', true ],
	[ 'client', 'daily_requests', '1.5', false ],
	[ 'client', 'daily_bytes', '500M', true ],
	[ 'client', 'daily_bytes', '0', true ],
	[ 'client', 'daily_bytes', '2T', false ],
	[ 'airelay', 'default_daily_tokens', '20000', true ],
	[ 'airelay', 'default_daily_tokens', '-5', false ],
	[ 'airelay', 'default_daily_requests', '0', true ],
	[ 'airelay', 'default_daily_requests', 'many', false ],
	[ 'airelay', 'default_daily_bytes', '1G', true ],
	[ 'airelay', 'default_daily_bytes', '1.5G', false ],
	[ 'airelay', 'history_days', '1', true ],
	[ 'airelay', 'history_days', '366', true ],
	[ 'airelay', 'history_days', '0', false ],
	[ 'airelay', 'history_days', '367', false ],
	[ 'airelay', 'history_interval', '1m', true ],
	[ 'airelay', 'history_interval', '60', true ],
	[ 'airelay', 'history_interval', '6h', true ],
	[ 'airelay', 'history_interval', '59s', false ],
	[ 'airelay', 'history_interval', '59', false ],
	[ 'airelay', 'history_interval', '59.9s', false ],
	[ 'airelay', 'history_interval', '0', false ],
	[ 'airelay', 'history_file', '/etc/airelay/history.json', true ]
];

// The config every case changes one option of: each option is valid and none collides with a
// case (hosts, prefixes, addresses).
const BASE = {
	main: { type: 'airelay', opts: { dns_listen: '127.0.0.1:5353', tls_listen: ':8443', http_listen: ':8080', status_listen: '127.0.0.1:9099' } },
	p: { type: 'provider', opts: { host: [ 'api.base-p.test' ] } },
	q: { type: 'provider', opts: { host: [ 'api.base-q.test' ] } },
	c: { type: 'client', opts: { mac: [ '02:00:00:00:00:01' ] } }
};
const SECTION = { airelay: 'main', provider: 'p', client: 'c' };

function uciFile(type, option, value, list) {
	let out = '';
	for (const [ name, s ] of Object.entries(BASE)) {
		const opts = { ...s.opts };
		if (SECTION[type] === name)
			opts[option] = list ? [ value ] : value;
		out += `config ${s.type} '${name}'\n`;
		for (const [ k, v ] of Object.entries(opts))
			for (const one of Array.isArray(v) ? v : [ v ])
				out += `\t${Array.isArray(v) ? 'list' : 'option'} ${k} ${uciQuote(one)}\n`;
		out += '\n';
	}
	return out;
}

const env = new Env({ uci: config, rpc: { 'luci-rpc.getHostHints': hostHints } });
for (const v of [ 'settings', 'providers', 'clients' ])
	await env.view(v);
const byType = options(env);
const bin = airelay();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luci-airelay-validate-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

test('the base config is valid', () => {
	const f = path.join(dir, 'base');
	fs.writeFileSync(f, uciFile('airelay', 'enabled', '1', false));
	const r = spawnSync(bin, [ 'check', '--config', f ], { encoding: 'utf8' });
	assert.equal(r.status, 0, r.stderr);
});

for (const [ type, option, value, want ] of CASES) {
	test(`${type}.${option} = ${JSON.stringify(value)}: form and daemon ${want ? 'accept' : 'refuse'}`, () => {
		const found = byType[type].find((x) => x.option.option === option);
		assert.ok(found, `no control for ${type}.${option}`);
		const o = found.option;
		const list = o.constructor.name === 'DynamicList';
		const f = path.join(dir, `${type}-${option}`);
		fs.writeFileSync(f, uciFile(type, option, value, list));
		const r = spawnSync(bin, [ 'check', '--config', f ], { encoding: 'utf8' });
		assert.ok(r.status === 0 || r.status === 2, `airelay check exited ${r.status}: ${r.stderr}`);
		const daemon = r.status === 0;
		const form = o.validate(SECTION[type], value) === true;
		assert.equal(daemon, want, `airelay check: ${r.stderr.trim()}`);
		assert.equal(form, want, `form validator says ${JSON.stringify(o.validate(SECTION[type], value))}`);
	});
}

// A refused schedule line gets the daemon's own message in the form: `airelay check` prints
// "FILE: section 'c' option 'schedule' value '…': MESSAGE", and MESSAGE is the validator's.
test('schedule: the form says what airelay check says', () => {
	const o = byType.client.find((x) => x.option.option === 'schedule').option;
	const refused = CASES.filter(([ t, opt, , want ]) => t === 'client' && opt === 'schedule' && !want);
	assert.ok(refused.length >= 15);
	const seen = new Set();
	for (const [ , , value ] of refused) {
		const f = path.join(dir, 'schedule-message');
		fs.writeFileSync(f, uciFile('client', 'schedule', value, true));
		const r = spawnSync(bin, [ 'check', '--config', f ], { encoding: 'utf8' });
		const msg = o.validate('c', value);
		assert.equal(typeof msg, 'string', `${value}: the form accepts it`);
		assert.ok(r.stderr.includes(`': ${msg}\n`), `${JSON.stringify(value)}: the form says ${JSON.stringify(msg)}, airelay check says ${r.stderr.trim()}`);
		seen.add(msg.replace(/'[^']*'/g, "'X'"));
	}
	// each of the daemon's schedule messages is met
	for (const want of [ "unknown day 'X' (Mon, Tue, Wed, Thu, Fri, Sat, Sun)", 'missing day name (Mon, Tue, Wed, Thu, Fri, Sat, Sun)',
		"time range 'X': want HH:MM-HH:MM", "time 'X': want HH:MM", "time 'X': out of range (00:00 to 23:59, or 24:00 as an end)",
		"time range 'X' is empty (for a whole day write 00:00-24:00)", "want DAYS HH:MM-HH:MM, e.g. 'X'" ])
		assert.ok(seen.has(want), `no case gives ${want}`);
});

test('every validated option of the views is exercised by the table', () => {
	const tested = new Set(CASES.map(([ t, o ]) => `${t}.${o}`));
	const kinds = new Set();
	for (const [ type, list ] of Object.entries(byType))
		for (const { option: o } of list)
			if (o.validate?.kind && o.validate.kind !== 'ref' && tested.has(`${type}.${o.option}`))
				kinds.add(o.validate.kind);
	for (const k of [ 'ipv4', 'ipv6', 'hostport', 'dialaddr', 'resolver', 'int', 'size', 'duration',
		'host', 'url', 'prefix', 'egress', 'secret', 'string', 'mac', 'cidr', 'device', 'schedule' ])
		assert.ok(kinds.has(k), `no case for validator kind ${k}`);
});

// Many generated schedule lines at once, one client section each, in one `airelay check`: for
// each section the daemon's message (or none) must be the form's.
test('schedule: 600 generated lines, the form and airelay check agree on each, message included', () => {
	const o = byType.client.find((x) => x.option.option === 'schedule').option;
	const PARTS = [ 'Mon', 'tue', 'WED', 'Thursday', 'fri', 'Sat', 'sunday', 'Sun', 'Fry', 'daily', 'Every', 'mon',
		'-', '-', ',', ',', ' ', ' ', ' ', '\t', ':', '0', '00', '7', '9', '12', '15', '20', '23', '24', '59', '60', '30', '+1', 'x' ];
	let seed = 16;
	const rand = (n) => {
		seed = (seed * 1103515245 + 12345) % 2147483648;
		return Math.floor(seed / 65536) % n; // the high bits: the low ones of this generator cycle fast
	};
	const clock = () => [ '00:00', '7:30', '15:00', '20:00', '23:59', '24:00', '24:01', '9:5', '12:60', '1:00' ][rand(10)];
	const lines = new Set();
	while (lines.size < 600) {
		let l = '';
		if (rand(2)) { // shaped like a schedule, with mistakes
			l = [ '', 'Mon-Fri ', 'Sat,Sun ', 'Fri-Mon ', 'daily ', 'Mon,,Tue ', 'Mon- ', 'Tues ' ][rand(8)] + clock() + [ '-', '-', '', '--' ][rand(4)] + clock();
		}
		else {
			for (let n = 1 + rand(9); n > 0; n--)
				l += PARTS[rand(PARTS.length)];
		}
		if (l.trim() !== '')
			lines.add(l);
	}
	const all = [ ...lines ];
	let conf = 'config airelay \'main\'\n';
	all.forEach((l, i) => { conf += `config client 'c${i}'\n\tlist mac '02:00:00:00:00:01'\n\tlist schedule ${uciQuote(l)}\n`; });
	const f = path.join(dir, 'schedule-generated');
	fs.writeFileSync(f, conf);
	const r = spawnSync(bin, [ 'check', '--config', f ], { encoding: 'utf8' });
	const daemon = {};
	for (const m of r.stderr.matchAll(/section 'c(\d+)' option 'schedule' value '(?:[^'\n]|'\\'')*': (.*)/g))
		daemon[m[1]] = m[2];
	let refused = 0;
	all.forEach((l, i) => {
		const form = o.validate(`c${i}`, l);
		assert.equal(form === true ? null : form, daemon[i] ?? null, `line ${JSON.stringify(l)}`);
		if (form !== true)
			refused++;
	});
	assert.ok(refused > 100 && refused < 590, `a mix of good and bad lines (${refused} refused)`);
});
