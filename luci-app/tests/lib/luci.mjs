// A recording stand-in for the few LuCI client APIs the airelay views use (view, form, uci,
// rpc, poll, dom, E, _), so the tests can run the views' own code in Node: load a view the way
// luci.js does (its 'require' lines become the factory's parameters), call render(), and look
// at the form it built. It renders nothing and checks no layout; form.*.parse follows LuCI's
// documented rules (an empty field removes the option unless rmempty is false; a Flag at its
// default is removed), which the write-only API key test relies on.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const APP = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REPO = path.resolve(APP, '..');
export const RESOURCES = path.join(APP, 'htdocs', 'luci-static', 'resources');
export const VIEWS = path.join(RESOURCES, 'view', 'airelay');
export const PLUGIN = path.join(APP, 'root', 'usr', 'libexec', 'rpcd', 'luci.airelay');
export const ACL = path.join(APP, 'root', 'usr', 'share', 'rpcd', 'acl.d', 'luci-app-airelay.json');
export const MENU = path.join(APP, 'root', 'usr', 'share', 'luci', 'menu.d', 'luci-app-airelay.json');

// LuCI's String.prototype.format, as far as the views use it (%s, %d, %%).
if (!String.prototype.format) {
	Object.defineProperty(String.prototype, 'format', {
		value: function(...args) {
			let i = 0;
			return this.replace(/%([sd%])/g, (m, t) => {
				if (t === '%')
					return '%';
				const v = args[i++];
				return t === 'd' ? String(Math.floor(Number(v) || 0)) : String(v);
			});
		}
	});
}

// files lists the regular files under dir, recursively, with the given suffixes.
export function files(dir, ...suffixes) {
	const out = [];
	for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
		const p = path.join(dir, e.name);
		if (e.isDirectory())
			out.push(...files(p, ...suffixes));
		else if (suffixes.length === 0 || suffixes.some((s) => e.name.endsWith(s)))
			out.push(p);
	}
	return out.sort();
}

