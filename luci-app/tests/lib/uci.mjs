// A stand-in for OpenWrt's `uci` command line, for the rpcd plugin's tests on machines without
// OpenWrt. It does what the plugin uses, the way uci does it: `-q`, `-c DIR`, `get`, `show`,
// `set`, `delete`, `commit` and `batch` (commands on stdin). Changes are staged in a save
// directory ($UCI_SAVEDIR, like /tmp/.uci) until `commit` writes the config file. `set` needs
// the config file to exist, as in uci. Commit writes the file with mode 0644, where libuci's
// uci_file_commit keeps the mode of the file it replaces: harsher on purpose, so the tests
// show that the plugin makes and keeps its keys file 0600 itself. Each run appends its argv as a JSON line to $UCI_LOG, so a test can show that
// no key was ever on a command line. Values are parsed as libuci parses them: '…', "…" and \
// escapes, concatenated.
//
// Used as `node tests/lib/uci.mjs ARGS` through a tiny `uci` wrapper that the tests put first in
// PATH (tests/rpcd.test.mjs).
import fs from 'node:fs';
import path from 'node:path';

// words splits a line into words the way libuci does (quotes, backslashes, concatenation).
export function words(line) {
	const out = [];
	let i = 0;
	while (i < line.length) {
		while (i < line.length && /\s/.test(line[i]))
			i++;
		if (i >= line.length || line[i] === '#')
			break;
		let w = '';
		while (i < line.length && !/\s/.test(line[i])) {
			const c = line[i];
			if (c === '\'') {
				const end = line.indexOf('\'', i + 1);
				if (end < 0)
					throw new Error('unterminated quote');
				w += line.slice(i + 1, end);
				i = end + 1;
			} else if (c === '"') {
				i++;
				while (i < line.length && line[i] !== '"') {
					if (line[i] === '\\' && i + 1 < line.length)
						i++;
					w += line[i++];
				}
				if (line[i] !== '"')
					throw new Error('unterminated quote');
				i++;
			} else if (c === '\\' && i + 1 < line.length) {
				w += line[i + 1];
				i += 2;
			} else {
				w += c;
				i++;
			}
		}
		out.push(w);
	}
	return out;
}

