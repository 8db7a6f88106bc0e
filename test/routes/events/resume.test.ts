import t from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import { EventSource } from 'eventsource'
import { startFakeUpstream, type FakeMode, type FakeUpstream } from '../../fixtures/fake-upstream.js'
import { startService, readEvents } from '../../fixtures/service.js'
import { deferred, openStream } from '../../helpers/http.js'
import { PATIENCE_MS } from '../../helpers/eventually.js'

const TOKENS = ['Once', ' upon', ' a', ' time', ',\n', 'a', ' stream', ' 🌊', ' was', ' cut', '.', ' The', ' end', '.']
const ANSWER = TOKENS.join('')

async function setup (t: any, mode: FakeMode, env: Record<string, string> = {}): Promise<{ fake: FakeUpstream, url: string }> {
  const fake = await startFakeUpstream(mode)
  t.teardown(() => fake.close())
  const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm', ...env })
  return { fake, url }
}

/** GET from another loopback address: another client, as far as the server can tell. */
async function getFrom (localAddress: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string }> {
  const req = http.get(url, { localAddress, headers, agent: false })
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk
  return { status: res.statusCode ?? 0, body }
}

t.test('a reconnect after a cut gets the rest of the same answer, byte for byte, from one upstream request', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal', tokens: TOKENS, delayMs: 15 })
  const first = await openStream(`${url}/events?prompt=story`)
  const head = await first.waitForEvents(4)
  first.destroy()
  const last = head[3].id!
  t.match(last, /^[A-Za-z0-9_-]{22}:4$/)

  const second = await openStream(`${url}/events?prompt=story`, { 'last-event-id': last })
  await second.ended
  t.equal(second.res.statusCode, 200)
  const rest = second.events.filter((e) => e.event === undefined)
  const done = second.events.find((e) => e.event === 'done')
  t.equal(head.map((e) => e.data).join('') + rest.map((e) => e.data).join(''), ANSWER)
  t.equal(rest[0].id, last.replace(/:4$/, ':5'), 'the replay starts right after the last id seen')
  t.match(JSON.parse(done!.data), { finish_reason: 'stop' })
  t.equal(fake.requests.length, 1, 'the upstream was asked once')
  t.match(second.text(), /^retry: 1000\n\n/, 'clients are told to come back within a second')
})

t.test('a first request may resume with ?lastEventId=, as an EventSource page reload can', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal', tokens: TOKENS })
  const all = await readEvents(await fetch(`${url}/events?prompt=story`))
  const res = await fetch(`${url}/events?prompt=story&lastEventId=${encodeURIComponent(all[9].id!)}`)
  const rest = await readEvents(res)
  t.same(rest.map((e) => e.data), all.slice(10).map((e) => e.data))
  t.equal(fake.requests.length, 1)
})

t.test('after done, a reconnect gets 204 and the eventsource client stops reconnecting', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal', tokens: TOKENS })
  const es = new EventSource(`${url}/events?prompt=story`)
  let text = ''
  const closed = deferred()
  es.onmessage = (e) => { text += e.data }
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) closed.resolve() }
  await closed.promise
  t.equal(text, ANSWER)
  t.equal(fake.requests.length, 1, 'the prompt was not run again')
})

t.test('with no client for longer than the grace period the upstream is aborted, and the buffer expires', async (t) => {
  const { fake, url } = await setup(t, { kind: 'stall-mid', tokens: TOKENS.slice(0, 3) },
    { RESUME_GRACE_MS: '100', RESUME_TTL_MS: '50', LLM_IDLE_TIMEOUT_MS: '60000' })
  const s = await openStream(`${url}/events?prompt=story`)
  const events = await s.waitForEvents(3)
  s.destroy()
  const closed = await fake.requests[0].closed
  t.equal(closed.aborted, true, 'the upstream request was aborted')
  // Expired: a script asking to resume it explicitly is told so (a browser would get 204).
  let status = 0
  for (const deadline = Date.now() + PATIENCE_MS; status !== 404 && Date.now() < deadline;) {
    const res = await fetch(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'last-event-id': events[2].id! },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'story' }] })
    })
    status = res.status
    if (status === 404) t.match(await res.json(), { code: 'SSE_ERR_GENERATION_NOT_FOUND' })
    else await res.body?.cancel()
    if (status !== 404) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(status, 404)
  t.equal(fake.requests.length, 1, 'and nothing was re-run')
})

t.test('a client coming back within the grace period keeps the generation alive', async (t) => {
  const { fake, url } = await setup(t, { kind: 'normal', tokens: TOKENS, delayMs: 20 }, { RESUME_GRACE_MS: '5000' })
  const a = await openStream(`${url}/events?prompt=story`)
  const [first] = await a.waitForEvents(1)
  a.destroy()
  const b = await openStream(`${url}/events?prompt=story`, { 'last-event-id': first.id! })
  await b.ended
  t.equal(first.data + b.events.filter((e) => e.event === undefined).map((e) => e.data).join(''), ANSWER)
  t.equal((await fake.requests[0].closed).aborted, false, 'the upstream ran to its end')
})

