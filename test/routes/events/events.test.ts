import t from 'tap'
import { startFakeUpstream, DEFAULT_TOKENS, type FakeMode, type FakeUpstream } from '../../fixtures/fake-upstream.js'
import { startService, readEvents } from '../../fixtures/service.js'
import { openStream } from '../../helpers/http.js'

const ID = /^([A-Za-z0-9_-]{22}):(\d+)$/

async function setup (t: any, mode: FakeMode, env: Record<string, string> = {}): Promise<{ fake: FakeUpstream, url: string }> {
  const fake = await startFakeUpstream(mode)
  t.teardown(() => fake.close())
  const { url } = await startService(t, {
    LLM_BASE_URL: fake.baseURL,
    LLM_API_KEY: 'sk-test-secret',
    LLM_MODEL: 'fake-model',
    // Short only where a test waits for the timeout to fire: elsewhere a loaded machine could be
    // slower than 400 ms to produce a token, and the test would see a timeout it did not ask for.
    LLM_FIRST_TOKEN_TIMEOUT_MS: mode.kind === 'stall-first' ? '400' : '30000',
    LLM_IDLE_TIMEOUT_MS: mode.kind === 'stall-mid' ? '400' : '30000',
    ...env
  })
  return { fake, url }
}

t.test('streams each token as a message event with <generation>:<seq> ids, then done', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal', model: 'served-model' })
  const res = await fetch(`${url}/events?prompt=Say+hello`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  const events = await readEvents(res)
  const tokens = events.filter((e) => e.event === undefined)
  t.same(tokens.map((e) => e.data), DEFAULT_TOKENS)
  const ids = events.map((e) => ID.exec(e.id ?? ''))
  t.ok(ids.every((m) => m !== null), 'every event has an id')
  t.equal(new Set(ids.map((m) => m?.[1])).size, 1, 'one generation')
  t.same(ids.map((m) => Number(m?.[2])), events.map((_, i) => i + 1), 'seq counts from 1')
  const done = events.at(-1)
  t.equal(done?.event, 'done')
  t.same(JSON.parse(done?.data ?? ''), {
    finish_reason: 'stop',
    usage: { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 },
    model: 'served-model',
    demo: false
  })
  t.same(fake.requests[0].body.messages, [{ role: 'user', content: 'Say hello' }])
  t.equal(fake.requests[0].body.model, 'fake-model')
})

t.test('each generation gets its own unguessable id', async (t) => {
  const { url } = await setup(t, { kind: 'normal' })
  const a = await readEvents(await fetch(`${url}/events?prompt=a`))
  const b = await readEvents(await fetch(`${url}/events?prompt=a`))
  t.not(ID.exec(a[0].id ?? '')?.[1], ID.exec(b[0].id ?? '')?.[1])
})

t.test('GET passes system, model, temperature and max_tokens to the upstream', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal' }, { LLM_MODELS: 'other' })
  await (await fetch(`${url}/events?prompt=hi&system=Be+brief&model=other&temperature=0.5&max_tokens=9`)).text()
  const body = fake.requests[0].body
  t.same(body.messages, [{ role: 'system', content: 'Be brief' }, { role: 'user', content: 'hi' }])
  t.equal(body.model, 'other')
  t.equal(body.temperature, 0.5)
  t.equal(body.max_tokens, 9)
})

t.test('POST relays a whole conversation', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal' })
  const messages = [
    { role: 'system', content: 'S' }, { role: 'user', content: 'U1' }, { role: 'assistant', content: 'A1' }, { role: 'user', content: 'U2' }
  ]
  const res = await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages, temperature: 1 }) })
  const events = await readEvents(res)
  t.equal(events.at(-1)?.event, 'done')
  t.same(fake.requests[0].body.messages, messages)
  t.equal(fake.requests[0].body.temperature, 1)
})

t.test('without LLM_MODEL the first model the upstream lists is used', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal' }, { LLM_MODEL: '' })
  await (await fetch(`${url}/events?prompt=hi`)).text()
  t.equal(fake.requests[0].url, '/v1/models')
  t.equal(fake.requests[1].body.model, 'fake-listed-model')
})

// Failures before the first token: an HTTP error with a JSON body.
const before: Array<{ name: string, mode: FakeMode, status: number, code: string }> = [
  { name: 'upstream 401 is a 502 saying to check LLM_API_KEY', mode: { kind: 'status', status: 401 }, status: 502, code: 'SSE_ERR_UPSTREAM_AUTH' },
  { name: 'upstream 500 is a 502', mode: { kind: 'status', status: 500 }, status: 502, code: 'SSE_ERR_UPSTREAM_FAILED' },
  { name: 'upstream 400 is a 502 with the upstream\'s reason', mode: { kind: 'status', status: 400, message: 'context too long' }, status: 502, code: 'SSE_ERR_UPSTREAM_REJECTED' },
  { name: 'no first token in time is a 504', mode: { kind: 'stall-first' }, status: 504, code: 'SSE_ERR_UPSTREAM_TIMEOUT' }
]
for (const c of before) {
  t.test(c.name, async (t) => {
    const { fake, url } = await setup(t, c.mode)
    const res = await fetch(`${url}/events?prompt=hi`)
    t.equal(res.status, c.status)
    t.match(res.headers.get('content-type'), /^application\/json/)
    const body = await res.json()
    t.equal(body.code, c.code)
    t.notOk(body.message.includes(fake.baseURL), 'never the internal upstream URL')
    t.notOk(JSON.stringify(body).includes('sk-test-secret'), 'never the key')
    if (c.code === 'SSE_ERR_UPSTREAM_AUTH') t.match(body.message, /LLM_API_KEY/)
    if (c.code === 'SSE_ERR_UPSTREAM_REJECTED') t.match(body.message, /context too long/)
  })
}

