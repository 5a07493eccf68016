// A refused value stops a save, in every list field of every page and every dialog, the entry
// typed into a list's box and not added included; the message names the field and says why
// (issue 19.3). LuCI itself drops such an entry and saves the rest: the client dialog saved a
// client without its refused schedule line, allowed at all hours. The stand-in's widgets follow
// LuCI's (tests/lib/luci.mjs, checked against luci-base master in Chromium).
import test from 'node:test';
import assert from 'node:assert/strict';
import { Env, options, schema } from './lib/luci.mjs';
import { config, hostHints } from './lib/fixtures.mjs';

const S = schema();

// A value the daemon refuses for each list option, by its schema type (validate.test.mjs shows
// the validators refuse what `airelay check` refuses, with its words).
const REFUSED = {
	mac: 'aa:bb:cc:dd:ee', cidr: '192.168.1.0/33', schedule: 'Mon-Fry 15:00-20:00', network: 'gu-est',
	host: 'localhost', ref: 'nosuch', hostport: 'dns.quad9.net'
};
// ... and one it accepts.
const ACCEPTED = {
	mac: 'aa:bb:cc:dd:ee:09', cidr: '192.168.1.0/24', schedule: 'Sat,Sun 09:00-21:00', network: 'iot',
	host: 'api2.example.com', ref: 'local', hostport: '149.112.112.112'
};

function env(rpc = {}, uci = config) {
	return new Env({ uci, rpc: { 'luci-rpc.getHostHints': hostHints, 'luci.airelay.keys': { keys: { openai: true, anthropic: false, local: false } },
		'luci.airelay.set_key': { result: true }, 'luci.airelay.status': { running: true }, 'luci.airelay.check': { valid: true }, ...rpc } });
}

// The list options of the schema, with the page and the section each is edited in.
const WHERE = { airelay: [ 'settings', 'main' ], provider: [ 'providers', 'openai' ], client: [ 'clients', 'cfg0a1b2c' ] };
const LISTS = [];
for (const [ type, sec ] of Object.entries(S))
	for (const [ name, so ] of Object.entries(sec.options))
		if (so.list)
			LISTS.push({ type, name, kind: so.type, page: WHERE[type][0], sid: WHERE[type][1] });

test('every list option of the schema is covered, with a refused and an accepted value', () => {
	assert.deepEqual(LISTS.map((l) => `${l.type}.${l.name}`).sort(), [
		'airelay.network', 'airelay.resolver', 'client.ip', 'client.mac', 'client.network', 'client.provider', 'client.schedule',
		'provider.fallback', 'provider.host' ]);
	for (const l of LISTS)
		assert.ok(REFUSED[l.kind] && ACCEPTED[l.kind], `${l.type}.${l.name}: no ${l.kind} example`);
});

// open renders the page and returns the option and a way to save like the user: a dialog's Save
// for a grid section, the page's Save for the settings. stored: the list's value in the config.
async function open(l, stored) {
	const uci = structuredClone(config);
	if (stored)
		uci.airelay.find((s) => s['.name'] === l.sid)[l.name] = stored;
	const e = env({}, uci);
	await e.view(l.page);
	const o = options(e)[l.type].find((x) => x.option.option === l.name).option;
	const grid = o.section.constructor.name === 'GridSection';
	const dlg = grid ? o.section.modal(l.sid) : null;
	const save = () => (grid ? dlg.save() : e.maps[0].save().catch(() => {}));
	return { e, o, dlg, save, changes: () => e.uci.changes('airelay') };
}

// what the user sees after a refused save: the dialog's list of refused fields, or LuCI's
// "Save error" dialog for a page
function refusal(t) {
	return t.dlg ? t.dlg.refused() : t.e.saveErrors.at(-1) ?? null;
}

for (const l of LISTS) {
	const text = l.kind === 'ref' && l.type === 'client' ? null : REFUSED[l.kind];

	if (text)
		test(`${l.type}.${l.name}: a refused entry typed into the box and not added stops the save, saying which field and why`, async () => {
			const t = await open(l);
			const why = t.o.validate(l.sid, text);
			assert.equal(typeof why, 'string', 'the validator refuses the example');
			t.o.pending[l.sid] = text;
			await t.save();
			assert.deepEqual(t.changes(), [], 'nothing is staged');
			const r = refusal(t);
			assert.ok(r, 'a message is shown');
			assert.ok(r.includes(t.o.title), `the message names the field: ${r}`);
			assert.ok(r.includes(`'${text}': ${why}`), `the message says why: ${r}`);
			if (t.dlg)
				assert.equal(t.dlg.isOpen(), true, 'the dialog stays open');
		});

	test(`${l.type}.${l.name}: a refused entry already in the list (a config edited by hand) stops the save too`, async () => {
		const bad = l.kind === 'ref' ? 'nosuch' : REFUSED[l.kind];
		const t = await open(l, [ bad ]);
		await t.save();
		assert.deepEqual(t.changes(), []);
		assert.ok((refusal(t) ?? '').includes(`'${bad}': `), refusal(t));
	});

	if (l.kind !== 'ref' || l.type !== 'client')
		test(`${l.type}.${l.name}: an accepted entry typed into the box and not added is saved with the others`, async () => {
			const t = await open(l);
			t.o.pending[l.sid] = ACCEPTED[l.kind];
			await t.save();
			assert.equal(refusal(t), null);
			const change = t.changes().find(([ op, k ]) => op === 'set' && k === `airelay.${l.sid}.${l.name}`);
			assert.ok(change, `nothing saved: ${JSON.stringify(t.changes())}`);
			assert.ok(change[2].includes(ACCEPTED[l.kind]));
			if (t.dlg)
				assert.equal(t.dlg.isOpen(), false, 'the dialog closes');
		});
}

