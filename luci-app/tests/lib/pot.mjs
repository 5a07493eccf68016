// The translation template: every _('…') string of the views, the menu titles and the ACL
// description, as LuCI's i18n scan collects them. `node luci-app/tests/lib/pot.mjs` prints
// po/templates/airelay.pot; tests/syntax.test.mjs fails when the committed one is stale.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { APP, RESOURCES, MENU, ACL, files } from './luci.mjs';

export const POT = path.join(APP, 'po', 'templates', 'airelay.pot');
// where the app sits in a LuCI checkout, as LuCI's own templates name their sources
const SRC = 'applications/luci-app-airelay';

function unquote(q, body) {
	return body.replace(/\\(.)/g, (m, c) => ({ n: '\n', t: '\t' }[c] ?? c));
}

// msgids returns [ [msgid, 'file:line'] ] in order of first appearance.
export function msgids() {
	const seen = new Map();
	const add = (id, where) => { if (!seen.has(id)) seen.set(id, where); };
	for (const f of files(RESOURCES, '.js')) {
		const src = fs.readFileSync(f, 'utf8');
		for (const m of src.matchAll(/(?<![\w$.])_\(\s*(['"])((?:\\.|(?!\1)[^\\\n])*)\1\s*[,)]/g)) {
			const line = src.slice(0, m.index).split('\n').length;
			add(unquote(m[1], m[2]), `${SRC}/${path.relative(APP, f)}:${line}`);
		}
	}
	for (const e of Object.values(JSON.parse(fs.readFileSync(MENU, 'utf8'))))
		if (e.title)
			add(e.title, `${SRC}/${path.relative(APP, MENU)}`);
	for (const g of Object.values(JSON.parse(fs.readFileSync(ACL, 'utf8'))))
		if (g.description)
			add(g.description, `${SRC}/${path.relative(APP, ACL)}`);
	return [ ...seen ];
}

function po(s) {
	return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t') + '"';
}

export function pot() {
	let out = 'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8"\n';
	for (const [ id, where ] of msgids())
		out += `\n#: ${where}\nmsgid ${po(id)}\nmsgstr ""\n`;
	return out;
}

// parsePot returns the msgids of a .pot file.
export function parsePot(text) {
	const ids = [];
	for (const m of text.matchAll(/^msgid ((?:"(?:\\.|[^"\\])*"\s*)+)/gm)) {
		const id = [ ...m[1].matchAll(/"((?:\\.|[^"\\])*)"/g) ].map((x) => x[1]).join('')
			.replace(/\\(.)/g, (s, c) => ({ n: '\n', t: '\t' }[c] ?? c));
		if (id !== '')
			ids.push(id);
	}
	return ids;
}

if (process.argv[1] === fileURLToPath(import.meta.url))
	process.stdout.write(pot());