t.test('stop aborts at once, even while a client is attached, which gets done: stopped', async (t) => {
  const { fake, url } = await setup(t, { kind: 'stall-mid', tokens: TOKENS.slice(0, 2) }, { LLM_IDLE_TIMEOUT_MS: '60000' })
  const s = await openStream(`${url}/events?prompt=story`)
  const [ev] = await s.waitForEvents(2)
  const generation = ev.id!.split(':')[0]
  const stop = await fetch(`${url}/events/${generation}`, { method: 'DELETE' })
  t.equal(stop.status, 204)
  t.equal((await fake.requests[0].closed).aborted, true)
  await s.ended
  const done = s.events.find((e) => e.event === 'done')
  t.match(JSON.parse(done!.data), { finish_reason: 'stopped' })
  const again = await fetch(`${url}/events/${generation}/stop`, { method: 'POST' })
  t.equal(again.status, 204, 'the beacon form works too, and stopping twice is harmless')
})

t.test("a guessed id or another client's generation gets nothing", async (t) => {
  const { fake, url } = await setup(t, { kind: 'stall-mid', tokens: TOKENS.slice(0, 2) }, { LLM_IDLE_TIMEOUT_MS: '60000' })
  const s = await openStream(`${url}/events?prompt=secret`)
  const [, second] = await s.waitForEvents(2)
  const [generation] = second.id!.split(':')

  const guessed = await fetch(`${url}/events?prompt=x`, { headers: { 'last-event-id': `${'A'.repeat(22)}:1` } })
  t.equal(guessed.status, 204)
  t.equal(await guessed.text(), '')

  const other = await getFrom('127.0.0.2', `${url}/events?prompt=x`, { 'last-event-id': `${generation}:0` })
  t.equal(other.status, 204, 'another client address cannot read the answer')
  t.equal(other.body, '')
  const stopReq = http.request(`${url}/events/${generation}`, { method: 'DELETE', localAddress: '127.0.0.2', agent: false })
  stopReq.end()
  const [stopRes] = await once(stopReq, 'response') as [http.IncomingMessage]
  stopRes.resume()
  t.equal(stopRes.statusCode, 404, 'nor stop it')
  t.equal(fake.requests.length, 1, 'nothing was started for them')
  s.destroy()
})

t.test('a client that leaves before its first token stops the generation at once: it has no id to resume with', async (t) => {
  const { fake, url } = await setup(t, { kind: 'stall-first' }, { RESUME_GRACE_MS: '600000', LLM_FIRST_TOKEN_TIMEOUT_MS: '600000' })
  const ac = new AbortController()
  const pending = fetch(`${url}/events?prompt=story`, { signal: ac.signal }).catch(() => null)
  await fake.nextRequest()
  ac.abort()
  await pending
  const closed = await fake.requests[0].closed
  t.equal(closed.aborted, true, 'aborted long before the ten-minute grace period')
})

t.test("the script client's generate() resumes the same generation after the server drops it", async (t) => {
  const { generate } = await import('../../../lib/client/client.js')
  const fake = await startFakeUpstream({ kind: 'normal', tokens: TOKENS, delayMs: 15 })
  t.teardown(() => fake.close())
  const { app, url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm' })
  // Cut the first /events connection from the server side once a few tokens are out.
  let cut = false
  app.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (cut || req.url !== '/events') return
    let frames = 0
    const write = res.write.bind(res)
    res.write = ((chunk: any, ...rest: any[]) => {
      const ok = write(chunk, ...rest)
      frames += String(chunk).split('\n\n').length - 1
      if (frames >= 4 && !cut) { cut = true; res.socket?.end() }
      return ok
    }) as typeof res.write
  })
  const answer = generate(url, { prompt: 'story' })
  let text = ''
  for await (const token of answer) text += token
  t.ok(cut, 'the connection was cut mid-answer')
  t.equal(text, ANSWER, 'the answer is whole, as if never cut')
  t.match(await answer.done, { finish_reason: 'stop' })
  t.equal(fake.requests.length, 1, 'and the upstream was asked once')
})

t.test('with TRUST_PROXY the owner is the client behind the proxy, not the proxy', async (t) => {
  const { url } = await setup(t, { kind: 'normal', tokens: TOKENS }, { TRUST_PROXY: '1' })
  const alice = { 'x-forwarded-for': '203.0.113.5' }
  const all = await readEvents(await fetch(`${url}/events?prompt=story`, { headers: alice }))
  const cursor = all[2].id!
  const bob = await fetch(`${url}/events?prompt=story`, { headers: { 'x-forwarded-for': '198.51.100.7', 'last-event-id': cursor } })
  t.equal(bob.status, 204, 'another client behind the same proxy gets nothing')
  const back = await fetch(`${url}/events?prompt=story`, { headers: { ...alice, 'last-event-id': cursor } })
  t.equal(back.status, 200, 'the client who started it resumes')
  t.same((await readEvents(back)).map((e) => e.data), all.slice(3).map((e) => e.data))
})