test('the client dialog of issue 19: name and MAC with a refused schedule line save nothing, not even the name', async () => {
	const t = await open(LISTS.find((l) => l.type === 'client' && l.name === 'schedule'));
	const sid = 'cfg0a1b2c';
	t.dlg.option('name').formvalues[sid] = 'Kid';
	t.dlg.option('mac').formvalues[sid] = [ 'aa:bb:cc:dd:ee:01', '02:00:00:00:01:64' ];
	t.o.pending[sid] = 'Mon-Fry';
	await t.save();
	assert.deepEqual(t.changes(), []);
	assert.equal(t.dlg.isOpen(), true);
	assert.equal(t.dlg.refused(), `Not saved. Correct or remove these values first:\nSchedule: 'Mon-Fry': ${t.o.validate(sid, 'Mon-Fry')}`);
	// corrected, it saves all of it
	t.o.pending[sid] = 'Mon-Fri 15:00-20:00';
	await t.save();
	assert.equal(t.dlg.isOpen(), false);
	assert.deepEqual(t.changes(), [
		[ 'set', `airelay.${sid}.name`, 'Kid' ],
		[ 'set', `airelay.${sid}.mac`, [ 'aa:bb:cc:dd:ee:01', '02:00:00:00:01:64' ] ],
		[ 'set', `airelay.${sid}.schedule`, [ 'Mon-Fri 15:00-20:00' ] ]
	]);
});

test('a refused single field is listed in the dialog as well, with every other refused field', async () => {
	const t = await open(LISTS.find((l) => l.type === 'client' && l.name === 'schedule'));
	const sid = 'cfg0a1b2c';
	t.dlg.option('daily_tokens').formvalues[sid] = 'lots';
	t.dlg.option('mac').pending[sid] = 'aa:bb';
	await t.save();
	assert.deepEqual(t.changes(), []);
	const r = t.dlg.refused();
	assert.match(r, /Tokens per day: must be a whole number from 0 to 1125899906842624/);
	assert.match(r, /MAC addresses: 'aa:bb': not a MAC address/);
});

test('providers: a refused host name typed and not added keeps the API key from being sent', async () => {
	const t = await open(LISTS.find((l) => l.type === 'provider' && l.name === 'host'));
	t.dlg.option('api_key').formvalues.openai = 'sk-new';
	t.o.pending.openai = 'localhost';
	await t.save();
	assert.deepEqual(t.e.calls.filter((c) => c.method === 'set_key'), [], 'no key was sent');
	assert.equal(t.dlg.isOpen(), true);
	assert.match(t.dlg.refused(), /Host names: 'localhost': not a host name/);
});

test('providers: a key the router refuses is said in the dialog, which stays open', async () => {
	const e = env({ 'luci.airelay.set_key': { error: 'provider \'openai\': the key holds a space' } });
	await e.view('providers');
	const dlg = e.maps[0].children[0].modal('openai');
	dlg.option('api_key').formvalues.openai = 'sk x';
	await dlg.save();
	assert.equal(dlg.isOpen(), true);
	assert.match(dlg.refused(), /API key of provider "openai" not changed: provider 'openai': the key holds a space/);
});

test('clients: a provider the entry names that no longer exists is shown and refused, not dropped (which would allow every provider)', async () => {
	const uci = structuredClone(config);
	uci.airelay.find((s) => s['.name'] === 'cfg0a1b2c').provider = [ 'gone' ];
	const e = new Env({ uci, rpc: { 'luci-rpc.getHostHints': hostHints } });
	await e.view('clients');
	const grid = e.maps[0].children[0];
	const dlg = grid.modal('cfg0a1b2c');
	const o = dlg.option('provider');
	assert.ok(o.keylist.includes('gone'), 'the unknown provider stays a choice, so it stays selected');
	assert.match(o.vallist[o.keylist.indexOf('gone')], /gone \(no such provider\)/);
	await dlg.save();
	assert.deepEqual(e.uci.changes('airelay'), [], 'the list is not emptied');
	assert.match(dlg.refused(), /Providers: 'gone': no provider section has that name/);
});

test('settings: a refused list entry stops Save with LuCI\'s message naming the field; nothing is staged', async () => {
	const t = await open(LISTS.find((l) => l.type === 'airelay' && l.name === 'network'));
	t.o.pending.main = 'gu-est';
	await assert.rejects(t.e.maps[0].save(), /Option "Networks served" contains an invalid input value\. 'gu-est': not a network name/);
	assert.deepEqual(t.changes(), []);
	assert.equal(t.e.saveErrors.length, 1, 'LuCI shows it in its Save error dialog');
});
