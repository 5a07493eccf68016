// A recording stand-in for the few LuCI client APIs the airelay views use (view, form, uci,
// rpc, poll, dom, E, _), so the tests can run the views' own code in Node: load a view the way
// luci.js does (its 'require' lines become the factory's parameters), call render(), and look
// at the form it built. It renders nothing and checks no layout. form.*.parse follows LuCI's
// form.js (an option whose widget is not valid rejects the save with 'Option "…" contains an
// invalid input value.'; an empty field removes the option unless rmempty is false; any other
// value is written when it differs from the stored one; a Flag writes its value unless it is
// the default and rmempty is set), and the uci stand-in records changes as LuCI's uci.js does,
// so tests can count what a save would stage (the "Unsaved changes" of LuCI's header).
//
// Widgets follow LuCI's ui.js where the views depend on it (checked against luci-base master in
// Chromium): a text field is invalid while its validator refuses its value; a DynamicList is
// always "valid", and its value is its entries plus the text typed into its box (o.pending[sid])
// only when the box holds no refused text and the list has no choices (with choices the typed
// text is left out); a MultiValue keeps only selected values that are among its choices. A
// GridSection draws widgets only for editable options and, in its Edit dialog (modal()), for
// that section; the dialog's Save is LuCI's handleModalSave, which saves silently (an error
// keeps the dialog open and shows nothing) and closes the dialog when the save went through.
// A page's Map.save that fails records LuCI's "Save error" message (env.saveErrors).
//
// LuCI finds a widget through the DOM (getUIElement: map.findElement('id', cbid), then
// dom.findClassInstance), and dom keeps class instances in dom.registry, keyed by a node's
// data-idref; dom.content() deletes the entries of every node of a container before it takes
// the nodes out, and a lookup on such a node throws "Cannot read properties of undefined (reading
// '_class')". The stand-in draws that much: a dialog's map node and one node per widget, bound
// as LuCI binds them, a page's map node with the widgets its rows or fields draw, and dom's
// registry, content() and findClassInstance() as luci.js has them. Taking out the field that has
// the focus fires its change event (Chromium does, for a field typed into: dlg.type()), which
// form.js turns into Map.checkDepends, which asks every option for its widget; an exception
// there is reported (env.pageErrors), not thrown, as a browser reports one from a listener.
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

