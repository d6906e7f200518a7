// The official openai npm client against `bitrom server` (run by tests/test_server.c):
//   NODE_PATH=build/node/node_modules node tests/openai_client.cjs http://127.0.0.1:PORT/v1 API_KEY
// Prints one JSON line per call: {"call": NAME, "text": ANSWER}; the test compares them with
// `bitrom run --temp 0`.
const OpenAI = require('openai');
const [baseURL, apiKey] = process.argv.slice(2);

async function main() {
    const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
    const out = (call, text) => console.log(JSON.stringify({ call, text }));
    let r = await client.completions.create({ model: 'stories3m', prompt: 'Once upon a time', max_tokens: 16, temperature: 0 });
    out('completion', r.choices[0].text);
    // bitrom's per-request adapters ride along as an extra body field
    r = await client.completions.create({ model: 'stories3m', prompt: 'And God said', max_tokens: 16, temperature: 0, lora: [{ id: 'kjv', scale: 1 }] });
    out('completion_kjv', r.choices[0].text);
    const messages = [{ role: 'user', content: 'Tell me a story' }];
    const stream = await client.chat.completions.create({ model: 'stories3m', messages, max_tokens: 12, temperature: 0, stream: true });
    let text = '';
    for await (const chunk of stream) text += (chunk.choices[0] && chunk.choices[0].delta.content) || '';
    out('chat_stream', text);
    const chat = await client.chat.completions.create({ model: 'stories3m', messages, max_tokens: 12, temperature: 0 });
    out('chat', chat.choices[0].message.content);
    const models = await client.models.list();
    out('models', models.data.map((m) => m.id).join(','));
    try {
        await new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 }).models.list();
        console.log(JSON.stringify({ unauthorized: 0 }));
    } catch (e) {
        console.log(JSON.stringify({ unauthorized: e.status }));
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
