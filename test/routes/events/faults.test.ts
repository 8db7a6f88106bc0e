// The upstream's real faults, through the whole service: each names its real cause, none kills a
// stream that could go on, and no message gives away the upstream's address.
import t, { type Test } from 'tap'
import { startFakeUpstream, type FakeMode, type FakeUpstream } from '../../fixtures/fake-upstream.js'
import { startService, readEvents } from '../../fixtures/service.js'

async function setup (t: Test, mode: FakeMode): Promise<{ fake: FakeUpstream, url: string }> {
  const fake = await startFakeUpstream(mode)
  t.teardown(() => fake.close())
  const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm' })
  return { fake, url }
}

// An emoji (U+1F30A) cut between its two UTF-16 halves, one per chunk, as some servers do.
const SPLIT = ['Wave ', '\ud83c', '\udf0a', ' done']

t.test('an emoji split into lone surrogates across two chunks arrives whole in text format', async (t) => {
  const { url } = await setup(t, { kind: 'normal', tokens: SPLIT })
  const res = await fetch(`${url}/events?prompt=hi`)
  const events = await readEvents(res)
  t.equal(events.at(-1)?.event, 'done', 'the stream ended normally, not with an error')
  t.equal(events.filter((e) => e.event === undefined).map((e) => e.data).join(''), 'Wave 🌊 done')
})

t.test('an emoji split across chunks arrives whole in json format too', async (t) => {
  const { url } = await setup(t, { kind: 'normal', tokens: SPLIT })
  const events = await readEvents(await fetch(`${url}/events?prompt=hi&format=json`))
  t.equal(events.filter((e) => e.event === undefined).map((e) => JSON.parse(e.data)).join(''), 'Wave 🌊 done')
})

t.test('a lone surrogate that never gets its partner becomes U+FFFD instead of ending the stream', async (t) => {
  const { url } = await setup(t, { kind: 'normal', tokens: ['a', '\ud83c', 'b'] })
  const events = await readEvents(await fetch(`${url}/events?prompt=hi`))
  t.equal(events.at(-1)?.event, 'done')
  t.equal(events.filter((e) => e.event === undefined).map((e) => e.data).join(''), 'a\ufffdb')
})

t.test('a POST whose content is a lone surrogate is a 400 naming the message', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal' })
  const res = await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages":[{"role":"user","content":"ok"},{"role":"user","content":"\\udf0a"}]}' })
  t.equal(res.status, 400)
  t.match(await res.json(), { code: 'SSE_ERR_INVALID_TEXT', message: /messages\[1\]\.content/ })
  t.equal(fake.requests.length, 0)
})

t.test('an upstream that resets the connection is reported as a reset, not as unreachable', async (t) => {
  const { fake, url } = await setup(t, { kind: 'reset' })
  const res = await fetch(`${url}/events?prompt=hi`)
  t.equal(res.status, 502)
  const body = await res.json()
  t.equal(body.code, 'SSE_ERR_UPSTREAM_FAILED')
  t.match(body.message, /connection reset/)
  t.notMatch(body.message, /cannot be reached/)
  t.notOk(body.message.includes(fake.baseURL))
})

t.test('a 200 that is not an event stream asks whether LLM_BASE_URL is an OpenAI-compatible API', async (t) => {
  const { url } = await setup(t, { kind: 'not-sse' })
  const res = await fetch(`${url}/events?prompt=hi`)
  t.equal(res.status, 502)
  const body = await res.json()
  t.equal(body.code, 'SSE_ERR_UPSTREAM_FAILED')
  t.match(body.message, /not an event stream.*is LLM_BASE_URL an OpenAI-compatible API\?/)
})

t.test('a 404 quotes the upstream\'s reason once, then the hint, with no stray punctuation', async (t) => {
  const { url } = await setup(t, { kind: 'status', status: 404, message: 'The model `m` does not exist or you do not have access to it.' })
  const body = await (await fetch(`${url}/events?prompt=hi`)).json()
  t.equal(body.code, 'SSE_ERR_UPSTREAM_REJECTED')
  t.equal(body.message, 'The LLM server refused the request (HTTP 404): The model `m` does not exist or you do not have access to it; check LLM_MODEL and the request')
})

t.test('an upstream 429 is passed on with its retry-after, and without the upstream address', async (t) => {
  const { fake, url } = await setup(t, { kind: 'status', status: 429, retryAfter: '21', message: 'Rate limit reached for m in organization org-x' })
  const res = await fetch(`${url}/events?prompt=hi`)
  t.equal(res.status, 429)
  t.equal(res.headers.get('retry-after'), '21')
  const body = await res.json()
  t.equal(body.code, 'SSE_ERR_UPSTREAM_RATE_LIMITED')
  t.notOk(JSON.stringify(body).includes(fake.baseURL.replace(/\/v1$/, '')))
})
