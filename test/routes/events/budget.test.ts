// One budget per client for LLM work: one rate limit across methods, caps on concurrent
// generations per client and per instance, the models a client may name, the demo model only
// when it is the upstream.
import t, { type Test } from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import { startFakeUpstream, type FakeMode, type FakeUpstream } from '../../fixtures/fake-upstream.js'
import { startService } from '../../fixtures/service.js'
import { openStream, type OpenStream } from '../../helpers/http.js'

async function setup (t: Test, mode: FakeMode, env: Record<string, string> = {}): Promise<{ fake: FakeUpstream, url: string }> {
  const fake = await startFakeUpstream(mode)
  t.teardown(() => fake.close())
  const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm', LLM_IDLE_TIMEOUT_MS: '60000', ...env })
  return { fake, url }
}

async function get (url: string, localAddress = '127.0.0.1', method = 'GET'): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
  const req = http.request(url, { method, localAddress, agent: false })
  req.end()
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk
  return { status: res.statusCode ?? 0, headers: res.headers, body }
}

/** Opens `n` answers that stay running (the upstream stalls after its tokens). */
async function running (t: Test, url: string, n: number): Promise<OpenStream[]> {
  const streams: OpenStream[] = []
  for (let i = 0; i < n; i++) {
    const s = await openStream(`${url}/events?prompt=hi`)
    t.teardown(s.destroy)
    await s.waitForEvents(1)
    streams.push(s)
  }
  return streams
}

t.test('GET, POST and HEAD share one rate limit per client', async (t) => {
  const { url } = await setup(t, { kind: 'normal' }, { RATE_LIMIT_MAX: '2' })
  t.equal((await get(`${url}/events?prompt=hi`)).status, 200)
  const post = await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages":[{"role":"user","content":"hi"}]}' })
  t.equal(post.status, 200)
  await post.text()
  const head = await get(`${url}/events?prompt=hi`, '127.0.0.1', 'HEAD')
  t.equal(head.status, 429, 'the third request, whatever its method, is over the limit')
  t.ok(Number(head.headers['retry-after']) > 0)
  t.equal((await get(`${url}/events?prompt=hi`, '127.0.0.2')).status, 200, 'another client has its own budget')
})

t.test('past EVENTS_MAX_PER_CLIENT running answers, a client gets 429 with retry-after before anything goes upstream', async (t) => {
  const { fake, url } = await setup(t, { kind: 'stall-mid' }, { EVENTS_MAX_PER_CLIENT: '2' })
  await running(t, url, 2)
  const res = await get(`${url}/events?prompt=hi`)
  t.equal(res.status, 429)
  t.equal(res.headers['retry-after'], '5')
  t.match(JSON.parse(res.body), { code: 'SSE_ERR_TOO_MANY_GENERATIONS', message: /for this client/ })
  t.equal(fake.requests.length, 2, 'the refused one never reached the upstream')
  const other = http.get(`${url}/events?prompt=hi`, { localAddress: '127.0.0.2', agent: false })
  const [res2] = await once(other, 'response') as [http.IncomingMessage]
  other.destroy()
  t.equal(res2.statusCode, 200, 'another client may still start one')
})

t.test('a stopped answer frees its slot', async (t) => {
  const { url } = await setup(t, { kind: 'stall-mid' }, { EVENTS_MAX_PER_CLIENT: '1' })
  const [s] = await running(t, url, 1)
  const generation = s.events[0].id!.split(':')[0]
  t.equal((await fetch(`${url}/events/${generation}`, { method: 'DELETE' })).status, 204)
  await s.ended
  const next = await openStream(`${url}/events?prompt=hi`)
  t.teardown(next.destroy)
  t.equal(next.res.statusCode, 200)
})

t.test('past EVENTS_MAX_GENERATIONS running answers on the instance, any client gets 429', async (t) => {
  const { fake, url } = await setup(t, { kind: 'stall-mid' }, { EVENTS_MAX_GENERATIONS: '1' })
  await running(t, url, 1)
  const res = await get(`${url}/events?prompt=hi`, '127.0.0.3')
  t.equal(res.status, 429)
  t.match(JSON.parse(res.body), { code: 'SSE_ERR_TOO_MANY_GENERATIONS', message: /on this server/ })
  t.equal(fake.requests.length, 1)
})

t.test('a model outside LLM_MODELS is a 400; one inside is passed on; * allows any', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal' }, { LLM_MODELS: 'small,large' })
  const bad = await get(`${url}/events?prompt=hi&model=gpt-expensive`)
  t.equal(bad.status, 400)
  t.equal(JSON.parse(bad.body).code, 'SSE_ERR_MODEL_NOT_ALLOWED')
  t.equal((await get(`${url}/events?prompt=hi&model=large`)).status, 200)
  t.equal(fake.requests.at(-1)?.body.model, 'large')
  const any = await setup(t, { kind: 'normal' }, { LLM_MODELS: '*' })
  t.equal((await get(`${any.url}/events?prompt=hi&model=whatever`)).status, 200)
})

t.test('the demo model\'s endpoint exists only when it is the upstream', async (t) => {
  const { url } = await setup(t, { kind: 'normal' })
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"x","messages":[{"role":"user","content":"hi"}]}' })
  t.equal(res.status, 404)
  const demo = await startService(t)
  const ok = await fetch(`${demo.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"x","messages":[{"role":"user","content":"hi"}]}' })
  t.equal(ok.status, 200)
})

t.test('the demo model refuses a body over its limit with 413', async (t) => {
  const demo = await startService(t)
  const body = JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'x'.repeat(300 * 1024) }] })
  const res = await fetch(`${demo.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  t.equal(res.status, 413)
})
