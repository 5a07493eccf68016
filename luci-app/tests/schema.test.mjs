// The views and `airelay schema --json` agree: every option the views edit is in the schema,
// every option of the schema has a control, and each control fits its option's type.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Env, options, schema } from './lib/luci.mjs';
import { config, hostHints } from './lib/fixtures.mjs';

const VIEWS = [ 'settings', 'providers', 'clients' ];

// Validator kinds (shared.js check.*) that may stand for a schema type; several options of
// type hostport differ in what the daemon accepts (listen, destination, resolver).
const KINDS = {
	string: [ 'string' ], int: [ 'int' ], duration: [ 'duration' ], size: [ 'size' ],
	hostport: [ 'hostport', 'dialaddr', 'resolver' ], ipv4: [ 'ipv4' ], ipv6: [ 'ipv6' ],
	url: [ 'url' ], host: [ 'host' ], mac: [ 'mac' ], cidr: [ 'cidr' ], egress: [ 'egress' ],
	prefix: [ 'prefix' ], secret: [ 'secret' ], ref: [ 'ref' ], device: [ 'device' ],
	schedule: [ 'schedule' ], network: [ 'network' ]
};

async function rendered() {
	const env = new Env({ uci: config, rpc: { 'luci-rpc.getHostHints': hostHints } });
	for (const v of VIEWS)
		await env.view(v);
	return { env, byType: options(env) };
}

const S = schema();
const { env, byType } = await rendered();

test('the views cover exactly the schema\'s section types', () => {
	assert.deepEqual(Object.keys(byType).sort(), Object.keys(S).sort());
	const main = env.maps.flatMap((m) => m.children).find((s) => s.sectiontype === 'airelay');
	assert.equal(main.constructor.name, 'NamedSection');
	assert.equal(main.sid, S.airelay.name, 'the global section is the schema\'s named one');
	for (const m of env.maps)
		assert.equal(m.config, 'airelay');
});

test('provider sections are named (the daemon refuses unnamed ones); clients may be anonymous', () => {
	const sec = (t) => byType[t][0].section;
	assert.equal(sec('provider').anonymous, false);
	assert.equal(sec('provider').addremove, true);
	assert.equal(sec('client').addremove, true);
});

for (const type of Object.keys(S)) {
	test(`section ${type}: every control is a schema option and every option has one control`, () => {
		const edited = byType[type].map((x) => x.option.option).filter((n) => !n.startsWith('_'));
		const dup = edited.filter((n, i) => edited.indexOf(n) !== i);
		assert.deepEqual(dup, [], 'an option with two controls');
		const unknown = edited.filter((n) => !(n in S[type].options));
		assert.deepEqual(unknown, [], 'controls for options the daemon does not read');
		const missing = Object.keys(S[type].options).filter((n) => !edited.includes(n));
		assert.deepEqual(missing, [], 'schema options with no control');
	});

	for (const [ name, so ] of Object.entries(S[type].options)) {
		test(`${type}.${name} (${so.type}${so.list ? ' list' : ''}): widget fits`, () => {
			const { option: o } = byType[type].find((x) => x.option.option === name);
			const widget = o.constructor.name;
			const listWidget = widget === 'DynamicList' || widget === 'MultiValue';
			assert.equal(listWidget, !!so.list, `${widget} for a ${so.list ? 'list' : 'single value'}`);

			switch (so.type) {
			case 'bool':
				assert.equal(widget, 'Flag');
				assert.equal(o.default, so.default, 'Flag default = schema default');
				assert.equal(o.rmempty, false, 'a Flag writes 0 and 1 (removing the option would mean the default)');
				return;
			case 'enum':
				assert.equal(widget, 'ListValue');
				assert.deepEqual(o.keylist, so.values, 'the same choices in the same order');
				assert.equal(o.default, so.default);
				return;
			case 'ref': {
				const names = env.uci.sections('airelay', so.ref).map((s) => s['.name']);
				const choices = [ ...o.keylist ];
				if (widget === 'DynamicList') {
					o.load('openai'); // the choices leave out the section itself
					assert.deepEqual(o.keylist, names.filter((n) => n !== 'openai'));
					assert.equal(o.validate?.kind, 'ref');
					assert.equal(o.validate('openai', 'openai'), 'a provider cannot be its own fallback');
					assert.notEqual(o.validate('openai', 'nosuch'), true);
					assert.equal(o.validate('openai', 'local'), true);
				} else {
					assert.deepEqual(choices, names, 'choices = the provider sections');
				}
				return;
			}
			case 'secret':
				assert.equal(widget, 'Value');
				assert.equal(o.password, true, 'a secret is a password field');
				assert.equal(o.cfgvalue('openai'), null, 'a secret is never loaded into the form');
				assert.equal(o.validate?.kind, 'secret');
				return;
			}

			assert.ok([ 'Value', 'DynamicList' ].includes(widget), `${widget} for ${so.type}`);
			assert.equal(typeof o.validate, 'function', 'validated like the daemon validates');
			assert.ok(KINDS[so.type].includes(o.validate.kind), `validator ${o.validate.kind} for ${so.type}`);
			if (so.type === 'int') {
				const min = so.min ?? 0; // the schema leaves out a minimum of 0
				assert.equal(o.datatype, `range(${min},${so.max})`);
				assert.deepEqual([ o.validate.opts.min, o.validate.opts.max ], [ min, so.max ]);
			}
			if (so.type === 'network') {
				// the choices are the router's networks (fixtures: lan, guest, iot, wan), LAN-side first
				assert.deepEqual(o.keylist, [ 'guest', 'iot', 'lan', 'wan' ]);
				assert.match(o.vallist[2], /^lan \(br-lan, zone lan, LAN-side\)$/);
				assert.match(o.vallist[3], /^wan \(eth1, zone wan, masquerades: not LAN-side\)$/);
			}
			if (so.list && widget === 'DynamicList' && so.type === 'schedule')
				assert.equal(o.placeholder, 'Mon-Fri 15:00-20:00', 'a schedule list shows an example');
			if (so.default !== '' && widget === 'Value')
				assert.equal(o.placeholder, so.default, 'the placeholder shows the default an empty field means');
		});
	}
}