export function quote(v) {
	return `'${String(v).replace(/'/g, `'\\''`)}'`;
}

// parse reads a UCI file: [ { name, type, options: { name: value | [values] } } ].
export function parse(text) {
	const sections = [];
	let cur = null, n = 0;
	for (const line of text.split('\n')) {
		const w = words(line);
		if (w.length === 0)
			continue;
		if (w[0] === 'config') {
			cur = { type: w[1], name: w[2] ?? `cfg${(n++).toString(16).padStart(6, '0')}`, options: {} };
			sections.push(cur);
		} else if (w[0] === 'option' && cur) {
			cur.options[w[1]] = w[2] ?? '';
		} else if (w[0] === 'list' && cur) {
			(cur.options[w[1]] = Array.isArray(cur.options[w[1]]) ? cur.options[w[1]] : []).push(w[2] ?? '');
		}
	}
	return sections;
}

export function format(sections) {
	let out = '';
	for (const s of sections) {
		out += `\nconfig ${s.type} ${quote(s.name)}\n`;
		for (const [ k, v ] of Object.entries(s.options)) {
			for (const x of Array.isArray(v) ? v : [ v ])
				out += `\t${Array.isArray(v) ? 'list' : 'option'} ${k} ${quote(x)}\n`;
		}
	}
	return out;
}

class Uci {
	constructor(confdir, savedir) {
		Object.assign(this, { confdir, savedir });
	}
	file(conf) {
		return path.join(this.confdir, conf);
	}
	delta(conf) {
		return path.join(this.savedir, conf);
	}
	// load returns the config with its staged changes applied.
	load(conf) {
		const f = this.file(conf);
		const sections = fs.existsSync(f) ? parse(fs.readFileSync(f, 'utf8')) : null;
		const changes = fs.existsSync(this.delta(conf)) ? JSON.parse(fs.readFileSync(this.delta(conf), 'utf8')) : [];
		if (!sections && changes.length === 0)
			return null;
		const out = sections ?? [];
		for (const c of changes)
			this.apply(out, c);
		return out;
	}
	apply(sections, [ op, sec, opt, val ]) {
		const s = sections.find((x) => x.name === sec);
		if (op === 'add' && !s)
			sections.push({ type: val, name: sec, options: {} });
		else if (op === 'add' && s)
			s.type = val;
		else if (op === 'set' && s)
			s.options[opt] = val;
		else if (op === 'delsec' && s)
			sections.splice(sections.indexOf(s), 1);
		else if (op === 'delopt' && s)
			delete s.options[opt];
	}
	stage(conf, change) {
		if (!fs.existsSync(this.file(conf)))
			throw new Error('Entry not found');
		if (change[0] !== 'add' && !(this.load(conf) ?? []).some((s) => s.name === change[1]))
			throw new Error('Invalid argument');
		fs.mkdirSync(this.savedir, { recursive: true });
		const d = this.delta(conf);
		const changes = fs.existsSync(d) ? JSON.parse(fs.readFileSync(d, 'utf8')) : [];
		changes.push(change);
		fs.writeFileSync(d, JSON.stringify(changes));
	}
	// ref splits conf.section[.option][=value].
	ref(s) {
		const eq = s.indexOf('=');
		const lhs = eq < 0 ? s : s.slice(0, eq), value = eq < 0 ? null : s.slice(eq + 1);
		const [ conf, sec, opt ] = lhs.split('.');
		if (!conf || lhs.split('.').length > 3)
			throw new Error('Invalid argument');
		return { conf, sec, opt, value };
	}
	run(argv) {
		const [ cmd, ...args ] = argv;
		switch (cmd) {
		case 'get': {
			const { conf, sec, opt } = this.ref(args[0]);
			const s = (this.load(conf) ?? []).find((x) => x.name === sec);
			if (!s || (opt && !(opt in s.options)))
				throw new Error('Entry not found');
			const v = opt ? s.options[opt] : s.type;
			return (Array.isArray(v) ? v.join(' ') : v) + '\n';
		}
		case 'show': {
			const conf = args[0];
			const sections = this.load(conf);
			if (!sections)
				throw new Error('Entry not found');
			let out = '';
			for (const s of sections) {
				out += `${conf}.${s.name}=${s.type}\n`;
				for (const [ k, v ] of Object.entries(s.options))
					out += `${conf}.${s.name}.${k}=${Array.isArray(v) ? v.map(quote).join(' ') : quote(v)}\n`;
			}
			return out;
		}
		case 'set': {
			const { conf, sec, opt, value } = this.ref(args[0]);
			if (value == null || !sec)
				throw new Error('Invalid argument');
			this.stage(conf, opt ? [ 'set', sec, opt, value ] : [ 'add', sec, null, value ]);
			return '';
		}
		case 'delete': {
			const { conf, sec, opt } = this.ref(args[0]);
			this.stage(conf, opt ? [ 'delopt', sec, opt ] : [ 'delsec', sec ]);
			return '';
		}
		case 'commit': {
			for (const conf of args) {
				const sections = this.load(conf);
				if (sections) {
					const f = this.file(conf), tmp = `${f}.tmp${process.pid}`;
					fs.writeFileSync(tmp, format(sections), { mode: 0o644 });
					fs.renameSync(tmp, f);
				}
				fs.rmSync(this.delta(conf), { force: true });
			}
			return '';
		}
		case 'batch': {
			let out = '';
			for (const line of fs.readFileSync(0, 'utf8').split('\n')) {
				const w = words(line);
				if (w.length)
					out += this.run(w);
			}
			return out;
		}
		}
		throw new Error(`unknown command ${cmd}`);
	}
}

function main(argv) {
	if (process.env.UCI_LOG)
		fs.appendFileSync(process.env.UCI_LOG, JSON.stringify(argv) + '\n');
	let quiet = false, confdir = '/etc/config';
	while (argv.length && argv[0].startsWith('-')) {
		const o = argv.shift();
		if (o === '-q')
			quiet = true;
		else if (o === '-c')
			confdir = argv.shift();
		else
			throw new Error(`unknown option ${o}`);
	}
	const uci = new Uci(confdir, process.env.UCI_SAVEDIR || '/tmp/.uci');
	try {
		process.stdout.write(uci.run(argv));
	} catch (e) {
		if (!quiet)
			process.stderr.write(`uci: ${e.message}\n`);
		process.exitCode = 1;
	}
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname))
	main(process.argv.slice(2));