// Uci is a UCI store as LuCI's uci.js keeps it: the loaded values (data, { config: [ {'.name',
// '.type', option: value|[values]} ] }) with the page's changes applied, and the changes
// themselves, recorded by uci.js's rules: set() records a value even when it equals the stored
// one, unset() records a deletion only of an option that was loaded, a section added and removed
// again leaves nothing. changes(conf) lists them as `uci changes` would show them.
export class Uci {
	constructor(data = {}) {
		this.data = structuredClone(data);
		this.saved = structuredClone(data);
		this.loaded = [];
		this.created = new Set();
		this.changed = {};
		this.deleted = {};
	}
	load(conf) {
		this.loaded.push(conf);
		return Promise.resolve([ conf ]);
	}
	save() {
		return Promise.resolve();
	}
	section(conf, sid) {
		return (this.data[conf] || []).find((s) => s['.name'] === sid);
	}
	savedSection(conf, sid) {
		return (this.saved[conf] || []).find((s) => s['.name'] === sid);
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
		if (val == null || val === '')
			return this.unset(conf, sid, opt);
		const s = this.section(conf, sid);
		if (!s || opt.charAt(0) === '.')
			return;
		s[opt] = val;
		const k = `${conf}.${sid}`;
		if (!this.created.has(k))
			(this.changed[k] ??= {})[opt] = val;
		if (this.deleted[k] && this.deleted[k] !== true)
			delete this.deleted[k][opt];
	}
	unset(conf, sid, opt) {
		const s = this.section(conf, sid);
		if (!s)
			return;
		delete s[opt];
		const k = `${conf}.${sid}`;
		if (this.changed[k])
			delete this.changed[k][opt];
		if (!this.created.has(k) && this.savedSection(conf, sid) && opt in this.savedSection(conf, sid))
			(this.deleted[k] ??= {})[opt] = true;
	}
	add(conf, type, name) {
		const sid = name ?? `cfg${(this.created.size + 1).toString(16).padStart(6, '0')}`;
		(this.data[conf] ??= []).push({ '.name': sid, '.type': type });
		this.created.add(`${conf}.${sid}`);
		return sid;
	}
	remove(conf, sid) {
		const k = `${conf}.${sid}`;
		this.data[conf] = (this.data[conf] || []).filter((s) => s['.name'] !== sid);
		delete this.changed[k];
		if (this.created.has(k))
			this.created.delete(k);
		else
			this.deleted[k] = true;
	}
	// changes lists [ op, 'conf.section[.option]', value ] like `uci changes`.
	changes(conf) {
		const out = [];
		for (const k of this.created)
			if (k.startsWith(`${conf}.`)) {
				const s = this.section(conf, k.slice(conf.length + 1));
				out.push([ 'add', k, s?.['.type'] ]);
				for (const [ o, v ] of Object.entries(s ?? {}))
					if (!o.startsWith('.'))
						out.push([ 'set', `${k}.${o}`, v ]);
			}
		for (const [ k, opts ] of Object.entries(this.changed))
			if (k.startsWith(`${conf}.`))
				for (const [ o, v ] of Object.entries(opts))
					out.push([ 'set', `${k}.${o}`, v ]);
		for (const [ k, opts ] of Object.entries(this.deleted))
			if (k.startsWith(`${conf}.`)) {
				if (opts === true)
					out.push([ 'remove', k ]);
				else
					for (const o of Object.keys(opts))
						out.push([ 'remove', `${k}.${o}` ]);
			}
		return out;
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
			this.pending = {};
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
		// drawn says whether the option has a widget for sid: a GridSection draws one for an
		// editable option in its rows and for every option of the section its dialog is open
		// for; other sections draw every option.
		drawn(sid) {
			if (!(this.section instanceof GridSection))
				return true;
			const m = env.modal;
			if (m && m.open && m.sid === sid && m.options.includes(this))
				return true;
			return !!this.editable && this.modalonly !== true;
		}
		// cbid: the id of the option's widget node for sid, as form.js names it.
		cbid(sid) {
			return `cbid.${this.map.config}.${sid}.${this.option}`;
		}
		// getUIElement as form.js's: the ui widget bound to the node of id cbid(sid) (the
		// node's own instance or the closest one above it), or null. An option with no node
		// drawn for it (a section added after the page was drawn) gets its widget model when
		// drawn() says LuCI would have drawn one.
		getUIElement(sid) {
			const node = this.map.findElement('id', this.cbid(sid));
			if (node) {
				const inst = env.builtin('dom').findClassInstance(node);
				return inst && inst.isWidget ? inst : null;
			}
			return this.drawn(sid) ? this.widget(sid) : null;
		}
		// widget: a model of the option's ui widget (LuCI's ui.AbstractElement) for sid.
		widget(sid) {
			const o = this;
			return {
				isWidget: true,
				node: o.widgetNode(sid),
				getValue: () => o.widgetValueOf(sid),
				isValid: () => o.widgetError(sid) == null,
				getValidationError: () => o.widgetError(sid) ?? ''
			};
		}
		// triggerValidation as form.js's (Map.checkDepends calls it for every active option).
		triggerValidation(sid) {
			const el = this.getUIElement(sid);
			return el ? el.isValid() : true;
		}
		// drawNode: the nodes form.js draws for the option in sid: the option's frame (bound to
		// the option) around the widget's node (id cbid(sid), bound to the widget). A change
		// in the widget reaches form.js's listener on the frame, which runs map.checkDepends.
		drawNode(sid, map) {
			const dom = env.builtin('dom');
			const w = E('div', { id: this.cbid(sid) });
			dom.bindClassInstance(w, this.widget(sid));
			w.listeners = { change: [ () => map.checkDepends() ] };
			const frame = E('div', { 'class': 'cbi-value', 'data-field': this.cbid(sid) }, [ w ]);
			dom.bindClassInstance(frame, this);
			return frame;
		}
		// widgetNode: the widget's DOM, as far as the views look into it (a list's text box).
		widgetNode() {
			return { querySelector: () => null };
		}
		// widgetValueOf: what the widget's getValue() returns: what the user entered
		// (formvalues[sid], set by a test) or else what it shows after rendering, the stored
		// value or the default.
		widgetValueOf(sid) {
			if (sid in this.formvalues)
				return this.formvalues[sid];
			return this.widgetValue(sid);
		}
		widgetValue(sid) {
			const v = this.cfgvalue(sid);
			return v != null ? v : (this.default ?? null);
		}
		// widgetError: a text field's validation state, set by its validator on every key: the
		// validator's message while it refuses the (non-empty) value, else null.
		widgetError(sid) {
			if (typeof this.validate !== 'function')
				return null;
			const v = this.widgetValueOf(sid);
			if (v == null || v === '')
				return null;
			const r = this.validate(sid, Array.isArray(v) ? v.join(' ') : String(v));
			return r === true ? null : String(r);
		}
		formvalue(sid) {
			const el = this.getUIElement(sid);
			return el ? el.getValue() : null;
		}
		isValid(sid) {
			const el = this.getUIElement(sid);
			return el ? el.isValid() : true;
		}
		getValidationError(sid) {
			const el = this.getUIElement(sid);
			return el ? el.getValidationError() : '';
		}
		isActive(sid) {
			return this.getUIElement(sid) != null;
		}
		write(sid, value) {
			return this.map.data.set(this.map.config, sid, this.option, value);
		}
		remove(sid) {
			return this.map.data.unset(this.map.config, sid, this.option);
		}
		renderWidget(sid, index, cfgvalue) {
			return { widget: this.constructor.name, option: this.option, placeholder: this.placeholder, value: cfgvalue, readonly: this.readonly };
		}
		// parse follows LuCI's form.js (AbstractValue.parse): an invalid widget rejects, an empty
		// field is removed unless rmempty is false, anything else is written when it differs
		// from the stored value.
		parse(sid) {
			if (this.isActive(sid) && !this.isValid(sid))
				return Promise.reject(new TypeError(`Option "${this.title || this.option}" contains an invalid input value. ${this.getValidationError(sid)}`));
			const cval = this.cfgvalue(sid), fval = this.formvalue(sid);
			if (fval == null || fval === '' || (Array.isArray(fval) && fval.length === 0)) {
				if (this.rmempty || this.optional)
					return Promise.resolve(this.remove(sid));
			}
			else if (this.forcewrite || !isEqual(cval, fval)) {
				return Promise.resolve(this.write(sid, fval));
			}
			return Promise.resolve();
		}
	}
	class Value extends AbstractValue {}
	class ListValue extends AbstractValue {}
	// ui.DynamicList: no validation state of its own; its text box is validated on every key
	// and Enter adds only an accepted entry. getValue(): the entries, and the box's text when it
	// is accepted, not blank and not already an entry, in a list without choices (with choices
	// the box is a combobox's, which getValue does not look at).
	class DynamicList extends AbstractValue {
		widgetNode(sid) {
			const o = this;
			const box = {
				get value() { return o.pending[sid] ?? ''; },
				classList: { contains: (c) => c === 'cbi-input-invalid' && o.boxRefused(sid) }
			};
			const plain = o.keylist.length === 0;
			return {
				querySelector(sel) {
					const want = plain ? 'input.cbi-input-text' : 'input.create-item-input';
					return sel.split(',').some((x) => x.trim() === `.add-item ${want}`) ? box : null;
				}
			};
		}
		boxRefused(sid) {
			const t = this.pending[sid] ?? '';
			return t !== '' && typeof this.validate === 'function' && this.validate(sid, t) !== true;
		}
		widgetValueOf(sid) {
			const v = super.widgetValueOf(sid);
			const items = v == null ? [] : Array.isArray(v) ? [ ...v ] : [ v ];
			const t = this.pending[sid];
			if (this.keylist.length === 0 && t != null && /\S/.test(t) && !this.boxRefused(sid) && !items.includes(t))
				items.push(t);
			return items;
		}
		widgetError() {
			return null;
		}
	}
	// ui.Dropdown (multiple, no custom values): a selected value that is not a choice is not
	// drawn, so getValue() leaves it out.
	class MultiValue extends AbstractValue {
		widgetValueOf(sid) {
			const v = super.widgetValueOf(sid);
			return (v == null ? [] : Array.isArray(v) ? v : [ v ]).filter((x) => this.keylist.includes(String(x)));
		}
		widgetError() {
			return null;
		}
	}
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
		widgetValue(sid) {
			const v = this.cfgvalue(sid);
			return (v != null ? v : this.default) === this.enabled ? this.enabled : this.disabled;
		}
		// LuCI's Flag.parse: the checkbox's value, removed when it is the default and rmempty
		// (or optional) is set, else written, whether it changed or not.
		parse(sid) {
			const fval = this.formvalue(sid) ?? this.disabled;
			if (fval === this.default && (this.optional || this.rmempty))
				return Promise.resolve(this.remove(sid));
			return Promise.resolve(this.write(sid, fval));
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
		// parse runs every option's parse for every section, as LuCI's AbstractSection.parse;
		// which options take part is up to the section (a grid leaves its modal-only ones out).
		parse(only) {
			const tasks = [];
			for (const sid of this.cfgsections())
				for (const o of this.children)
					if (!only || only(o))
						tasks.push(o.parse(sid));
			return Promise.all(tasks);
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
	TypedSection.prototype.handleAdd = function(ev, name) {
		this.map.data.add(this.map.config, this.sectiontype, name);
		return this.map.save(null, true);
	};
	TypedSection.prototype.handleRemove = function(sid) {
		this.map.data.remove(this.map.config, sid);
		return this.map.save(null, true);
	};
	class TableSection extends TypedSection {}
	// A grid's rows draw an option's widget only when it is editable (LuCI's GridSection.parse
	// parses only those). Edit opens a dialog with the options whose modalonly !== false, for
	// one section, in a map of its own (LuCI clones the options into it with their own
	// properties, overrides included); its Save is handleModalSave.
	class GridSection extends TableSection {
		parse() {
			return super.parse((o) => !!o.editable && o.modalonly !== true);
		}
		getActiveModalMap() {
			return env.modal && env.modal.open && env.modal.section === this ? env.modal.node : null;
		}
		modal(sid) {
			const opts = this.children.filter((o) => o.modalonly !== false);
			for (const o of opts) {
				delete o.formvalues[sid]; /* a fresh widget shows what is stored */
				delete o.pending[sid];
				o.load(sid);
			}
			const grid = this;
			const modalMap = new Map(this.map.config, null, null, { detached: true });
			modalMap.parent = this.map;
			modalMap.children = [ { sectiontype: this.sectiontype, children: opts, cfgsections: () => [ sid ],
				parse: () => Promise.all(opts.map((o) => o.parse(sid))) } ];
			const dom = env.builtin('dom');
			const node = E('div', { 'class': 'cbi-map' });
			dom.bindClassInstance(node, modalMap);
			modalMap.root = node;
			modalMap.drawn = () => [ { sid, options: opts } ];
			modalMap.renderContents();
			const dialog = E('div', { 'class': 'modal cbi-modal' }, [ node, E('div', { 'class': 'button-row' }) ]);
			env.modal = { section: this, sid, options: opts, map: modalMap, node, dialog, open: true };
			const m = env.modal;
			return {
				options: opts,
				dialog,
				option: (name) => opts.find((o) => o.option === name),
				isOpen: () => m.open,
				// the text of the list of refused fields the views put into the dialog, or null
				refused: () => {
					const b = dialog.querySelector('#airelay-dialog-refused');
					return b ? plain(b) : null;
				},
				save: () => Promise.resolve(grid.handleModalSave(modalMap)),
				// type: the user types value into the option's field and the focus stays there
				type: (name, value) => {
					const o = opts.find((x) => x.option === name);
					o.formvalues[sid] = value;
					env.focus(modalMap.findElement('id', o.cbid(sid)));
				}
			};
		}
	}
	// LuCI's handleModalSave: saves the dialog's map silently; when that went through, reloads
	// the page's map and closes the dialog; an error is swallowed and the dialog stays open.
	GridSection.prototype.handleModalSave = function() {
		const node = this.getActiveModalMap();
		const m = env.modal;
		const activeMap = env.builtin('dom').findClassInstance(node);
		return activeMap.save(null, true).then(() => { m.open = false; }).catch(() => {});
	};

	class Map {
		constructor(config, title, description, opts) {
			Object.assign(this, { config, title, description });
			this.data = env.uci;
			this.children = [];
			if (!opts?.detached)
				env.maps.push(this);
		}
		section(Cls, ...args) {
			const s = new Cls(this, ...args);
			this.children.push(s);
			return s;
		}
		// save as LuCI's Map.save: parse every section (options write as they go), stage, and
		// draw the form again; on an error, unless silent, LuCI shows it in a "Save error"
		// dialog.
		save(cb, silent) {
			return Promise.all(this.children.map((s) => s.parse()))
				.then(cb)
				.then(() => this.data.save())
				.catch((e) => {
					if (!silent)
						env.saveErrors.push(e.message);
					return Promise.reject(e);
				})
				.then(() => this.renderContents());
		}
		// findElement as form.js's: the first node under the map's node with attr = value. The
		// stand-in's dialog uses the page's option objects (LuCI clones them into the dialog's
		// map), so a page's map finds the open dialog's nodes too.
		findElement(attr, value) {
			const roots = [ this.root ];
			if (env.modal && env.modal.open && env.modal.map !== this)
				roots.push(env.modal.node);
			for (const r of roots) {
				const n = r ? r.find((x) => x.attrs?.[attr] === value) : null;
				if (n)
					return n;
			}
			return null;
		}
		// drawn: the sections and options the map's node holds widgets of: a grid's editable
		// row options, every option of another section.
		drawn() {
			return this.children.flatMap((s) => s.cfgsections().map((sid) => ({ sid,
				options: s.children.filter((o) => !(s instanceof GridSection) || (!!o.editable && o.modalonly !== true)) })));
		}
		// renderContents as form.js's: draws the widgets anew and puts them in place of the old
		// ones with dom.content() (which LuCI's Map.save and Map.reset end with).
		renderContents() {
			if (!this.root)
				return Promise.resolve();
			const frames = this.drawn().flatMap((d) => d.options.map((o) => o.drawNode(d.sid, this)));
			env.builtin('dom').content(this.root, frames);
			return Promise.resolve(this.root);
		}
		// checkDepends as form.js's Map.checkDepends, as far as it touches widgets: every
		// option's triggerValidation in every section drawn.
		checkDepends() {
			for (const d of this.drawn())
				for (const o of d.options)
					o.triggerValidation(d.sid);
		}
		// render loads every option of every section, as LuCI does before drawing, and draws.
		render() {
			for (const s of this.children)
				for (const sid of s.cfgsections())
					for (const o of s.children)
						o.load(sid);
			this.root = E('div', { 'class': 'cbi-map' });
			env.builtin('dom').bindClassInstance(this.root, this);
			this.renderContents();
			return Promise.resolve({ tag: 'form-map', map: this });
		}
	}
	return { Map, NamedSection, TypedSection, TableSection, GridSection,
		Value, ListValue, DynamicList, MultiValue, DummyValue, Flag, AbstractValue };
}

// E builds a plain tree: { tag, attrs, children } with strings as text, or { html } for markup.
// Its nodes answer the little DOM the views use on them: querySelector('#id'), insertBefore,
// removeChild, appendChild, parentNode and nextSibling (parentNode is not enumerable, so a
// tree stays printable).
const NodeProto = {
	getAttribute(k) {
		return this.attrs && k in this.attrs ? String(this.attrs[k]) : null;
	},
	setAttribute(k, v) {
		this.attrs[k] = String(v);
	},
	removeAttribute(k) {
		delete this.attrs[k];
	},
	// find: the first node of the tree (this one included) for which fn is true, or null.
	find(fn) {
		if (fn(this))
			return this;
		for (const c of this.children ?? [])
			if (c != null && typeof c === 'object' && typeof c.find === 'function') {
				const f = c.find(fn);
				if (f)
					return f;
			}
		return null;
	},
	// contains as the DOM's: this node or one below it.
	contains(n) {
		return this.find((x) => x === n) != null;
	},
	querySelector(sel) {
		const id = /^#([\w-]+)$/.exec(sel)?.[1];
		if (!id)
			throw new Error(`stand-in querySelector: only #id, not ${sel}`);
		for (const c of this.children ?? []) {
			if (c == null || typeof c !== 'object')
				continue;
			if (c.attrs?.id === id)
				return c;
			const f = typeof c.querySelector === 'function' ? c.querySelector(sel) : null;
			if (f)
				return f;
		}
		return null;
	},
	appendChild(n) {
		return this.insertBefore(n, null);
	},
	insertBefore(n, ref) {
		if (n.parentNode)
			n.parentNode.removeChild(n);
		const i = ref == null ? -1 : this.children.indexOf(ref);
		if (i < 0)
			this.children.push(n);
		else
			this.children.splice(i, 0, n);
		adopt(this, n);
		return n;
	},
	removeChild(n) {
		const i = this.children.indexOf(n);
		if (i >= 0)
			this.children.splice(i, 1);
		Object.defineProperty(n, 'parentNode', { value: null, configurable: true, writable: true });
		return n;
	},
	get nextSibling() {
		const p = this.parentNode;
		if (!p)
			return null;
		return p.children[p.children.indexOf(this) + 1] ?? null;
	}
};

function adopt(parent, child) {
	if (child != null && typeof child === 'object')
		Object.defineProperty(child, 'parentNode', { value: parent, configurable: true, writable: true });
}

export function E(tag, attrs, children) {
	if (attrs == null || typeof attrs !== 'object' || Array.isArray(attrs)) {
		children = attrs;
		attrs = {};
	}
	const node = Object.create(NodeProto);
	Object.assign(node, { tag, attrs, children: [] });
	if (Array.isArray(children))
		node.children = children.filter((c) => c != null);
	else if (children != null && typeof children === 'object')
		node.children = [ children ];
	else if (children != null)
		node.html = String(children);
	for (const c of node.children)
		adopt(node, c);
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

// plain renders a tree as a browser's innerText would, roughly: text as it is, each block
// (p, li, div, tr, pre, h*) on a line of its own.
export function plain(node) {
	const BLOCK = /^(p|li|div|tr|pre|h\d|ul|table)$/;
	const lines = [];
	let cur = '';
	const walk = (n) => {
		if (n == null)
			return;
		if (typeof n !== 'object') {
			cur += String(n);
			return;
		}
		if (Array.isArray(n))
			return n.forEach(walk);
		const block = BLOCK.test(n.tag ?? '');
		if (block && cur.trim() !== '') {
			lines.push(cur.trim());
			cur = '';
		}
		if (n.html)
			cur += n.html;
		(n.children ?? []).forEach(walk);
		if (block && cur.trim() !== '') {
			lines.push(cur.trim());
			cur = '';
		}
	};
	walk(node);
	if (cur.trim() !== '')
		lines.push(cur.trim());
	return lines.join('\n');
}

// document stands in for the browser's, as far as the views use it: createElementNS (for SVG,
// which E() cannot make) gives a node of the same shape as E()'s, with ns set; text nodes are
// plain strings.
export const document = {
	createElementNS(ns, tag) {
		return {
			tag, ns, attrs: {}, children: [], nodeType: 1,
			setAttribute(k, v) { this.attrs[k] = String(v); },
			appendChild(c) { this.children.push(c); return c; }
		};
	},
	createTextNode(s) {
		return String(s);
	}
};

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
		this.notifications = [];
		this.saveErrors = [];
		this.pageErrors = [];
		this.modal = null;
		this.focused = null;
	}

	// focus: node gets the focus after the user typed into it (its value changed).
	focus(node) {
		this.focused = node;
	}

	// blur: the focused node loses the focus and, having been typed into, fires its change
	// event; an exception in a listener is reported (pageErrors), as a browser does.
	blur() {
		const n = this.focused;
		this.focused = null;
		for (const fn of n?.listeners?.change ?? []) {
			try {
				fn();
			} catch (e) {
				this.pageErrors.push(e.message);
			}
		}
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
						let r = env.rpcReplies[`${o.object}.${o.method}`];
						if (typeof r === 'function')
							r = r(...args);
						if (r instanceof Error)
							return Promise.reject(r);
						// rpc.js: expect { member: default } resolves to that member of the reply
						// (the whole reply for ''), or the default when it is missing
						r = structuredClone(r ?? {});
						const [ k, d ] = Object.entries(o.expect ?? { '': null })[0] ?? [ '', null ];
						if (k !== '')
							r = (r != null && typeof r === 'object' && k in r) ? r[k] : d;
						return Promise.resolve(r);
					};
				}
			};
		case 'ui':
			return {
				addNotification: (title, children, ...classes) => {
					env.notifications.push({ title, text: text(children), classes });
					return E('div', {}, children);
				}
			};
		case 'poll':
			return { add: (fn, interval) => env.polls.push({ fn, interval }) };
		case 'dom':
			return (this.dom ??= {
				registry: {},
				// data(node, key[, val]) as luci.js's: get or set, by the node's data-idref
				data(node, key, val) {
					if (!node?.getAttribute)
						return null;
					let id = node.getAttribute('data-idref');
					if (arguments.length > 2) {
						if (id == null) {
							do { id = Math.floor(Math.random() * 0xffffffff).toString(16); }
							while (this.registry.hasOwnProperty(id));
							node.setAttribute('data-idref', id);
							this.registry[id] = {};
						}
						return (this.registry[id][key] = val);
					}
					if (id != null)
						return this.registry[id][key];
					return null;
				},
				bindClassInstance(node, inst) {
					return this.data(node, '_class', inst);
				},
				findClassInstance(node) {
					let inst = null;
					do {
						inst = this.data(node, '_class');
						node = node.parentNode;
					}
					while (inst == null && node != null);
					return inst;
				},
				// content as luci.js's: forget the registry entries of every node below node,
				// then take the nodes out (the focused one fires its events: env.focus) and put
				// children in.
				content(node, children) {
					node.find((n) => {
						if (n !== node && n.getAttribute?.('data-idref') != null)
							delete this.registry[n.getAttribute('data-idref')];
						return false;
					});
					for (const c of node.children ?? [])
						if (c != null && typeof c === 'object' && env.focused && typeof c.contains === 'function' && c.contains(env.focused))
							env.blur();
					node.children = [];
					for (const c of (Array.isArray(children) ? children : [ children ]))
						if (c != null)
							node.appendChild(c);
					delete node.html;
				}
			});
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
			isObject: (v) => v != null && typeof v === 'object',
			toArray: (v) => (v == null ? [] : Array.isArray(v) ? v : typeof v === 'object' ? [ v ] : String(v).trim().split(/\s+/).filter(Boolean))
		};
		globalThis._ = (s) => {
			this.translated.push(s);
			return s;
		};
		globalThis.N_ = (n, s, p) => (n === 1 ? s : p);
		globalThis.E = E;
		const factory = new Function('window', 'document', 'L', ...deps.map((d) => d.as), source);
		return factory.call(null, {}, document, L, ...values);
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
// Runtime sections (runtime_network: the init script writes them into the daemon's copy, never
// into /etc/config/airelay) are not for the pages and are left out.
export function schema() {
	const doc = JSON.parse(execFileSync(airelay(), [ 'schema', '--json' ], { encoding: 'utf8' }));
	const out = {};
	for (const s of doc.sections) {
		if (s.runtime)
			continue;
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
