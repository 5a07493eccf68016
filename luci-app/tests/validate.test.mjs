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
	[ 'client', 'ip', 'lan', false ]
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

test('every validated option of the views is exercised by the table', () => {
	const tested = new Set(CASES.map(([ t, o ]) => `${t}.${o}`));
	const kinds = new Set();
	for (const [ type, list ] of Object.entries(byType))
		for (const { option: o } of list)
			if (o.validate?.kind && o.validate.kind !== 'ref' && tested.has(`${type}.${o.option}`))
				kinds.add(o.validate.kind);
	for (const k of [ 'ipv4', 'ipv6', 'hostport', 'dialaddr', 'resolver', 'int', 'size', 'duration',
		'host', 'url', 'prefix', 'egress', 'secret', 'string', 'mac', 'cidr', 'device' ])
		assert.ok(kinds.has(k), `no case for validator kind ${k}`);
});
