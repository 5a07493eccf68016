// A program on a home device using the official openai client as shipped: no base URL, so it
// talks to https://api.openai.com/v1, through whatever the network does with that name. The e2e
// test runs it in the lan namespace (resolver: the router; trusted roots: the device's store,
// NODE_EXTRA_CA_CERTS). It knows nothing about airelay. Prints one JSON line.
//
//   E2E_KEY       the API key the device sends (the device's own, or a placeholder)
//   E2E_BASE_URL  optional: a base URL (the router's gateway) instead of the SDK's default
//   E2E_MODE      "all" (default): models, a chat completion, a streamed one; errors throw.
//                 "stream": one streamed completion, reporting how it ended instead of throwing.
//                 "quota": chat completions with the SDK's default retries until one fails;
//                 reports how many succeeded and the error the SDK raised.
import OpenAI from 'openai';

const opts = { apiKey: process.env.E2E_KEY, maxRetries: 0, timeout: 30000 };
if (process.env.E2E_BASE_URL) opts.baseURL = process.env.E2E_BASE_URL;
const client = new OpenAI(opts);
const messages = [{ role: 'user', content: 'Say hello.' }];

async function stream() {
  const s = await client.chat.completions.create({
    model: 'gpt-test', messages, stream: true, stream_options: { include_usage: true },
  });
  const r = { text: '', chunks: 0, in: null, out: null };
  try {
    for await (const chunk of s) {
      r.chunks++;
      for (const c of chunk.choices) r.text += c.delta?.content ?? '';
      if (chunk.usage) { r.in = chunk.usage.prompt_tokens; r.out = chunk.usage.completion_tokens; }
    }
  } catch (e) {
    r.error = `${e.name}: ${e.message}${e.cause ? ` (${e.cause})` : ''}`;
  }
  return r;
}

if (process.env.E2E_MODE === 'quota') {
  // chat completions until one fails, with the SDK's default retries: a 429 that says not to
  // retry must come back at once as the SDK's own error type
  const retrying = new OpenAI({ ...opts, maxRetries: 2 });
  const r = { completed: 0, tokens: 0 };
  for (let i = 0; i < 6; i++) {
    try {
      const chat = await retrying.chat.completions.create({ model: 'gpt-test', messages });
      r.completed++;
      r.tokens += chat.usage.prompt_tokens + chat.usage.completion_tokens;
    } catch (e) {
      r.error = { name: e.constructor.name, status: e.status, type: e.type, code: e.code, message: e.message };
      break;
    }
  }
  console.log(JSON.stringify({ baseURL: retrying.baseURL, quota: r }));
} else if (process.env.E2E_MODE === 'stream') {
  let r;
  try {
    r = await stream();
  } catch (e) {
    r = { chunks: 0, text: '', error: `${e.name}: ${e.message}` };
  }
  console.log(JSON.stringify({ baseURL: client.baseURL, stream: r }));
} else {
  const models = await client.models.list();
  const chat = await client.chat.completions.create({ model: 'gpt-test', messages });
  const s = await stream();
  if (s.error) throw new Error(`stream: ${s.error}`);
  console.log(JSON.stringify({
    baseURL: client.baseURL,
    models: models.data.map((m) => m.id),
    json: { text: chat.choices[0].message.content, in: chat.usage.prompt_tokens, out: chat.usage.completion_tokens },
    stream: s,
  }));
}
