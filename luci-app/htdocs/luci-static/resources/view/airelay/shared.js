'use strict';
'require baseclass';
'require dom';
'require rpc';

/*
 * Shared by the airelay views; not a page of its own (no menu entry points here).
 *
 * check.<type>(value) mirrors what the daemon's config loader accepts for each option type of
 * `airelay schema --json` (src/internal/config/load.go) and returns null or an error message, so
 * a form refuses what `airelay check` would refuse. LuCI's own datatypes do not fit: its
 * hostport needs a host (":8443" listens on every address), ip4addr takes a /mask, host
 * knows no "*.example.com". luci-app/tests/validate.test.mjs runs these functions against
 * `airelay check` on a table of values.
 *
 * Empty means "not set" (the schema default): UCI cannot store an empty value, so the forms
 * remove an emptied option instead, and the validators accept "". An address option that is
 * on by default is switched off with the word "off", which the daemon reads as empty.
 *
 * health() and banner() give every page the same warning when airelay refuses the saved
 * configuration (`airelay check`), serves the last valid one instead of it or refuses the
 * devices it restricts because no configuration ever passed (status config.state), or kept its
 * previous one on the last reload (config.last_error), so a refusal after Save & Apply shows on
 * whatever page the user is on. keepUnset() makes a Flag or ListValue save only what the user
 * changed. strictList() and guardDialog() make a refused value stop a save, with its field and
 * why, in list fields too (LuCI itself drops a refused entry still in a list's input box and
 * saves the rest). routerNetworks() reads the router's networks and which are LAN-side.
 * liveWidgets() keeps a form from asking LuCI for a widget LuCI has already let go of (a
 * page error "Cannot read properties of undefined (reading '_class')" otherwise).
 */

const callStatus = rpc.declare({
	object: 'luci.airelay',
	method: 'status',
	expect: { '': {} }
});

const callCheck = rpc.declare({
	object: 'luci.airelay',
	method: 'check',
	expect: { '': {} }
});

const DIGITS = /^[0-9]+$/;

function isHex(c) {
	return /^[0-9a-fA-F]$/.test(c);
}

/* strconv.Atoi / ParseInt(s, 10, 64): optional sign, decimal digits, int64 range. */
function parseInt64(s) {
	const m = /^([+-]?)([0-9]+)$/.exec(s);
	if (!m)
		return null;
	const n = BigInt(m[2]) * (m[1] === '-' ? -1n : 1n);
	if (n > 9223372036854775807n || n < -9223372036854775808n)
		return null;
	return n;
}

/* netip.ParseAddr's IPv4 fields between start and end: four decimal bytes, no leading zeros. */
function parseIPv4Fields(s) {
	const parts = s.split('.');
	if (parts.length !== 4)
		return null;
	for (const p of parts) {
		if (!DIGITS.test(p) || p.length > 3 || (p.length > 1 && p[0] === '0') || +p > 255)
			return null;
	}
	return parts.map(Number);
}

/* netip.ParseAddr for an address with a ':' (IPv6, optional %zone, embedded IPv4 at the end). */
function parseIPv6(input) {
	let s = input, zone = '';
	const pct = s.indexOf('%');
	if (pct >= 0) {
		zone = s.substring(pct + 1);
		s = s.substring(0, pct);
		if (zone === '')
			return null;
	}
	let i = 0, ellipsis = -1;
	if (s.startsWith('::')) {
		ellipsis = 0;
		s = s.substring(2);
		if (s === '')
			return { v4: false, zone: zone };
	}
	while (i < 16) {
		let off = 0, acc = 0;
		for (; off < s.length; off++) {
			if (!isHex(s[off]))
				break;
			acc = acc * 16 + parseInt(s[off], 16);
			if (off > 3 || acc > 0xffff)
				return null;
		}
		if (off === 0)
			return null;
		if (off < s.length && s[off] === '.') {
			if ((ellipsis < 0 && i !== 12) || i + 4 > 16)
				return null;
			if (!parseIPv4Fields(s))
				return null;
			s = '';
			i += 4;
			break;
		}
		i += 2;
		s = s.substring(off);
		if (s === '')
			break;
		if (s[0] !== ':' || s.length === 1)
			return null;
		s = s.substring(1);
		if (s[0] === ':') {
			if (ellipsis >= 0)
				return null;
			ellipsis = i;
			s = s.substring(1);
			if (s === '')
				break;
		}
	}
	if (s !== '')
		return null;
	if (i < 16 && ellipsis < 0)
		return null;
	if (i === 16 && ellipsis >= 0)
		return null;
	return { v4: false, zone: zone };
}

/* netip.ParseAddr: { v4, zone } or null. An IPv4-mapped IPv6 address is not v4, as in Go. */
function parseAddr(s) {
	for (let i = 0; i < s.length; i++) {
		switch (s[i]) {
		case '.':
			return parseIPv4Fields(s) ? { v4: true, zone: '' } : null;
		case ':':
			return parseIPv6(s);
		case '%':
			return null;
		}
	}
	return null;
}

/* net.SplitHostPort: [host, port] or null. */
function splitHostPort(hp) {
	const i = hp.lastIndexOf(':');
	if (i < 0)
		return null;
	let host, j = 0, k = 0;
	if (hp[0] === '[') {
		const end = hp.indexOf(']');
		if (end < 0 || end + 1 !== i)
			return null;
		host = hp.substring(1, end);
		j = 1;
		k = end + 1;
	}
	else {
		host = hp.substring(0, i);
		if (host.indexOf(':') >= 0)
			return null;
	}
	if (hp.substring(j).indexOf('[') >= 0 || hp.substring(k).indexOf(']') >= 0)
		return null;
	return [ host, hp.substring(i + 1) ];
}

/* validHostname: lower-case letters, digits, '-' and '_' in dot-separated labels of 1-63. */
function validHostname(h) {
	if (h === '' || h.length > 253)
		return false;
	return h.split('.').every(function(l) {
		return l.length > 0 && l.length <= 63 && l[0] !== '-' && l[l.length - 1] !== '-' &&
			/^[a-z0-9_-]+$/.test(l);
	});
}

