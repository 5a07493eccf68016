// A UCI config as LuCI's uci.js holds it, and host hints as luci-rpc getHostHints returns them.
export const SECRET = 'sk-DECOY-never-shown-0123456789';

export const config = {
	airelay: [
		{ '.name': 'main', '.type': 'airelay', enabled: '1', dns_listen: '127.0.0.1:5353', resolver: [ '9.9.9.9' ] },
		{ '.name': 'openai', '.type': 'provider', host: [ 'api.openai.com' ], upstream: 'https://api.openai.com', api_key: SECRET, fallback: [ 'anthropic' ] },
		{ '.name': 'anthropic', '.type': 'provider', host: [ 'api.anthropic.com' ], auth: 'x-api-key' },
		{ '.name': 'local', '.type': 'provider', host: [ 'llm.lan' ], enabled: '0' },
		{ '.name': 'cfg0a1b2c', '.type': 'client', name: 'Kids tablet', mac: [ 'aa:bb:cc:dd:ee:01' ], access: 'allow', provider: [ 'openai' ] }
	],
	// the router's networks (read only): lan and a guest and an IoT network, each in a zone that
	// does not masquerade (LAN-side), and the wan
	network: [
		{ '.name': 'loopback', '.type': 'interface', device: 'lo', proto: 'static' },
		{ '.name': 'lan', '.type': 'interface', device: 'br-lan', proto: 'static' },
		{ '.name': 'wan', '.type': 'interface', device: 'eth1', proto: 'dhcp' },
		{ '.name': 'guest', '.type': 'interface', device: 'br-guest', proto: 'static' },
		{ '.name': 'iot', '.type': 'interface', type: 'bridge', ifname: 'eth0.3', proto: 'static' },
		{ '.name': 'globals', '.type': 'globals', ula_prefix: 'fd00::/48' }
	],
	firewall: [
		{ '.name': 'cfg01', '.type': 'defaults', input: 'REJECT' },
		{ '.name': 'cfg02', '.type': 'zone', name: 'lan', network: [ 'lan' ], input: 'ACCEPT' },
		{ '.name': 'cfg03', '.type': 'zone', name: 'wan', network: 'wan wan6', masq: '1' },
		{ '.name': 'cfg04', '.type': 'zone', name: 'guest', network: [ 'guest', 'iot' ], input: 'REJECT' }
	]
};

export const hostHints = {
	'AA:BB:CC:DD:EE:01': { name: 'tablet', ipaddrs: [ '192.168.1.50' ], ip6addrs: [ 'fd00::50' ] },
	'AA:BB:CC:DD:EE:02': { ipaddrs: [ '192.168.1.51' ] }
};
