import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createLlmClient, streamChat, firstModel, type ChatEvent } from '../../../routes/events/llm.js'
import { startFakeUpstream, DEFAULT_TOKENS, type FakeUpstream } from '../../fixtures/fake-upstream.js'

async function fake (t: any, mode?: Parameters<typeof startFakeUpstream>[0]): Promise<FakeUpstream> {
  const f = await startFakeUpstream(mode)
  t.teardown(() => f.close())
  return f
}

async function collect (iter: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = []
  for await (const e of iter) out.push(e)
  return out
}

const ask = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }] }

t.test('yields each token, then done with finish reason, usage and model', async (t) => {
  const f = await fake(t, { kind: 'normal', model: 'served-model' })
  const events = await collect(streamChat(await createLlmClient({ baseURL: f.baseURL }), ask))
  t.same(events.filter((e) => e.type === 'token').map((e: any) => e.text), DEFAULT_TOKENS)
  t.same(events.at(-1), {
    type: 'done',
    finish_reason: 'stop',
    usage: { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 },
    model: 'served-model'
  })
  t.equal(f.requests[0].body.stream, true)
  t.same(f.requests[0].body.stream_options, { include_usage: true })
})

async function failure (iter: AsyncIterable<ChatEvent>): Promise<{ err: any, tokens: string[] }> {
  const tokens: string[] = []
  try {
    for await (const e of iter) if (e.type === 'token') tokens.push(e.text)
  } catch (err) {
    return { err, tokens }
  }
  throw new Error('expected the stream to fail')
}

const cases: Array<{ name: string, mode: any, code: string, status: number, tokens: number, message: RegExp }> = [
  { name: '401 becomes SSE_ERR_UPSTREAM_AUTH (502): our configuration, not the caller\'s', mode: { kind: 'status', status: 401 }, code: 'SSE_ERR_UPSTREAM_AUTH', status: 502, tokens: 0, message: /HTTP 401.*LLM_API_KEY/ },
  { name: '403 becomes SSE_ERR_UPSTREAM_AUTH (502)', mode: { kind: 'status', status: 403 }, code: 'SSE_ERR_UPSTREAM_AUTH', status: 502, tokens: 0, message: /HTTP 403/ },
  { name: '404 becomes SSE_ERR_UPSTREAM_REJECTED with the upstream\'s reason', mode: { kind: 'status', status: 404, message: 'model "m" not found' }, code: 'SSE_ERR_UPSTREAM_REJECTED', status: 502, tokens: 0, message: /HTTP 404.*model "m" not found.*LLM_MODEL/ },
  { name: '500 becomes SSE_ERR_UPSTREAM_FAILED', mode: { kind: 'status', status: 500 }, code: 'SSE_ERR_UPSTREAM_FAILED', status: 502, tokens: 0, message: /HTTP 500/ },
  { name: 'an error object mid-stream becomes SSE_ERR_UPSTREAM_FAILED after the tokens before it', mode: { kind: 'mid-error', message: 'overloaded' }, code: 'SSE_ERR_UPSTREAM_FAILED', status: 502, tokens: 5, message: /mid-stream \(overloaded\)/ },
  { name: 'a dropped connection becomes SSE_ERR_UPSTREAM_FAILED', mode: { kind: 'drop' }, code: 'SSE_ERR_UPSTREAM_FAILED', status: 502, tokens: 5, message: /dropped mid-stream/ },
  { name: 'a chunk that is not JSON becomes SSE_ERR_UPSTREAM_FAILED', mode: { kind: 'malformed' }, code: 'SSE_ERR_UPSTREAM_FAILED', status: 502, tokens: 5, message: /not JSON; is LLM_BASE_URL an OpenAI-compatible API\?/ },
  { name: 'a stream that ends without a finish reason becomes SSE_ERR_UPSTREAM_FAILED', mode: { kind: 'truncated' }, code: 'SSE_ERR_UPSTREAM_FAILED', status: 502, tokens: 5, message: /ended before the model finished/ }
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const f = await fake(t, c.mode)
    const { err, tokens } = await failure(streamChat(await createLlmClient({ baseURL: f.baseURL }), ask))
    t.equal(err.code, c.code)
    t.equal(err.statusCode, c.status)
    t.equal(tokens.length, c.tokens)
    t.match(err.message, c.message)
    t.notOk(err.message.includes(f.baseURL), 'the URL is not in the message')
    t.equal(err.upstream, f.baseURL, 'but kept for the log')
  })
}

t.test('429 passes the upstream retry-after on, and the SDK does not retry by default', async (t) => {
  const f = await fake(t, { kind: 'status', status: 429, retryAfter: '17' })
  const { err } = await failure(streamChat(await createLlmClient({ baseURL: f.baseURL }), ask))
  t.equal(err.code, 'SSE_ERR_UPSTREAM_RATE_LIMITED')
  t.equal(err.statusCode, 429)
  t.equal(err.retryAfter, '17')
  t.equal(f.requests.length, 1, 'one attempt only')
})

t.test('a refused connection becomes SSE_ERR_UPSTREAM_UNREACHABLE, the URL kept for the log', async (t) => {
  const f = await startFakeUpstream()
  const baseURL = f.baseURL
  await f.close() // nothing listens on that port any more
  const { err } = await failure(streamChat(await createLlmClient({ baseURL }), ask))
  t.equal(err.code, 'SSE_ERR_UPSTREAM_UNREACHABLE')
  t.equal(err.statusCode, 502)
  t.equal(err.upstream, baseURL)
  t.notOk(err.message.includes(baseURL))
  t.match(err.message, /LLM_BASE_URL/)
})

