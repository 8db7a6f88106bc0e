import t from 'tap'
import OpenAI from 'openai'
import Fastify from 'fastify'
import sse from '../../../lib/index.js'
import demoModel from '../../../routes/demo-model/index.js'
import { listen } from '../../helpers/http.js'

const CORPUS = `The quick brown fox jumps over the lazy dog. The lazy dog sleeps in the sun all day.
A stream of events flows from the server to the browser. The browser reconnects when the stream
drops. Every event ends with a blank line. The server writes tokens as they come. Tokens flow like
water through the stream. The dog wakes up and the fox runs away into the forest.`

async function start (t: any, opts: { tokenDelayMs?: number, corpus?: string } = {}): Promise<{ url: string, client: OpenAI }> {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  await app.register(sse)
  await app.register(demoModel, { tokenDelayMs: 0, corpus: CORPUS, ...opts })
  t.teardown(() => app.close())
  const url = await listen(app)
  return { url, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 }) }
}

const messages = [{ role: 'user' as const, content: 'Tell me about the stream' }]

t.test('the openai SDK streams an answer: tokens, a finish reason and usage', async (t) => {
  const { client } = await start(t)
  const stream = await client.chat.completions.create({ model: 'anything', messages, stream: true, stream_options: { include_usage: true } })
  let text = ''
  let tokens = 0
  let finish: string | null = null
  let usage: OpenAI.CompletionUsage | null | undefined
  let model = ''
  for await (const chunk of stream) {
    model = chunk.model
    const content = chunk.choices[0]?.delta.content
    if (content) { text += content; tokens++ }
    finish = chunk.choices[0]?.finish_reason ?? finish
    if (chunk.usage) usage = chunk.usage
  }
  t.equal(model, 'demo-markov')
  t.ok(text.split(/\s+/).length >= 10, text)
  t.equal(finish, 'stop')
  t.equal(usage?.completion_tokens, tokens)
  t.equal(usage?.total_tokens, (usage?.prompt_tokens ?? 0) + tokens)
})

t.test('the openai SDK gets the same answer non-streaming', async (t) => {
  const { client } = await start(t)
  const stream = await client.chat.completions.create({ model: 'x', messages, stream: true })
  let streamed = ''
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? ''
  const completion = await client.chat.completions.create({ model: 'x', messages })
  t.equal(completion.object, 'chat.completion')
  t.equal(completion.model, 'demo-markov')
  t.equal(completion.choices[0].message.role, 'assistant')
  t.equal(completion.choices[0].message.content, streamed)
  t.equal(completion.choices[0].finish_reason, 'stop')
  t.ok((completion.usage?.completion_tokens ?? 0) > 0)
})

t.test('the same prompt always gives the same answer; another prompt another one', async (t) => {
  const { client } = await start(t)
  const ask = async (content: string): Promise<string | null> =>
    (await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content }] })).choices[0].message.content
  const a = await ask('Tell me about the fox')
  t.equal(await ask('Tell me about the fox'), a)
  t.not(await ask('Something else entirely, please'), a)
})

t.test('max_tokens cuts the answer with finish reason length', async (t) => {
  const { client } = await start(t)
  const stream = await client.chat.completions.create({ model: 'x', messages, stream: true, max_tokens: 3 })
  const tokens: string[] = []
  let finish: string | null = null
  for await (const chunk of stream) {
    const c = chunk.choices[0]?.delta.content
    if (c) tokens.push(c)
    finish = chunk.choices[0]?.finish_reason ?? finish
  }
  t.equal(tokens.length, 3)
  t.equal(finish, 'length')
})

t.test('the wire format is OpenAI\'s: a role chunk, content chunks, a finish chunk, usage, [DONE]', async (t) => {
  const { url } = await start(t)
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'x', messages, stream: true, stream_options: { include_usage: true }, max_tokens: 2 })
  })
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  const raw = await res.text()
  const frames = raw.split('\n\n')
  t.equal(frames.pop(), '', 'ends with a blank line')
  t.equal(frames.pop(), 'data: [DONE]')
  t.ok(frames.every((f) => /^data: \{.*\}$/.test(f)), 'one data line of JSON per chunk')
  const chunks = frames.map((f) => JSON.parse(f.slice(6)))
  t.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id && c.model === 'demo-markov'))
  t.ok(chunks.every((c) => Number.isInteger(c.created)))
  t.same(chunks[0].choices, [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }])
  t.equal(chunks[0].usage, null, 'usage: null on chunks when include_usage is set')
  t.same(chunks.slice(1, 3).map((c) => Object.keys(c.choices[0].delta)), [['content'], ['content']])
  t.same(chunks[3].choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: 'length' }])
  t.same(chunks[4].choices, [])
  t.same(Object.keys(chunks[4].usage), ['prompt_tokens', 'completion_tokens', 'total_tokens'])
  t.equal(chunks.length, 5)
})

t.test('tokens come at the configured pace', async (t) => {
  const { client } = await start(t, { tokenDelayMs: 40 })
  const started = performance.now()
  const stream = await client.chat.completions.create({ model: 'x', messages, stream: true, max_tokens: 5 })
  const times: number[] = []
  for await (const chunk of stream) if (chunk.choices[0]?.delta.content) times.push(performance.now() - started)
  t.equal(times.length, 5)
  t.ok(times[4] >= 5 * 40 - 5, `fifth token after ${Math.round(times[4])} ms`)
})

t.test('a bad request is a 400 in the OpenAI error format, which the SDK understands', async (t) => {
  const { client } = await start(t)
  const err: any = await client.chat.completions.create({ model: 'x', messages: [{ role: 'wizard' as any, content: 'hi' }] }).catch((e) => e)
  t.ok(err instanceof OpenAI.BadRequestError)
  t.equal(err.status, 400)
  t.match(err.error.message, /role/)
  t.equal(err.error.type, 'invalid_request_error')
})

t.test('a client that leaves mid-answer closes the response at once, not after the whole answer', async (t) => {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  await app.register(sse)
  await app.register(demoModel, { tokenDelayMs: 50, corpus: CORPUS })
  let closed: ((finished: boolean) => void) | undefined
  const responseClosed = new Promise<boolean>((resolve) => { closed = resolve })
  app.addHook('onRequest', async (request, reply) => { reply.raw.once('close', () => closed?.(reply.raw.writableFinished)) })
  t.teardown(() => app.close())
  const url = await listen(app)
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 })
  const ac = new AbortController()
  // 100 tokens at 50 ms would take 5 s.
  const stream = await client.chat.completions.create({ model: 'x', messages, stream: true, max_tokens: 100 }, { signal: ac.signal })
  let n = 0
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content !== undefined && chunk.choices[0].delta.content !== '' && ++n === 2) {
      ac.abort()
    }
  }
  // Unfinished when it closed: the answer (5 s) did not run to its end first.
  t.equal(await responseClosed, false, 'closed before the answer was complete')
  t.equal(n, 2)
})