// requires parses a LuCI module's header: the string directives before any other statement.
export function requires(source) {
	const deps = [];
	const re = /\s*(['"])(.*?)\1;?[ \t]*(?:\r?\n|$)/y;
	let m;
	re.lastIndex = 0;
	let pos = 0;
	while ((m = re.exec(source)) !== null) {
		pos = re.lastIndex;
		const d = /^require\s+(\S+)(?:\s+as\s+([A-Za-z_]\S*))?$/.exec(m[2]);
		if (d)
			deps.push({ name: d[1], as: d[2] || d[1].replace(/[^a-zA-Z0-9_]/g, '_') });
		else if (m[2] !== 'use strict')
			break;
		re.lastIndex = pos;
	}
	return deps;
}

function isEqual(a, b) {
	return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

// Uci is a UCI store: { config: [ {'.name', '.type', option: value|[values]} ] }.
export class Uci {
	constructor(data = {}) {
		this.data = structuredClone(data);
		this.loaded = [];
	}
	load(conf) {
		this.loaded.push(conf);
		return Promise.resolve([ conf ]);
	}
	section(conf, sid) {
		return (this.data[conf] || []).find((s) => s['.name'] === sid);
	}
	sections(conf, type) {
		return (this.data[conf] || []).filter((s) => type == null || s['.type'] === type);
	}
	get(conf, sid, opt) {
		const s = this.section(conf, sid);
		if (!s)
			return null;
		return opt == null ? s : (s[opt] ?? null);
	}
	set(conf, sid, opt, val) {
		const s = this.section(conf, sid);
		if (s)
			s[opt] = val;
	}
	unset(conf, sid, opt) {
		const s = this.section(conf, sid);
		if (s)
			delete s[opt];
	}
}

// makeForm returns a form module whose classes record what the views build.
function makeForm(env) {
	class AbstractValue {
		constructor(map, section, option, title, description) {
			Object.assign(this, { map, section, option, title, description });
			this.keylist = [];
			this.vallist = [];
			this.deps = [];
			this.rmempty = true;
			this.formvalues = {};
		}
		value(key, label) {
			this.keylist.push(String(key));
			this.vallist.push(label ?? String(key));
		}
		depends(...d) {
			this.deps.push(d);
		}
		cfgvalue(sid) {
			return this.map.data.get(this.map.config, sid, this.option);
		}
		load(sid) {
			return this.cfgvalue(sid);
		}
		textvalue(sid) {
			const v = this.cfgvalue(sid);
			return Array.isArray(v) ? v.join(' ') : v;
		}
		formvalue(sid) {
			return this.formvalues[sid];
		}
		write(sid, value) {
			return this.map.data.set(this.map.config, sid, this.option, value);
		}
		remove(sid) {
			return this.map.data.unset(this.map.config, sid, this.option);
		}
		renderWidget(sid, index, cfgvalue) {
			return { widget: this.constructor.name, option: this.option, placeholder: this.placeholder, value: cfgvalue };
		}
		parse(sid) {
			const cval = this.cfgvalue(sid), fval = this.formvalue(sid);
			if (fval == null || fval === '' || (Array.isArray(fval) && fval.length === 0)) {
				if (this.rmempty || this.optional)
					return this.remove(sid);
			}
			else if (!isEqual(cval, fval)) {
				return this.write(sid, fval);
			}
		}
	}
	class Value extends AbstractValue {}
	class ListValue extends AbstractValue {}
	class DynamicList extends AbstractValue {}
	class MultiValue extends AbstractValue {}
	class DummyValue extends AbstractValue {
		write() {}
		remove() {}
	}
	class Flag extends AbstractValue {
		constructor(...a) {
			super(...a);
			this.enabled = '1';
			this.disabled = '0';
			this.default = this.disabled;
		}
		parse(sid) {
			const fval = this.formvalue(sid) ?? this.disabled;
			if (fval === this.default && (this.optional || this.rmempty))
				return this.remove(sid);
			return this.write(sid, fval);
		}
	}

	class AbstractSection {
		constructor(map, ...args) {
			this.map = map;
			this.children = [];
			this.tabs = {};
			this.args = args;
		}
		tab(name, title) {
			this.tabs[name] = title;
		}
		option(Cls, option, title, description) {
			const o = new Cls(this.map, this, option, title, description);
			this.children.push(o);
			return o;
		}
		taboption(tab, Cls, ...rest) {
			if (!(tab in this.tabs))
				throw new Error(`taboption: tab ${tab} was not declared`);
			const o = this.option(Cls, ...rest);
			o.tab = tab;
			return o;
		}
	}
	class NamedSection extends AbstractSection {
		constructor(map, sid, type, title) {
			super(map, sid, type, title);
			Object.assign(this, { sid, sectiontype: type, title });
		}
		cfgsections() {
			return this.map.data.get(this.map.config, this.sid) ? [ this.sid ] : [];
		}
	}
	class TypedSection extends AbstractSection {
		constructor(map, type, title, description) {
			super(map, type, title, description);
			Object.assign(this, { sectiontype: type, title, description });
		}
		cfgsections() {
			return this.map.data.sections(this.map.config, this.sectiontype).map((s) => s['.name']);
		}
	}
	class TableSection extends TypedSection {}
	class GridSection extends TableSection {}

	class Map {
		constructor(config, title, description) {
			Object.assign(this, { config, title, description });
			this.data = env.uci;
			this.children = [];
			env.maps.push(this);
		}
		section(Cls, ...args) {
			const s = new Cls(this, ...args);
			this.children.push(s);
			return s;
		}
		// render loads every option of every section, as LuCI does before drawing.
		render() {
			for (const s of this.children)
				for (const sid of s.cfgsections())
					for (const o of s.children)
						o.load(sid);
			return Promise.resolve({ tag: 'form-map', map: this });
		}
	}
	return { Map, NamedSection, TypedSection, TableSection, GridSection,
		Value, ListValue, DynamicList, MultiValue, DummyValue, Flag, AbstractValue };
}

// E builds a plain tree: { tag, attrs, children } with strings as text, or { html } for markup.
export function E(tag, attrs, children) {
	if (attrs == null || typeof attrs !== 'object' || Array.isArray(attrs)) {
		children = attrs;
		attrs = {};
	}
	const node = { tag, attrs, children: [] };
	if (Array.isArray(children))
		node.children = children.filter((c) => c != null);
	else if (children != null && typeof children === 'object')
		node.children = [ children ];
	else if (children != null)
		node.html = String(children);
	return node;
}

// text flattens a tree to its text (markup given as html is included as it is).
export function text(node) {
	if (node == null)
		return '';
	if (typeof node !== 'object')
		return String(node);
	if (Array.isArray(node))
		return node.map(text).join(' ');
	return [ node.html || '' ].concat((node.children || []).map(text)).join(' ');
}

// Env is one page load: a UCI store, rpc replies, and what the page declared and polled.
export class Env {
	constructor({ uci = {}, rpc = {} } = {}) {
		this.uci = new Uci(uci);
		this.rpcReplies = rpc;
		this.declared = [];
		this.calls = [];
		this.polls = [];
		this.maps = [];
		this.modules = {};
		this.translated = [];
	}

	builtin(name) {
		const env = this;
		switch (name) {
		case 'baseclass':
		case 'view':
			return { extend: (props) => props };
		case 'form':
			return (this.form ??= makeForm(this));
		case 'uci':
			return this.uci;
		case 'rpc':
			return {
				declare(o) {
					env.declared.push({ object: o.object, method: o.method });
					return (...args) => {
						env.calls.push({ object: o.object, method: o.method, args });
						const r = env.rpcReplies[`${o.object}.${o.method}`];
						return r instanceof Error ? Promise.reject(r) : Promise.resolve(structuredClone(r ?? {}));
					};
				}
			};
		case 'poll':
			return { add: (fn, interval) => env.polls.push({ fn, interval }) };
		case 'dom':
			return { content: (node, children) => { node.children = Array.isArray(children) ? children : [ children ]; delete node.html; } };
		}
		return null;
	}

	require(name) {
		if (name in this.modules)
			return this.modules[name];
		const b = this.builtin(name);
		if (b)
			return (this.modules[name] = b);
		const file = path.join(RESOURCES, ...name.split('.')) + '.js';
		if (!fs.existsSync(file))
			throw new Error(`require ${name}: neither a stand-in nor ${file}`);
		return (this.modules[name] = this.load(file));
	}

	// load evaluates a module file as luci.js does and returns what its factory returns.
	load(file) {
		const source = fs.readFileSync(file, 'utf8');
		const deps = requires(source);
		const values = deps.map((d) => this.require(d.name));
		const L = {
			bind: (fn, self, ...a) => fn.bind(self, ...a),
			resolveDefault: (p, d) => Promise.resolve(p).catch(() => d),
			isObject: (v) => v != null && typeof v === 'object'
		};
		globalThis._ = (s) => {
			this.translated.push(s);
			return s;
		};
		globalThis.N_ = (n, s, p) => (n === 1 ? s : p);
		globalThis.E = E;
		const factory = new Function('window', 'document', 'L', ...deps.map((d) => d.as), source);
		return factory.call(null, {}, {}, L, ...values);
	}

	// view loads a view, runs load() and render() as LuCI's view class does, and returns
	// { view, node }.
	async view(name) {
		const v = this.load(path.join(VIEWS, `${name}.js`));
		const data = v.load ? await v.load.call(v) : null;
		const node = await v.render.call(v, data);
		return { view: v, node };
	}
}

// options returns { sectionType: [ {section, option} ] } over the maps an Env recorded.
export function options(env) {
	const out = {};
	for (const m of env.maps) {
		for (const s of m.children) {
			for (const o of s.children)
				(out[s.sectiontype] ??= []).push({ section: s, option: o });
		}
	}
	return out;
}

// airelay returns the path of an airelay binary: $AIRELAY_BIN, else one built once into a
// temporary directory from the repository's source.
let built = null;
export function airelay() {
	if (process.env.AIRELAY_BIN)
		return process.env.AIRELAY_BIN;
	if (built)
		return built;
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luci-airelay-bin-'));
	const bin = path.join(dir, 'airelay');
	execFileSync('go', [ 'build', '-o', bin, './src/cmd/airelay' ], { cwd: REPO, stdio: [ 'ignore', 'ignore', 'inherit' ] });
	process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
	return (built = bin);
}

// schema returns `airelay schema --json`, indexed: { type: { name, options: {name: option} } }.
export function schema() {
	const doc = JSON.parse(execFileSync(airelay(), [ 'schema', '--json' ], { encoding: 'utf8' }));
	const out = {};
	for (const s of doc.sections) {
		out[s.type] = { name: s.name || '', options: {} };
		for (const o of s.options)
			out[s.type].options[o.name] = o;
	}
	return out;
}

// uciQuote renders a value for a UCI file.
export function uciQuote(v) {
	return `'${String(v).replace(/'/g, `'\\''`)}'`;
}
