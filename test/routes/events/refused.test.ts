// A request that does not get a stream starts nothing upstream: no generation, no paid request.
import t, { type Test } from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import { startFakeUpstream, type FakeMode, type FakeUpstream } from '../../fixtures/fake-upstream.js'
import { startService } from '../../fixtures/service.js'
import { openStream } from '../../helpers/http.js'

async function setup (t: Test, mode: FakeMode, env: Record<string, string> = {}): Promise<{ fake: FakeUpstream, url: string }> {
  const fake = await startFakeUpstream(mode)
  t.teardown(() => fake.close())
  const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm', ...env })
  return { fake, url }
}

/** A raw request from a chosen loopback address: another client, as far as the server can tell. */
async function request (url: string, opts: { method?: string, localAddress?: string, body?: string } = {}): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
  const req = http.request(url, { method: opts.method ?? 'GET', localAddress: opts.localAddress, agent: false, headers: opts.body === undefined ? {} : { 'content-type': 'application/json' } })
  req.end(opts.body)
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk
  return { status: res.statusCode ?? 0, headers: res.headers, body }
}

t.test('with MAX_STREAMS reached, refused /events requests leave no upstream request open and none started', async (t) => {
  const { fake, url } = await setup(t, { kind: 'stall-mid' }, { MAX_STREAMS: '2', TICKER_INTERVAL_MS: '1000' })
  const a = await openStream(`${url}/ticker`)
  const b = await openStream(`${url}/ticker`)
  t.teardown(() => { a.destroy(); b.destroy() })
  await Promise.all([a.waitForEvents(1), b.waitForEvents(1)])
  for (let i = 0; i < 5; i++) {
    const res = await request(`${url}/events?prompt=hi`)
    t.equal(res.status, 503)
    t.equal(JSON.parse(res.body).code, 'SSE_ERR_TOO_MANY_STREAMS')
  }
  t.equal(fake.requests.length, 0, 'nothing was asked upstream')
  t.equal(fake.open, 0, '0 upstream requests open')
})

t.test('HEAD /events answers the stream\'s headers and never starts a generation', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal' })
  const res = await request(`${url}/events?prompt=hi`, { method: 'HEAD' })
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  t.equal(fake.requests.length, 0)
})

t.test('a rate-limited, an invalid and a not-allowed request start nothing upstream', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal' }, { RATE_LIMIT_MAX: '1' })
  t.equal((await request(`${url}/events?prompt=hi&model=other`)).status, 400, 'a model not offered')
  t.equal((await request(`${url}/events?prompt=hi`, { localAddress: '127.0.0.2' })).status, 200)
  t.equal((await request(`${url}/events?prompt=hi`, { localAddress: '127.0.0.2' })).status, 429, 'rate limited')
  const lone = await request(`${url}/events`, { method: 'POST', localAddress: '127.0.0.3', body: '{"messages":[{"role":"user","content":"\\ud83c"}]}' })
  t.equal(lone.status, 400)
  t.equal(JSON.parse(lone.body).code, 'SSE_ERR_INVALID_TEXT')
  t.equal(fake.requests.length, 1, 'only the one accepted request went upstream')
  t.equal(fake.open, 0)
})
