import t from 'tap'
import { startFakeUpstream, type FakeUpstream } from '../../fixtures/fake-upstream.js'
import { startService, readEvents } from '../../fixtures/service.js'

async function setup (t: any, env: Record<string, string> = {}): Promise<{ fake: FakeUpstream, url: string }> {
  const fake = await startFakeUpstream({ kind: 'normal' })
  t.teardown(() => fake.close())
  const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm', EVENTS_MAX_PROMPT_CHARS: '50', ...env })
  return { fake, url }
}

const post = (url: string, body: unknown): Promise<Response> =>
  fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

const badQueries: Array<[string, string, RegExp]> = [
  ['a missing prompt', '', /querystring must have required property 'prompt'/],
  ['an empty prompt', 'prompt=', /querystring\/prompt must NOT have fewer than 1 characters/],
  ['an oversized prompt', 'prompt=' + 'x'.repeat(51), /querystring\/prompt must NOT have more than 50 characters/],
  ['an oversized system prompt', 'prompt=hi&system=' + 'x'.repeat(51), /querystring\/system/],
  ['max_tokens that is not a number', 'prompt=hi&max_tokens=many', /querystring\/max_tokens must be integer/],
  ['max_tokens below 1', 'prompt=hi&max_tokens=0', /querystring\/max_tokens must be >= 1/],
  ['temperature above 2', 'prompt=hi&temperature=3', /querystring\/temperature must be <= 2/],
  ['an unknown format', 'prompt=hi&format=xml', /querystring\/format must be equal to one of the allowed values/]
]
for (const [what, query, message] of badQueries) {
  t.test(`GET with ${what} is a 400 naming the field`, async (t) => {
    const { fake, url } = await setup(t)
    const res = await fetch(`${url}/events?${query}`)
    t.equal(res.status, 400)
    const body = await res.json()
    t.equal(body.code, 'FST_ERR_VALIDATION')
    t.match(body.message, message)
    t.equal(fake.requests.length, 0, 'nothing reached the upstream')
  })
}

const badBodies: Array<[string, unknown, RegExp]> = [
  ['no messages', {}, /body must have required property 'messages'/],
  ['an empty conversation', { messages: [] }, /body\/messages must NOT have fewer than 1 items/],
  ['an unknown role', { messages: [{ role: 'wizard', content: 'hi' }] }, /body\/messages\/0\/role must be equal to one of the allowed values/],
  ['a message without content', { messages: [{ role: 'user' }] }, /body\/messages\/0 must have required property 'content'/],
  ['an oversized message', { messages: [{ role: 'user', content: 'x'.repeat(51) }] }, /body\/messages\/0\/content must NOT have more than 50 characters/],
  ['a bad temperature', { messages: [{ role: 'user', content: 'hi' }], temperature: 'hot' }, /body\/temperature must be number/]
]
for (const [what, body, message] of badBodies) {
  t.test(`POST with ${what} is a 400 naming the field`, async (t) => {
    const { fake, url } = await setup(t)
    const res = await post(url, body)
    t.equal(res.status, 400)
    t.match((await res.json()).message, message)
    t.equal(fake.requests.length, 0)
  })
}

t.test('each client gets RATE_LIMIT_MAX requests per window, then 429 with retry-after', async (t) => {
  const { url } = await setup(t, { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000' })
  for (let i = 0; i < 2; i++) {
    const ok = await fetch(`${url}/events?prompt=hi`)
    t.equal(ok.status, 200)
    await ok.text()
  }
  const res = await fetch(`${url}/events?prompt=hi`)
  t.equal(res.status, 429)
  t.ok(Number(res.headers.get('retry-after')) > 0, 'says when to come back')
  const body = await res.json()
  t.equal(body.code, 'SSE_ERR_RATE_LIMITED')
  t.match(body.message, /retry in \d+ (seconds?|minute)/)
})

t.test('RATE_LIMIT_MAX=0 turns the limit off', async (t) => {
  const { url } = await setup(t, { RATE_LIMIT_MAX: '0' })
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${url}/events?prompt=hi`)
    t.equal(res.status, 200)
    t.equal(res.headers.get('x-ratelimit-limit'), null)
    await res.text()
  }
})

t.test('the rate limit covers /events only, not the demo model or the page', async (t) => {
  const { url } = await startService(t, { RATE_LIMIT_MAX: '1' })
  const first = await fetch(`${url}/events?prompt=hi`)
  t.equal(first.status, 200)
  await first.text()
  t.equal((await fetch(`${url}/events?prompt=hi`)).status, 429)
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }] })
    })
    t.equal(res.status, 200)
    await res.text()
  }
})

t.test('with no upstream configured /events is answered by the demo model over HTTP', async (t) => {
  const { url } = await startService(t)
  const events = await readEvents(await fetch(`${url}/events?prompt=What+is+SSE%3F`))
  const tokens = events.filter((e) => e.event === undefined).map((e) => e.data)
  t.ok(tokens.length > 5, `${tokens.length} tokens`)
  const done = JSON.parse(events.at(-1)?.data ?? '{}')
  t.equal(events.at(-1)?.event, 'done')
  t.equal(done.demo, true)
  t.equal(done.model, 'demo-markov')
  t.equal(done.usage.completion_tokens, tokens.length)
  const again = await readEvents(await fetch(`${url}/events?prompt=What+is+SSE%3F`))
  t.same(again.filter((e) => e.event === undefined).map((e) => e.data), tokens, 'the same prompt gives the same answer')
})
