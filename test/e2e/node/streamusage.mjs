// A program on a home device streaming chat completions with the official openai client through
// the router's gateway, the way chat apps do: a conversation with some history (20 KiB), and
// stream_options written several ways. Prints one JSON line: what the SDK saw of each stream.
//
//   E2E_BASE_URL  the gateway's base URL (http://router:8080/openai/v1)
//   E2E_KEY       the key the device sends (a placeholder: the router puts its own on)
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.E2E_BASE_URL, apiKey: process.env.E2E_KEY, maxRetries: 0, timeout: 30000 });
const history = [];
while (JSON.stringify(history).length < 20 * 1024) {
  history.push({ role: 'user', content: 'Tell me about the router in the hall, and why it blinks. ' },
    { role: 'assistant', content: 'It blinks when packets pass; a steady light means it is up. ' });
}
const messages = [...history, { role: 'user', content: 'Say hello.' }];

const out = { history_bytes: JSON.stringify(messages).length, streams: {} };
for (const [name, extra] of [
  ['no_options', {}],
  ['empty_options', { stream_options: {} }],
  ['usage_false', { stream_options: { include_usage: false } }],
  ['usage_true', { stream_options: { include_usage: true } }],
]) {
  const r = { text: '', chunks: 0, with_usage: 0, in: null, out: null };
  try {
    const s = await client.chat.completions.create({ model: 'gpt-test', messages, stream: true, ...extra });
    for await (const chunk of s) {
      r.chunks++;
      if ('usage' in chunk) r.with_usage++;
      if (chunk.usage) { r.in = chunk.usage.prompt_tokens; r.out = chunk.usage.completion_tokens; }
      for (const c of chunk.choices) r.text += c.delta?.content ?? '';
    }
  } catch (e) {
    r.error = `${e.name}: ${e.message}`;
  }
  out.streams[name] = r;
}
console.log(JSON.stringify(out));
