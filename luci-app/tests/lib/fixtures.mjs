// A UCI config as LuCI's uci.js holds it, and host hints as luci-rpc getHostHints returns them.
export const SECRET = 'sk-DECOY-never-shown-0123456789';

export const config = {
	airelay: [
		{ '.name': 'main', '.type': 'airelay', enabled: '1', dns_listen: '127.0.0.1:5353', resolver: [ '9.9.9.9' ] },
		{ '.name': 'openai', '.type': 'provider', host: [ 'api.openai.com' ], upstream: 'https://api.openai.com', api_key: SECRET, fallback: [ 'anthropic' ] },
		{ '.name': 'anthropic', '.type': 'provider', host: [ 'api.anthropic.com' ], auth: 'x-api-key' },
		{ '.name': 'local', '.type': 'provider', host: [ 'llm.lan' ], enabled: '0' },
		{ '.name': 'cfg0a1b2c', '.type': 'client', name: 'Kids tablet', mac: [ 'aa:bb:cc:dd:ee:01' ], access: 'allow', provider: [ 'openai' ] }
	]
};

export const hostHints = {
	'AA:BB:CC:DD:EE:01': { name: 'tablet', ipaddrs: [ '192.168.1.50' ], ip6addrs: [ 'fd00::50' ] },
	'AA:BB:CC:DD:EE:02': { ipaddrs: [ '192.168.1.51' ] }
};
