// Drives the official openai client through the airelay gateway: chat completions, JSON and
// streamed (asking for usage, and not asking in several ways), with a placeholder key. Prints one JSON line for the Go test to check.
// Usage: AIRELAY_GATEWAY=http://127.0.0.1:8080 node openai.mjs
import OpenAI from 'openai';

const base = process.env.AIRELAY_GATEWAY;
if (!base) throw new Error('AIRELAY_GATEWAY is not set');
const client = new OpenAI({ baseURL: `${base}/openai/v1`, apiKey: 'sk-placeholder', maxRetries: 0, timeout: 20000 });
const messages = [{ role: 'user', content: 'Say hello.' }];

const models = await client.models.list();
const chat = await client.chat.completions.create({ model: 'gpt-test', messages });

const stream = await client.chat.completions.create({
  model: 'gpt-test', messages, stream: true, stream_options: { include_usage: true },
});
let text = '';
let usage = null;
let chunks = 0;
for await (const chunk of stream) {
  chunks++;
  for (const c of chunk.choices) text += c.delta?.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}

// Streams that do not ask for usage, one way or another (and one with a 20 KiB history): the
// gateway asks the provider for usage (stream_usage) and the SDK must see none of it: no usage
// chunk, and no chunk with a usage member at all.
const history = [{ role: 'user', content: 'lorem ipsum dolor sit amet '.repeat(760) }, ...messages];
const quiet = {};
for (const [name, extra] of [
  ['plain', {}],
  ['empty_options', { stream_options: {} }],
  ['usage_false', { stream_options: { include_usage: false } }],
  ['history_20k', { messages: history }],
]) {
  const s = await client.chat.completions.create({ model: 'gpt-test', messages, stream: true, ...extra });
  const r = { text: '', chunks: 0, with_usage: 0 };
  for await (const chunk of s) {
    r.chunks++;
    if ('usage' in chunk) r.with_usage++;
    for (const c of chunk.choices) r.text += c.delta?.content ?? '';
  }
  quiet[name] = r;
}

console.log(JSON.stringify({
  models: models.data.map((m) => m.id),
  json: { text: chat.choices[0].message.content, in: chat.usage.prompt_tokens, out: chat.usage.completion_tokens },
  stream: { text, in: usage?.prompt_tokens, out: usage?.completion_tokens, chunks },
  quiet,
}));
