// Drives the official @anthropic-ai/sdk client through the airelay gateway: messages, JSON and
// streamed, with a placeholder key. Prints one JSON line for the Go test to check.
// Usage: AIRELAY_GATEWAY=http://127.0.0.1:8080 node anthropic.mjs
import Anthropic from '@anthropic-ai/sdk';

const base = process.env.AIRELAY_GATEWAY;
if (!base) throw new Error('AIRELAY_GATEWAY is not set');
const client = new Anthropic({ baseURL: `${base}/anthropic`, apiKey: 'sk-ant-placeholder', maxRetries: 0, timeout: 20000 });
const params = { model: 'claude-test', max_tokens: 64, messages: [{ role: 'user', content: 'Say hello.' }] };

const msg = await client.messages.create(params);
const joined = (m) => m.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

const stream = client.messages.stream(params);
let text = '';
let events = 0;
stream.on('text', (t) => { text += t; });
stream.on('streamEvent', () => { events++; });
const final = await stream.finalMessage();

console.log(JSON.stringify({
  json: { text: joined(msg), in: msg.usage.input_tokens, out: msg.usage.output_tokens },
  stream: { text, in: final.usage.input_tokens, out: final.usage.output_tokens, chunks: events },
}));