t.test('no first token in time becomes SSE_ERR_UPSTREAM_TIMEOUT (504) and the upstream request is cancelled', async (t) => {
  const f = await fake(t, { kind: 'stall-first' })
  const started = performance.now()
  const { err } = await failure(streamChat(await createLlmClient({ baseURL: f.baseURL }), ask, { firstTokenTimeoutMs: 200 }))
  t.equal(err.code, 'SSE_ERR_UPSTREAM_TIMEOUT')
  t.equal(err.statusCode, 504)
  t.match(err.message, /within 200 ms/)
  t.ok(performance.now() - started < 30_000, 'gives up at its deadline, not at the 60 s default')
  t.equal((await f.requests[0].closed).aborted, true, 'the upstream saw the request aborted')
})

t.test('silence between tokens beyond the idle timeout becomes SSE_ERR_UPSTREAM_TIMEOUT after the tokens', async (t) => {
  const f = await fake(t, { kind: 'stall-mid' })
  const started = performance.now()
  const { err, tokens } = await failure(streamChat(await createLlmClient({ baseURL: f.baseURL }), ask, { idleTimeoutMs: 200 }))
  t.equal(err.code, 'SSE_ERR_UPSTREAM_TIMEOUT')
  t.same(tokens, DEFAULT_TOKENS)
  t.ok(performance.now() - started < 30_000, 'the idle limit applies, not the 60 s first-token one')
  t.equal((await f.requests[0].closed).aborted, true)
})

t.test('a slow consumer does not count as upstream silence', async (t) => {
  const f = await fake(t, { kind: 'normal' })
  const events: ChatEvent[] = []
  // The consumer pauses longer than the idle limit after every token; the upstream itself sends
  // everything at once, so only the consumer could make the stream look silent.
  for await (const e of streamChat(await createLlmClient({ baseURL: f.baseURL }), ask, { idleTimeoutMs: 400, firstTokenTimeoutMs: 30_000 })) {
    events.push(e)
    if (e.type === 'token') await new Promise((resolve) => setTimeout(resolve, 600))
  }
  t.equal(events.at(-1)?.type, 'done')
})

t.test('aborting before the first byte cancels the upstream request at once and ends quietly', async (t) => {
  const f = await fake(t, { kind: 'stall-first' })
  const ac = new AbortController()
  const iter = streamChat(await createLlmClient({ baseURL: f.baseURL }), ask, { signal: ac.signal })
  const pending = collect(iter)
  await f.nextRequest()
  const abortedAt = performance.now()
  ac.abort()
  t.same(await pending, [], 'no tokens, no done, no error')
  const closed = await f.requests[0].closed
  t.equal(closed.aborted, true)
  // Else only the 60 s first-token timeout would close it: half of that tells the two apart.
  t.ok(closed.at - abortedAt < 30_000, `upstream saw the abort after ${Math.round(closed.at - abortedAt)} ms`)
})

t.test('stopping the iteration mid-stream cancels the upstream request', async (t) => {
  const f = await fake(t, { kind: 'stall-mid' })
  for await (const e of streamChat(await createLlmClient({ baseURL: f.baseURL }), ask)) {
    if (e.type === 'token') break
  }
  t.equal((await f.requests[0].closed).aborted, true)
})

t.test('an already aborted signal sends nothing upstream', async (t) => {
  const f = await fake(t)
  t.same(await collect(streamChat(await createLlmClient({ baseURL: f.baseURL }), ask, { signal: AbortSignal.abort() })), [])
  t.equal(f.requests.length, 0)
})

t.test('the API key never appears in an error message, even when the upstream echoes it', async (t) => {
  const key = 'sk-very-secret-key-123'
  const f = await fake(t, { kind: 'status', status: 400, message: `bad request for key ${key}` })
  const { err } = await failure(streamChat(await createLlmClient({ baseURL: f.baseURL, apiKey: key }), ask, { apiKey: key }))
  t.equal(err.code, 'SSE_ERR_UPSTREAM_REJECTED')
  t.notOk(err.message.includes(key))
  t.match(err.message, /\[redacted\]/)
  t.equal(f.requests[0].headers.authorization, `Bearer ${key}`, 'the key did go to the upstream')
})

t.test('firstModel picks the first model the upstream lists', async (t) => {
  const f = await fake(t)
  t.equal(await firstModel(await createLlmClient({ baseURL: f.baseURL })), 'fake-listed-model')
})

t.test('firstModel maps an upstream failure to a coded error', async (t) => {
  const f = await startFakeUpstream()
  const baseURL = f.baseURL
  await f.close() // nothing listens there any more
  await t.rejects(firstModel(await createLlmClient({ baseURL })), { code: 'SSE_ERR_UPSTREAM_UNREACHABLE' })
})

t.test('an upstream that answers with a redirect is an error saying so, and the redirect is not followed', async (t) => {
  const f = await fake(t)
  let asked = 0
  const redirecting = http.createServer((req, res) => {
    asked++
    res.writeHead(307, { location: `${f.baseURL}/chat/completions` }).end()
  })
  await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve))
  t.teardown(() => redirecting.close())
  const baseURL = `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}/v1`
  const { err } = await failure(streamChat(await createLlmClient({ baseURL }), ask))
  t.equal(err.code, 'SSE_ERR_UPSTREAM_FAILED')
  t.match(err.message, /redirect.*LLM_BASE_URL/)
  t.equal(asked, 1)
  t.equal(f.requests.length, 0, 'the place it pointed to was not asked')
})
