// A program on a home device using the official @anthropic-ai/sdk client as shipped: no base
// URL, so it talks to https://api.anthropic.com. The e2e test runs it in the lan namespace; it
// knows nothing about airelay. Prints one JSON line.
//
//   E2E_KEY  the device's own API key
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ apiKey: process.env.E2E_KEY, maxRetries: 0, timeout: 30000 });
const params = { model: 'claude-test', max_tokens: 64, messages: [{ role: 'user', content: 'Say hello.' }] };
const joined = (m) => m.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

const msg = await client.messages.create(params);

const stream = client.messages.stream(params);
let text = '';
let events = 0;
stream.on('text', (t) => { text += t; });
stream.on('streamEvent', () => { events++; });
const final = await stream.finalMessage();

console.log(JSON.stringify({
  baseURL: client.baseURL,
  json: { text: joined(msg), in: msg.usage.input_tokens, out: msg.usage.output_tokens },
  stream: { text, in: final.usage.input_tokens, out: final.usage.output_tokens, chunks: events },
}));