/* checkHostPort: null or an error message. */
function checkHostPort(v, needHost) {
	if (v === 'off')
		return null; /* the daemon reads 'off' as "not set to anything": LuCI cannot store '' */
	const hp = splitHostPort(v);
	if (!hp)
		return _('want host:port (IPv6 as [addr]:port)');
	const p = parseInt64(hp[1]);
	if (p === null || p < 0n || p > 65535n || (p === 0n && needHost))
		return _('port must be 1-65535');
	if (hp[0] === '')
		return needHost ? _('the host is missing') : null;
	if (parseAddr(hp[0]) || validHostname(hp[0]))
		return null;
	return _('neither an IP address nor a host name');
}

/* net/url.Parse, as far as airelay looks at its result: scheme (lower case), opaque, user,
 * host, path, query, fragment; null where Go returns an error. */
const HOST_CHARS = /^[A-Za-z0-9\-_.~!$&'()*+,;=:\[\]<>"]$/;

function unescapeOK(s, host) {
	for (let i = 0; i < s.length; i++) {
		const c = s[i];
		if (c === '%') {
			if (i + 2 >= s.length || !isHex(s[i + 1]) || !isHex(s[i + 2]))
				return false;
			if (host && parseInt(s[i + 1], 16) < 8 && s.substring(i, i + 3) !== '%25')
				return false;
			i += 2;
		}
		else if (host && c.charCodeAt(0) < 0x80 && !HOST_CHARS.test(c)) {
			return false;
		}
	}
	return true;
}

function parseHost(scheme, host) {
	const open = host.lastIndexOf('[');
	if (open > 0)
		return null;
	if (open === 0) {
		const close = host.lastIndexOf(']');
		if (close < 0)
			return null;
		const port = host.substring(close + 1);
		if (port !== '' && !/^:[0-9]*$/.test(port))
			return null;
		const a = parseAddr(host.substring(1, close).replace('%25', '%'));
		if (!a || a.v4)
			return null;
		return host;
	}
	const i = host.indexOf(':');
	if (i >= 0) {
		if (host.lastIndexOf(':') !== i)
			return null;
		if (!/^:[0-9]*$/.test(host.substring(i)))
			return null;
	}
	return unescapeOK(host, true) ? host : null;
}

function parseURL(raw) {
	if (/[\x00-\x1f\x7f]/.test(raw))
		return null;
	const u = { scheme: '', opaque: '', user: null, host: '', path: '', query: '', fragment: '' };
	const hash = raw.indexOf('#');
	if (hash >= 0) {
		u.fragment = raw.substring(hash + 1);
		raw = raw.substring(0, hash);
		if (!unescapeOK(u.fragment, false))
			return null;
	}
	let rest = raw;
	const sm = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(raw);
	if (raw[0] === ':')
		return null;
	if (sm) {
		u.scheme = sm[1].toLowerCase();
		rest = raw.substring(sm[0].length);
	}
	const q = rest.indexOf('?');
	if (q >= 0) {
		u.query = rest.substring(q + 1);
		rest = rest.substring(0, q);
	}
	if (!rest.startsWith('/')) {
		if (u.scheme !== '') {
			u.opaque = rest;
			return u;
		}
		if (rest.split('/')[0].indexOf(':') >= 0)
			return null;
	}
	if ((u.scheme !== '' || !rest.startsWith('///')) && rest.startsWith('//')) {
		let auth = rest.substring(2);
		rest = '';
		const slash = auth.indexOf('/');
		if (slash >= 0) {
			rest = auth.substring(slash);
			auth = auth.substring(0, slash);
		}
		const at = auth.lastIndexOf('@');
		const host = parseHost(u.scheme, at < 0 ? auth : auth.substring(at + 1));
		if (host === null)
			return null;
		if (at >= 0) {
			const info = auth.substring(0, at);
			if (!/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(info) || !unescapeOK(info, false))
				return null;
			const colon = info.indexOf(':');
			u.user = colon < 0 ? { name: info, pass: '' } : { name: info.substring(0, colon), pass: info.substring(colon + 1) };
		}
		u.host = host;
	}
	if (!unescapeOK(rest, false))
		return null;
	u.path = rest;
	return u;
}

/* time.ParseDuration, then the daemon's "positive" rule; plain seconds are accepted too. */
const UNITS = { 'ns': 1n, 'us': 1000n, '\u00b5s': 1000n, '\u03bcs': 1000n, 'ms': 1000000n,
	's': 1000000000n, 'm': 60000000000n, 'h': 3600000000000n };
const MAX63 = 1n << 63n;

function parseGoDuration(s) {
	let neg = false;
	if (s !== '' && (s[0] === '-' || s[0] === '+')) {
		neg = s[0] === '-';
		s = s.substring(1);
	}
	if (s === '0')
		return 0n;
	if (s === '')
		return null;
	let d = 0n;
	while (s !== '') {
		if (!(s[0] === '.' || (s[0] >= '0' && s[0] <= '9')))
			return null;
		let v = 0n, i = 0;
		for (; i < s.length && s[i] >= '0' && s[i] <= '9'; i++) {
			if (v > MAX63 / 10n)
				return null;
			v = v * 10n + BigInt(s[i]);
			if (v > MAX63)
				return null;
		}
		const pre = i > 0;
		s = s.substring(i);
		let f = 0n, scale = 1, post = false;
		if (s[0] === '.') {
			s = s.substring(1);
			let j = 0, over = false;
			for (; j < s.length && s[j] >= '0' && s[j] <= '9'; j++) {
				if (over)
					continue;
				if (f > (MAX63 - 1n) / 10n) {
					over = true;
					continue;
				}
				const y = f * 10n + BigInt(s[j]);
				if (y > MAX63) {
					over = true;
					continue;
				}
				f = y;
				scale *= 10;
			}
			post = j > 0;
			s = s.substring(j);
		}
		if (!pre && !post)
			return null;
		let k = 0;
		while (k < s.length && s[k] !== '.' && !(s[k] >= '0' && s[k] <= '9'))
			k++;
		if (k === 0)
			return null;
		const unit = UNITS[s.substring(0, k)];
		s = s.substring(k);
		if (unit === undefined || v > MAX63 / unit)
			return null;
		v *= unit;
		if (f > 0n) {
			v += BigInt(Math.floor(Number(f) * (Number(unit) / scale)));
			if (v > MAX63)
				return null;
		}
		d += v;
		if (d > MAX63)
			return null;
	}
	if (neg)
		return -d;
	return d > MAX63 - 1n ? null : d;
}

/* The white space of Go's strings.Fields (unicode.IsSpace). */
const GO_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
const DAY_NAMES = [ 'sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' ];
const FULL_DAY_NAMES = [ 'sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday' ];
const DAY_LIST = '(Mon, Tue, Wed, Thu, Fri, Sat, Sun)';

/* Go's strings.Cut: [before, after, found]. */
function cut(s, sep) {
	const i = s.indexOf(sep);
	return i < 0 ? [ s, '', false ] : [ s.substring(0, i), s.substring(i + sep.length), true ];
}

/* schedule.parseDay: the weekday (0 = Sunday) or an error message. The daemon's messages are
 * kept in English, word for word, so the form says what `airelay check` says. */
function parseDay(s) {
	const l = s.toLowerCase();
	for (let d = 0; d < 7; d++)
		if (l === DAY_NAMES[d] || l === FULL_DAY_NAMES[d])
			return d;
	if (s === '')
		return 'missing day name ' + DAY_LIST;
	return 'unknown day \'' + s + '\' ' + DAY_LIST;
}

/* schedule.parseClock: minutes after midnight or an error message; 24:00 only as an end. */
function parseClock(s, end) {
	const hm = cut(s, ':');
	if (!hm[2] || !/^[0-9]{1,2}$/.test(hm[0]) || !/^[0-9]{2}$/.test(hm[1]))
		return 'time \'' + s + '\': want HH:MM';
	const h = +hm[0], m = +hm[1];
	if (h === 24 && m === 0 && end)
		return 1440;
	if (h > 23 || m > 59)
		return 'time \'' + s + '\': out of range (00:00 to 23:59, or 24:00 as an end)';
	return h * 60 + m;
}

/* schedule.ParseWindow: { days (bit d = weekday d), start, end } or an error message. */
function parseWindow(line) {
	const f = line.split(GO_SPACE).filter(function(x) { return x !== ''; });
	let days, span;
	if (f.length === 1) {
		days = 'daily';
		span = f[0];
	}
	else if (f.length === 2) {
		days = f[0];
		span = f[1];
	}
	else {
		return 'want DAYS HH:MM-HH:MM, e.g. \'Mon-Fri 15:00-20:00\'';
	}
	let set = 0;
	if (days.toLowerCase() === 'daily' || days.toLowerCase() === 'every') {
		set = 0x7f;
	}
	else {
		for (const part of days.split(',')) {
			const r = cut(part, '-');
			const from = parseDay(r[0]);
			if (typeof from === 'string')
				return from;
			let to = from;
			if (r[2]) {
				to = parseDay(r[1]);
				if (typeof to === 'string')
					return to;
			}
			for (let d = from; ; d = (d + 1) % 7) {
				set |= 1 << d;
				if (d === to)
					break;
			}
		}
	}
	const ab = cut(span, '-');
	if (!ab[2])
		return 'time range \'' + span + '\': want HH:MM-HH:MM';
	const start = parseClock(ab[0], false);
	if (typeof start === 'string')
		return start;
	const end = parseClock(ab[1], true);
	if (typeof end === 'string')
		return end;
	if (start === end)
		return 'time range \'' + span + '\' is empty (for a whole day write 00:00-24:00)';
	return { days: set, start: start, end: end };
}

/* The daemon's errors hide what in a value may be a credential (config/redact.go): a URL's
 * query and fragment, its user info, and every word that looks like an API key; a message
 * quoting such a part shows REDACTED, and a key-looking word adds a hint. The form words its
 * messages as `airelay check` does, so it does the same. */
const KEY_PREFIXES = [ 'sk-', 'AIza', 'xai-', 'gsk_', 'pplx-', 'hf_', 'r8_', 'nvapi-', 'csk-', 'fw_' ];

function isWordChar(c) {
	return /^[A-Za-z0-9_-]$/.test(c);
}

function looksLikeKey(w) {
	if (w.length >= 12 && KEY_PREFIXES.some(function(p) { return w.indexOf(p) === 0; }))
		return true;
	return w.length >= 20 && /[A-Za-z]/.test(w) && /[0-9]/.test(w);
}

function daemonWords(value, msg) {
	const hidden = [];
	let rest = value;
	const q = rest.search(/[?#]/);
	if (q >= 0) {
		hidden.push(rest.slice(q + 1));
		rest = rest.slice(0, q);
	}
	const scheme = rest.indexOf('://');
	if (scheme >= 0)
		rest = rest.slice(scheme + 3);
	const at = rest.lastIndexOf('@');
	if (at >= 0) {
		hidden.push(rest.slice(0, at));
		rest = rest.slice(at);
	}
	let key = false;
	for (let i = 0; i < rest.length;) {
		let n = 0;
		while (i + n < rest.length && isWordChar(rest[i + n]))
			n++;
		if (n > 0 && looksLikeKey(rest.substr(i, n))) {
			hidden.push(rest.substr(i, n));
			key = true;
		}
		i += Math.max(n, 1);
	}
	hidden.sort(function(a, b) { return b.length - a.length; });
	hidden.forEach(function(h) {
		if (h.length >= 8)
			msg = msg.split(h).join('REDACTED');
	});
	if (key)
		msg += ' (it looks like it holds an API key: a key goes in option api_key, which is never shown)';
	return msg;
}

const check = {
	bool: function(v) {
		return /^(1|on|true|yes|enabled|0|off|false|no|disabled)$/.test(v) ? null : _('not a boolean (use 0 or 1)');
	},

	string: function(v) {
		return /[\r\n\x00]/.test(v) ? _('no line breaks') : null;
	},

	int: function(v, o) {
		const n = parseInt64(v);
		if (n === null || n < BigInt(o.min) || n > BigInt(o.max))
			return _('must be a whole number from %d to %d').format(o.min, o.max);
		return null;
	},

	/* o.minSeconds and o.minText: the least the daemon takes for this option. */
	duration: function(v, o) {
		const n = parseInt64(v);
		let d;
		if (n !== null && n > 0n && n < (1n << 31n))
			d = n * 1000000000n;
		else
			d = parseGoDuration(v);
		if (d === null || d <= 0n)
			return _('not a positive duration (like 30s, 5m, or seconds)');
		if (o && o.minSeconds && d < BigInt(o.minSeconds) * 1000000000n)
			return _('must be at least %s').format(o.minText);
		return null;
	},

	/* A schedule line, [DAYS] HH:MM-HH:MM; the messages are the daemon's own. */
	schedule: function(v) {
		const w = parseWindow(v);
		return typeof w === 'string' ? w : null;
	},

	size: function(v, o) {
		let num = v.toUpperCase(), mult = 1n;
		if (num.endsWith('B'))
			num = num.substring(0, num.length - 1);
		if (num !== '') {
			mult = { 'K': 1n << 10n, 'M': 1n << 20n, 'G': 1n << 30n }[num[num.length - 1]] || 1n;
			if (mult > 1n)
				num = num.substring(0, num.length - 1).trim();
		}
		const n = parseInt64(num);
		if (n === null || n < 0n || n > (1n << 40n) / mult)
			return _('not a size (like 512, 64K, 24M, 1G)');
		if (o && o.minBytes && n * mult < BigInt(o.minBytes))
			return _('must be at least %s').format(o.minText);
		return null;
	},

	enum: function(v, o) {
		return o.values.indexOf(v) >= 0 ? null : _('must be one of: %s').format(o.values.join(', '));
	},

	/* A listen address: the host may be empty (every address) and the port 0 (any). */
	hostport: function(v) {
		return checkHostPort(v, false);
	},

	/* A destination: host and a port of 1-65535. */
	dialaddr: function(v) {
		return checkHostPort(v, true);
	},

	/* A DNS server: an IP address, optionally with :port (53 by default). */
	resolver: function(v) {
		let host = v, port = '53';
		const hp = splitHostPort(v);
		if (hp) {
			host = hp[0];
			port = hp[1];
		}
		const a = parseAddr(host.replace(/^[\[\]]+|[\[\]]+$/g, ''));
		if (!a || a.zone !== '')
			return _('a resolver must be an IP address, optionally with :port');
		const p = parseInt64(port);
		if (p === null || p < 1n || p > 65535n)
			return _('port must be 1-65535');
		return null;
	},

	ipv4: function(v) {
		const a = parseAddr(v);
		return (a && a.v4 && a.zone === '') ? null : _('not an IPv4 address');
	},

	ipv6: function(v) {
		const a = parseAddr(v);
		return (a && !a.v4 && a.zone === '') ? null : _('not an IPv6 address');
	},

	url: function(v) {
		const u = parseURL(v);
		if (!u || u.host === '' || u.opaque !== '')
			return _('not a URL (like https://api.openai.com)');
		if (u.scheme !== 'https' && u.scheme !== 'http')
			return _('the scheme must be https or http');
		if (u.user || u.query !== '' || u.fragment !== '')
			return _('a base URL takes no user, query or fragment (keys go in the API key)');
		return null;
	},

	host: function(v) {
		const h = v.toLowerCase().replace(/\.$/, '').replace(/^\*\./, '');
		return (validHostname(h) && h.indexOf('.') > 0) ? null :
			_('not a host name (exact, like api.openai.com, or *.example.com for subdomains)');
	},

	mac: function(v) {
		return (/^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/.test(v) ||
			/^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$/.test(v)) ? null :
			_('not a MAC address (aa:bb:cc:dd:ee:ff)');
	},

	cidr: function(v) {
		const bad = _('not an address or prefix (192.168.1.50, 192.168.1.0/24, fd00::/64)');
		const slash = v.lastIndexOf('/');
		if (slash < 0)
			return parseAddr(v) ? null : bad;
		const a = parseAddr(v.substring(0, slash)), bits = v.substring(slash + 1);
		if (!a || a.zone !== '' || !/^(0|[1-9][0-9]*)$/.test(bits) || +bits > (a.v4 ? 32 : 128))
			return bad;
		return null;
	},

	/* A network device name as Linux takes it: 1-15 bytes, no "/", ":" or white space. */
	device: function(v) {
		if (new TextEncoder().encode(v).length > 15 || v === '.' || v === '..' || /[\/: \t\n]/.test(v))
			return _('not a device name (1-15 characters, no "/", ":" or spaces)');
		return null;
	},

	/* An OpenWrt network, the name of an interface section of /etc/config/network
	 * (config.CheckNetwork): 1-64 letters, digits and '_'. */
	network: function(v) {
		if (new TextEncoder().encode(v).length > 64)
			return _('not a network name (lan, guest, iot): 1 to 64 characters');
		return /^[A-Za-z0-9_]+$/.test(v) ? null : _('not a network name (lan, guest, iot): only letters, digits and \'_\'');
	},

	egress: function(v) {
		if (v === 'direct')
			return null;
		if (v.startsWith('iface:')) {
			const name = v.substring(6);
			return (name !== '' && name.length <= 15 && !/[\/ \t:]/.test(name)) ? null :
				_('interface name is not valid (1-15 characters, no "/", ":" or spaces)');
		}
		const u = parseURL(v);
		if (!u || u.host === '')
			return _('want "iface:NAME", "socks5://host:port" or "http://host:port"');
		if (u.scheme !== 'socks5' && u.scheme !== 'socks5h' && u.scheme !== 'http')
			return _('the proxy scheme must be socks5 or http');
		if ((u.path !== '' && u.path !== '/') || u.query !== '' || u.fragment !== '')
			return _('a proxy URL takes no path, query or fragment');
		const hp = splitHostPort(u.host);
		if (!hp || hp[0] === '' || hp[1] === '')
			return _('the proxy needs host:port');
		if (u.user && (u.user.name.length > 255 || u.user.pass.length > 255))
			return _('proxy user name and password are limited to 255 bytes');
		return null;
	},

	prefix: function(v) {
		const p = v.replace(/\/$/, '');
		return (p.startsWith('/') && p.indexOf('//') < 0 && !/[?#% ]/.test(p)) ? null :
			_('a path prefix is /name or /name/more (no //, ?, # or %)');
	},

	secret: function(v) {
		return /[\r\n\x00]/.test(v) ? _('the key contains a line break or NUL') : null;
	},

	/* The name of a provider section; o.names lists them (or is a function that does), and
	 * o.notSelf refuses the section's own name. */
	ref: function(v, o, section_id) {
		const names = (typeof o.names === 'function' ? o.names() : o.names) || [];
		if (o.notSelf && v === section_id)
			return _('a provider cannot be its own fallback');
		return names.indexOf(v) >= 0 ? null : _('no provider section has that name');
	}
};

function truthy(v) {
	return /^(1|on|true|yes|enabled)$/.test(String(v == null ? '' : v));
}

/* routerNetworks: the router's networks, from the interface sections of /etc/config/network
 * (loopback left out) and the zones of /etc/config/firewall, as [ { name, device, zone, masq,
 * lanSide } ]: LAN-side networks first, then by name. LAN-side is the daemon's rule for the
 * default of main's network: in a firewall zone that does not masquerade. */
function routerNetworks(ifaces, zones) {
	const zoneOf = {};
	(zones || []).forEach(function(z) {
		const name = z.name || z['.name'];
		L.toArray(z.network).forEach(function(n) {
			if (!(n in zoneOf))
				zoneOf[n] = { zone: name, masq: truthy(z.masq) };
		});
	});
	return (ifaces || []).filter(function(i) {
		return i['.name'] !== 'loopback';
	}).map(function(i) {
		const name = i['.name'], z = zoneOf[name];
		return {
			name: name,
			device: i.device || (i.type === 'bridge' ? 'br-' + name : L.toArray(i.ifname)[0] || ''),
			zone: z ? z.zone : '',
			masq: z ? z.masq : false,
			lanSide: !!z && !z.masq
		};
	}).sort(function(a, b) {
		return (b.lanSide - a.lanSide) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
	});
}

/* networkLabel: how a network is offered in a list: "guest (br-guest, zone guest, LAN-side)". */
function networkLabel(n) {
	const parts = [];
	if (n.device)
		parts.push(n.device);
	if (n.zone)
		parts.push(_('zone %s').format(n.zone));
	parts.push(n.lanSide ? _('LAN-side') : n.zone ? _('masquerades: not LAN-side') : _('in no firewall zone'));
	return '%s (%s)'.format(n.name, parts.join(', '));
}

/* forgotten: whether LuCI has let go of node: it, or a node above it, still carries a
 * data-idref that dom.registry no longer has. dom.content() deletes the registry entries of
 * every node of a container before it takes the nodes out, so a widget of a dialog that
 * another modal replaced, or of a form being drawn again, answers its data-idref with nothing
 * and dom.findClassInstance() on it throws "Cannot read properties of undefined (reading
 * '_class')". */
function forgotten(node) {
	for (let n = node; n != null && typeof n.getAttribute === 'function'; n = n.parentNode) {
		const id = n.getAttribute('data-idref');
		if (id != null && !(id in dom.registry))
			return true;
	}
	return false;
}

/* A list field's text box, where an entry is typed before it is added: the plain list's own,
 * or the box for a value of one's own in a list with choices. null when the field has none
 * (not drawn: a grid's row, a choice list). */
function pendingInput(o, section_id) {
	const el = (typeof o.getUIElement === 'function') ? o.getUIElement(section_id) : null;
	const node = el ? el.node : null;
	if (!node || typeof node.querySelector !== 'function')
		return null;
	return node.querySelector('.add-item input.cbi-input-text, .add-item input.create-item-input');
}

/* pendingValue: the entry typed into a list field and not added, or null. */
function pendingValue(o, section_id) {
	const input = pendingInput(o, section_id);
	const v = input ? input.value : null;
	return (v != null && /\S/.test(v)) ? String(v) : null;
}

/* refusals: the fields of a form map that hold a refused value, as [ { title, why } ]. */
function refusals(map) {
	const out = [];
	(map && map.children || []).forEach(function(s) {
		(typeof s.cfgsections === 'function' ? s.cfgsections() : []).forEach(function(sid) {
			(s.children || []).forEach(function(o) {
				if (typeof o.isValid !== 'function' || (typeof o.isActive === 'function' && !o.isActive(sid)))
					return;
				if (!o.isValid(sid))
					out.push({
						option: o.option,
						title: String(o.title || o.option).replace(/<[^>]*>/g, '').trim() || o.option,
						why: (typeof o.getValidationError === 'function' ? o.getValidationError(sid) : '') || _('not valid')
					});
			});
		});
	});
	return out;
}

/* showRefusals puts the list of refused fields (or why a save failed) under the form of a
 * dialog (its map node), or takes it away when there is none. */
function showRefusals(mapNode, problems) {
	const dlg = mapNode ? mapNode.parentNode : null;
	if (!dlg)
		return;
	const old = dlg.querySelector('#airelay-dialog-refused');
	if (old)
		old.parentNode.removeChild(old);
	if (!problems.length)
		return;
	const box = E('div', { 'class': 'alert-message warning', 'id': 'airelay-dialog-refused' }, [
		E('p', {}, [ E('strong', {}, [ _('Not saved. Correct or remove these values first:') ]) ]),
		E('ul', { 'style': 'margin:0 0 0 1.5em' }, problems.map(function(p) {
			return E('li', { 'data-option': p.option || null }, p.title ? [ E('strong', {}, [ p.title ]), ': ', p.why ] : [ p.why ]);
		}))
	]);
	dlg.insertBefore(box, mapNode.nextSibling);
	if (typeof box.scrollIntoView === 'function')
		box.scrollIntoView({ block: 'nearest' });
}

/* The usage history (`airelay history --json`, through the plugin's history method):
 * { days, from, to, rows: [ { day, addr, mac, name, network, provider, tokens_in, tokens_out,
 * requests, bytes_up, bytes_down, denied } ] } (network, the OpenWrt network the device was
 * on, when the daemon knows it). The functions below turn it into what the History page
 * draws, and draw nothing themselves, so the tests can check the numbers. */

const METRICS = {
	tokens: function(r) { return (Number(r.tokens_in) || 0) + (Number(r.tokens_out) || 0); },
	bytes: function(r) { return (Number(r.bytes_up) || 0) + (Number(r.bytes_down) || 0); }
};

const DAY_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;

/* dayNumber: days since 1970-01-01 of a YYYY-MM-DD date, or null. */
function dayNumber(s) {
	const m = DAY_RE.exec(String(s || ''));
	if (!m)
		return null;
	const t = Date.UTC(+m[1], +m[2] - 1, +m[3]);
	if (isNaN(t) || new Date(t).toISOString().substring(0, 10) !== m[0])
		return null; /* not a date of the calendar (2026-13-45) */
	return Math.round(t / 86400000);
}

function dayString(n) {
	return new Date(n * 86400000).toISOString().substring(0, 10);
}

/* deviceKey: a device is its MAC when the row has one, else its address. */
function deviceKey(r) {
	return r.mac ? 'mac:' + String(r.mac).toLowerCase() : 'addr:' + String(r.addr || '?');
}

/* historyDevices: the devices of the rows, each with its label (the name of its latest row that
 * has one, else the MAC, else the address), its network (that of its latest row that has one)
 * and its sums over the period, the busiest first (by the metric, then by label). */
function historyDevices(doc, metric) {
	const val = METRICS[metric] || METRICS.tokens;
	const byKey = {}, order = [];
	for (const r of (doc && Array.isArray(doc.rows)) ? doc.rows : []) {
		if (r == null || typeof r !== 'object')
			continue;
		const k = deviceKey(r);
		let d = byKey[k];
		if (!d) {
			d = byKey[k] = { key: k, mac: r.mac || '', addr: r.addr || '', name: '', nameDay: '', network: '', networkDay: '', total: 0,
				tokens_in: 0, tokens_out: 0, requests: 0, bytes_up: 0, bytes_down: 0, denied: 0, providers: [] };
			order.push(d);
		}
		if (r.name && String(r.day) >= d.nameDay) {
			d.name = String(r.name);
			d.nameDay = String(r.day);
		}
		if (r.network && String(r.day) >= d.networkDay) {
			d.network = String(r.network);
			d.networkDay = String(r.day);
		}
		if (r.addr && !d.addr)
			d.addr = r.addr;
		[ 'tokens_in', 'tokens_out', 'requests', 'bytes_up', 'bytes_down', 'denied' ].forEach(function(f) {
			d[f] += Number(r[f]) || 0;
		});
		d.total += val(r);
		if (r.provider && d.providers.indexOf(r.provider) < 0)
			d.providers.push(r.provider);
	}
	order.forEach(function(d) {
		d.label = d.name || d.mac || d.addr || '?';
		d.providers.sort();
		delete d.nameDay;
		delete d.networkDay;
	});
	return order.sort(function(a, b) {
		return (b.total - a.total) || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0) ||
			(a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
	});
}

/* historySeries: { metric, days: [ 'YYYY-MM-DD' ], devices (historyDevices), values: { day: { key:
 * n } }, totals: { day: n } }. The days are every day from doc.from to doc.to (at most 366),
 * and any other day a row has, in order. */
function historySeries(doc, metric) {
	metric = METRICS[metric] ? metric : 'tokens';
	const val = METRICS[metric];
	const rows = (doc && Array.isArray(doc.rows)) ? doc.rows : [];
	const seen = {};
	const from = dayNumber(doc && doc.from), to = dayNumber(doc && doc.to);
	if (from !== null && to !== null && from <= to)
		for (let n = Math.max(from, to - 365); n <= to; n++)
			seen[dayString(n)] = true;
	const values = {}, totals = {};
	for (const r of rows) {
		if (r == null || typeof r !== 'object' || dayNumber(r.day) === null)
			continue;
		const day = String(r.day), k = deviceKey(r);
		seen[day] = true;
		values[day] = values[day] || {};
		values[day][k] = (values[day][k] || 0) + val(r);
		totals[day] = (totals[day] || 0) + val(r);
	}
	const days = Object.keys(seen).sort();
	days.forEach(function(d) {
		values[d] = values[d] || {};
		totals[d] = totals[d] || 0;
	});
	return { metric: metric, days: days, devices: historyDevices(doc, metric), values: values, totals: totals };
}

/* niceScale: the top of an axis at or above max, and its ticks: steps of 1, 2 or 5 times a
 * power of ten, about count of them. */
function niceScale(max, count) {
	count = count || 4;
	if (!(max > 0))
		return { max: 1, ticks: [ 0, 1 ] };
	const raw = max / count, pow = Math.pow(10, Math.floor(Math.log10(raw)));
	let step = pow;
	for (const m of [ 1, 2, 5, 10 ]) {
		step = m * pow;
		if (step >= raw)
			break;
	}
	const top = Math.ceil(max / step - 1e-9) * step, ticks = [];
	for (let v = 0; v <= top + step / 2; v += step)
		ticks.push(Math.round(v / step) * step);
	return { max: top, ticks: ticks };
}

/* historyBars: the chart's geometry for a series in a plot of width × height (origin at the top
 * left, as in SVG): one bar per day, its segments stacked from the bottom in the order of
 * series.devices (the busiest device at the bottom), scaled to the axis' top, and the axis'
 * ticks (steps of 1, 2, 5 × 10^n; of KiB, MiB… for bytes). */
function historyBars(series, width, height) {
	const n = series.days.length, top = Math.max.apply(null, [ 0 ].concat(series.days.map(function(d) {
		return series.totals[d];
	})));
	/* bytes step in KiB, MiB, GiB (so the labels read 2 MiB, 4 MiB, not 1.9 MiB) */
	let unit = 1;
	while (series.metric === 'bytes' && unit < 1099511627776 && top >= unit * 1024)
		unit *= 1024;
	const scale = niceScale(top / unit);
	scale.max *= unit;
	scale.ticks = scale.ticks.map(function(v) { return v * unit; });
	const slot = n ? width / n : width, gap = Math.min(2, slot * 0.2);
	const bars = series.days.map(function(day, i) {
		let y = height;
		const segments = [];
		series.devices.forEach(function(dev, j) {
			const v = series.values[day][dev.key] || 0;
			if (v <= 0)
				return;
			const h = height * v / scale.max;
			y -= h;
			segments.push({ key: dev.key, index: j, value: v, y: y, h: h });
		});
		return { day: day, x: i * slot + gap / 2, w: slot - gap, total: series.totals[day], segments: segments };
	});
	return { max: scale.max, ticks: scale.ticks.map(function(v) { return { value: v, y: height - height * v / scale.max }; }), bars: bars };
}

/* formatThousands: 1234567 → "1,234,567". */
function formatThousands(n) {
	n = Math.floor(Number(n) || 0);
	return String(n).replace(/\B(?=([0-9]{3})+(?![0-9]))/g, ',');
}

const WEEKDAYS = [ 'Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat' ];

/* scheduleWhen: when a schedule's next change (RFC 3339, in the router's zone, as the daemon
 * sends it) happens, on the router's clock: "20:00" when it is today there, else "Mon 15:00";
 * '' when next is not a time. now is a Date (the browser's clock; only the instant is used). */
function scheduleWhen(next, now) {
	const m = /^([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})(?::[0-9]{2}(?:\.[0-9]+)?)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))$/.exec(String(next || ''));
	const day = m ? dayNumber(m[1]) : null;
	if (day === null)
		return '';
	const offset = m[4] ? 0 : (m[5] === '-' ? -1 : 1) * (+m[6] * 60 + +m[7]);
	const today = Math.floor(((now ? now.getTime() : Date.now()) + offset * 60000) / 86400000);
	const hhmm = m[2] + ':' + m[3];
	return day === today ? hhmm : WEEKDAYS[((day % 7) + 11) % 7] + ' ' + hhmm;
}

return baseclass.extend({
	check: check,
	parseWindow: parseWindow,
	historyDevices: historyDevices,
	historySeries: historySeries,
	historyBars: historyBars,
	niceScale: niceScale,
	formatThousands: formatThousands,
	scheduleWhen: scheduleWhen,
	callStatus: callStatus,
	callCheck: callCheck,
	routerNetworks: routerNetworks,
	networkLabel: networkLabel,
	refusals: refusals,

	/* { status, check }: what the daemon and `airelay check` say; failed calls give {}. */
	health: function() {
		return Promise.all([
			L.resolveDefault(callStatus(), { running: false }),
			L.resolveDefault(callCheck(), {})
		]).then(function(r) {
			return { status: r[0] || {}, check: r[1] || {} };
		});
	},

	/* The warning for a refused configuration, or '' when there is none: the saved config
	 * fails `airelay check`; the daemon serves the last valid config instead of the one on
	 * disk, or refuses the devices that config restricts because none ever passed
	 * (config.state, with the daemon's words in config.message); or, from a daemon that does
	 * not say its state, the last reload failed (it then keeps its previous configuration). */
	banner: function(health) {
		const st = (health && health.status) || {}, chk = (health && health.check) || {};
		const cfg = (st.config && typeof st.config === 'object') ? st.config : {}, parts = [];
		const running = st.running === true;
		let danger = false;
		if (running && cfg.state === 'fail_closed') {
			danger = true;
			parts.push(E('p', {}, [ E('strong', {}, [ _('No valid configuration: devices the configuration restricts are refused until it is corrected.') ]) ]),
				E('pre', { 'style': 'white-space:pre-wrap' }, [ cfg.message || cfg.last_error || _('airelay gave no reason') ]));
		}
		else if (running && cfg.state === 'last_valid') {
			parts.push(E('p', {}, [ E('strong', {}, [ _('The configuration on the router does not pass: airelay serves the last valid one.') ]) ]),
				E('pre', { 'style': 'white-space:pre-wrap' }, [ cfg.message || cfg.last_error || _('airelay gave no reason') ]));
		}
		else if (running && cfg.last_error)
			parts.push(E('p', {}, [ E('strong', {}, [ _('The last reload failed; airelay keeps running with its previous configuration:') ]) ]),
				E('pre', { 'style': 'white-space:pre-wrap' }, [ cfg.last_error ]));
		if (chk.valid === false)
			parts.push(E('p', {}, [ E('strong', {}, [ _('airelay refuses the saved configuration:') ]) ]),
				E('pre', { 'style': 'white-space:pre-wrap' }, [ chk.message || _('not valid') ]));
		if (!parts.length)
			return '';
		return E('div', { 'class': 'alert-message ' + (danger ? 'danger' : 'warning'), 'id': 'airelay-refused',
			'data-state': running ? (cfg.state || 'current') : null }, parts);
	},

	/* keepUnset makes option o (a Flag or ListValue with a default) save only a change: an
	 * option that is not in the config and still shows its default stays out of it, and a
	 * value equal to the stored one is not written again (LuCI's Flag writes its value on
	 * every save, and a ListValue writes the default it shows for an absent option). */
	keepUnset: function(o) {
		o.write = function(section_id, value) {
			const conf = this.uciconfig || this.map.config;
			const cur = this.map.data.get(conf, section_id, this.option);
			if (value === (cur != null ? cur : this.default))
				return;
			return this.map.data.set(conf, section_id, this.option, value);
		};
		return o;
	},

	/* liveWidgets makes every option of form map m (and its copies in a GridSection's dialog,
	 * which LuCI clones with their own properties) find its widget only among the nodes LuCI
	 * still knows, and have none otherwise. Taking out the field that has the focus makes the
	 * browser fire its blur and its change event there (Chromium, when the field was typed
	 * into and not left: a dialog's Save pressed while the focus stays in the API key field, or
	 * the dialog replaced by another modal, Save & Apply's), after dom.content() has already
	 * deleted the registry entries of that form's nodes; LuCI's change handler then checks the
	 * whole form (Map.checkDepends → triggerValidation → getUIElement) and the first widget it
	 * asks for throws "Cannot read properties of undefined (reading '_class')". */
	liveWidgets: function(m) {
		(m && m.children || []).forEach(function(s) {
			(s.children || []).forEach(function(o) {
				const base = o.getUIElement;
				if (typeof base !== 'function' || base.airelayLive)
					return;
				const live = function(section_id) {
					const node = this.map.findElement('id', this.cbid(section_id));
					return (node && !forgotten(node)) ? base.call(this, section_id) : null;
				};
				live.airelayLive = true;
				o.getUIElement = live;
			});
		});
		return m;
	},

	/* A LuCI validate function for a value of the given kind; "" (unset) always passes. */
	validator: function(kind, opts) {
		const fn = check[kind];
		if (!fn)
			throw new Error('airelay: no validator for ' + kind);
		const validate = function(section_id, value) {
			if (value == null || value === '')
				return true;
			const msg = fn(String(value), opts || {}, section_id);
			if (!msg)
				return true;
			return kind === 'secret' ? msg : daemonWords(String(value), msg); /* a message */
		};
		validate.kind = kind; /* read by the tests, which match it against the schema */
		validate.opts = opts || {};
		return validate;
	},

	/* strictList makes a list field (DynamicList, MultiValue) refuse what its validator
	 * refuses, each entry and the one still in its text box: LuCI checks neither (a refused
	 * entry typed and not added is dropped, and the rest saved), so a refused schedule line
	 * would leave a client allowed at all hours. A refused entry makes the field invalid, with
	 * "'value': why" as its error, which stops the page's Save (LuCI names the field) and a
	 * dialog's (guardDialog). An accepted entry still in the text box is saved with the others,
	 * in a list with choices too (LuCI leaves it out there). */
	strictList: function(o) {
		const baseValue = o.formvalue, baseValid = o.isValid, baseError = o.getValidationError;
		o.listProblem = function(section_id) {
			const v = baseValue.call(this, section_id), entries = v == null ? [] : Array.isArray(v) ? v.slice() : [ v ];
			const p = pendingValue(this, section_id);
			if (p != null)
				entries.push(p);
			for (let i = 0; i < entries.length; i++) {
				const r = (typeof this.validate === 'function') ? this.validate(section_id, entries[i]) : true;
				if (r !== true)
					return '\'%s\': %s'.format(entries[i], r);
			}
			return null;
		};
		o.formvalue = function(section_id) {
			const v = baseValue.call(this, section_id), p = pendingValue(this, section_id);
			if (p == null)
				return v;
			const values = v == null ? [] : Array.isArray(v) ? v.slice() : [ v ];
			if (values.indexOf(p) < 0 && (typeof this.validate !== 'function' || this.validate(section_id, p) === true))
				values.push(p);
			return values;
		};
		o.isValid = function(section_id) {
			return this.listProblem(section_id) == null && (typeof baseValid !== 'function' || baseValid.call(this, section_id));
		};
		o.getValidationError = function(section_id) {
			return this.listProblem(section_id) || (typeof baseError === 'function' ? baseError.call(this, section_id) : '');
		};
		return o;
	},

	/* guardDialog makes the Save of a GridSection's dialog check every field first: with a
	 * refused value nothing is saved (not even the other fields, nor an API key) and the dialog
	 * stays open, listing each refused field and why above its buttons. A save that fails
	 * anyway (the router refused an API key) says why there too. (LuCI's own dialog save is
	 * silent: it keeps the dialog open and says nothing, and a message put on the page is
	 * behind the dialog.) */
	guardDialog: function(s) {
		const base = s.handleModalSave;
		s.handleModalSave = function(modalMap, ev) {
			const node = (typeof this.getActiveModalMap === 'function') ? this.getActiveModalMap() : null;
			const map = node ? dom.findClassInstance(node) : null;
			const problems = refusals(map);
			showRefusals(node, problems);
			if (problems.length)
				return Promise.resolve();
			if (map && !map.airelayGuarded) {
				const save = map.save;
				map.save = function() {
					return save.apply(this, arguments).catch(function(e) {
						showRefusals(node, [ { why: (e && e.message) || String(e) } ]);
						return Promise.reject(e);
					});
				};
				map.airelayGuarded = true;
			}
			return base.apply(this, arguments);
		};
		return s;
	},

	/* networkChoices offers the router's networks (routerNetworks) in a list field, each with
	 * its device, zone and whether it is LAN-side; a configured network the router does not
	 * have stays in the list, marked. */
	networkChoices: function(o, nets) {
		const baseLoad = o.load;
		o.load = function(section_id) {
			this.keylist = [];
			this.vallist = [];
			(nets || []).forEach(L.bind(function(n) {
				this.value(n.name, networkLabel(n));
			}, this));
			const cur = this.map.data.get(this.uciconfig || this.map.config, section_id, this.option);
			L.toArray(cur).forEach(L.bind(function(name) {
				if (this.keylist.indexOf(name) < 0)
					this.value(name, _('%s (not a network of this router)').format(name));
			}, this));
			return baseLoad.call(this, section_id);
		};
		return o;
	},

	formatBytes: function(n) {
		n = Number(n) || 0;
		const units = [ 'B', 'KiB', 'MiB', 'GiB', 'TiB' ];
		let i = 0;
		while (n >= 1024 && i < units.length - 1) {
			n /= 1024;
			i++;
		}
		return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + '\u00a0' + units[i];
	},

	formatCount: function(n) {
		n = Number(n) || 0;
		if (n < 10000)
			return String(n);
		const units = [ 'k', 'M', 'G', 'T' ];
		let i = -1;
		while (n >= 1000 && i < units.length - 1) {
			n /= 1000;
			i++;
		}
		return n.toFixed(n < 10 ? 1 : 0) + units[i];
	},

	formatUptime: function(secs) {
		secs = Math.max(0, Math.floor(Number(secs) || 0));
		const d = Math.floor(secs / 86400), h = Math.floor(secs % 86400 / 3600),
		      m = Math.floor(secs % 3600 / 60), s = secs % 60;
		if (d > 0)
			return '%dd %dh %dm'.format(d, h, m);
		if (h > 0)
			return '%dh %dm %ds'.format(h, m, s);
		return '%dm %ds'.format(m, s);
	},

	escapeXML: function(s) {
		return String(s).replace(/[&<>"']/g, function(c) {
			return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;' }[c];
		});
	}
});