t.test('upstream 429 is a 429 carrying the upstream\'s retry-after', async (t) => {
  const { url } = await setup(t, { kind: 'status', status: 429, retryAfter: '17' })
  const res = await fetch(`${url}/events?prompt=hi`)
  t.equal(res.status, 429)
  t.equal(res.headers.get('retry-after'), '17')
  t.equal((await res.json()).code, 'SSE_ERR_UPSTREAM_RATE_LIMITED')
})

t.test('a refused connection is a 502 saying to check LLM_BASE_URL', async (t) => {
  const fake = await startFakeUpstream()
  await fake.close()
  const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm' })
  const res = await fetch(`${url}/events?prompt=hi`)
  t.equal(res.status, 502)
  const body = await res.json()
  t.equal(body.code, 'SSE_ERR_UPSTREAM_UNREACHABLE')
  t.match(body.message, /LLM_BASE_URL/)
})

// Failures after the first token: the tokens, then an `error` event, then the end.
const after: Array<{ name: string, mode: FakeMode, code: string, message: RegExp }> = [
  { name: 'an upstream error object mid-stream', mode: { kind: 'mid-error', message: 'overloaded' }, code: 'SSE_ERR_UPSTREAM_FAILED', message: /overloaded/ },
  { name: 'a stall mid-stream', mode: { kind: 'stall-mid' }, code: 'SSE_ERR_UPSTREAM_TIMEOUT', message: /within 400 ms/ },
  { name: 'a dropped upstream connection', mode: { kind: 'drop' }, code: 'SSE_ERR_UPSTREAM_FAILED', message: /dropped/ }
]
for (const c of after) {
  t.test(`${c.name} ends the stream with an error event after the tokens`, async (t) => {
    const { url } = await setup(t, c.mode)
    const res = await fetch(`${url}/events?prompt=hi`)
    t.equal(res.status, 200)
    const events = await readEvents(res)
    t.same(events.slice(0, -1).map((e) => e.data), DEFAULT_TOKENS)
    const last = events.at(-1)
    t.equal(last?.event, 'error')
    const data = JSON.parse(last?.data ?? '{}')
    t.equal(data.code, c.code)
    t.match(data.message, c.message)
  })
}

t.test('without resuming, a client disconnect mid-generation aborts the upstream request at once', async (t) => {
  const { fake, url } = await setup(t, { kind: 'stall-mid' }, { LLM_IDLE_TIMEOUT_MS: '60000', EVENTS_RESUME: 'off' })
  const stream = await openStream(`${url}/events?prompt=hi`)
  await stream.waitForEvents(DEFAULT_TOKENS.length)
  const left = performance.now()
  stream.destroy()
  const closed = await fake.requests[0].closed
  t.equal(closed.aborted, true)
  // The idle timeout (60 s) would also close it: half of that tells the two apart on any machine.
  t.ok(closed.at - left < 30_000, `upstream closed ${Math.round(closed.at - left)} ms after the client left`)
})

t.test('without resuming, a client disconnect before the first token aborts the upstream request too', async (t) => {
  const { fake, url } = await setup(t, { kind: 'stall-first' }, { LLM_FIRST_TOKEN_TIMEOUT_MS: '60000', EVENTS_RESUME: 'off' })
  const ac = new AbortController()
  const pending = fetch(`${url}/events?prompt=hi`, { signal: ac.signal }).catch(() => null)
  await fake.nextRequest()
  const left = performance.now()
  ac.abort()
  await pending
  const closed = await fake.requests[0].closed
  t.equal(closed.aborted, true)
  // The first-token timeout (60 s) would also close it: half of that tells the two apart.
  t.ok(closed.at - left < 30_000, `upstream closed ${Math.round(closed.at - left)} ms after the client left`)
})

t.test('without resuming, a reconnect carrying one of our event ids gets 204 instead of a second answer', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal' }, { EVENTS_RESUME: 'off' })
  const res = await fetch(`${url}/events?prompt=hi`, { headers: { 'last-event-id': 'AAAAAAAAAAAAAAAAAAAAAA:3' } })
  t.equal(res.status, 204)
  t.equal(fake.requests.length, 0, 'nothing asked upstream')
})
