// A fast fake OpenAI-compatible upstream for the relay benchmark, in its own process:
// `node bench/lib/fake-openai.js <tokens>` prints its port. POST /v1/chat/completions with
// `stream: true` answers in the real wire format (test/fixtures/fake-upstream.ts speaks the same):
// `chat.completion.chunk` objects, a usage chunk, `data: [DONE]`. Tokens go as fast as it can:
// the first at once, then, after `/go` (so every generation can be opened and measured while it
// waits), the rest in writes of 32 chunks per turn of the event loop. The prompt's last word names
// the generation (`g17`); its tokens carry that name, and `/stats` gives the time (µs,
// CLOCK_MONOTONIC, shared by every process here) each first token was written.
import http from 'node:http'
import { nowUs } from './payload.js'

const tokens = Number(process.argv[2] ?? 200)
const firstAt = {}
let go
let released = new Promise((resolve) => { go = resolve })

const chunk = (id, delta, finish = null, usage) => 'data: ' + JSON.stringify({
  id,
  object: 'chat.completion.chunk',
  created: 1700000000,
  model: 'bench',
  choices: [{ index: 0, delta, finish_reason: finish }],
  ...(usage === undefined ? {} : { usage })
}) + '\n\n'

async function answer (req, res) {
  let body = ''
  for await (const part of req) body += part
  const messages = JSON.parse(body).messages ?? []
  const name = String(messages.at(-1)?.content ?? '').split(' ').at(-1)
  const id = 'chatcmpl-' + name
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.write(chunk(id, { role: 'assistant', content: '' }) + chunk(id, { content: ` ${name}t0` }))
  firstAt[name] = nowUs()
  await released
  let i = 1
  while (i < tokens) {
    let text = ''
    for (let k = 0; k < 32 && i < tokens; k++, i++) text += chunk(id, { content: ` ${name}t${i}` })
    if (!res.write(text)) await new Promise((resolve) => res.once('drain', resolve))
    if (res.destroyed) return
    await new Promise((resolve) => setImmediate(resolve))
  }
  res.end(chunk(id, {}, 'stop') + chunk(id, {}, null, { prompt_tokens: 3, completion_tokens: tokens, total_tokens: tokens + 3 }) + 'data: [DONE]\n\n')
}

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/v1/chat/completions') {
    answer(req, res).catch(() => res.destroy())
  } else if (req.url === '/go') {
    go()
    res.end('{}')
  } else if (req.url === '/reset') {
    for (const k of Object.keys(firstAt)) delete firstAt[k]
    released = new Promise((resolve) => { go = resolve })
    res.end('{}')
  } else if (req.url === '/stats') {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ firstAt }))
  } else if (req.url === '/v1/models') {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ object: 'list', data: [{ id: 'bench', object: 'model', created: 0, owned_by: 'bench' }] }))
  } else {
    res.writeHead(404).end()
  }
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
