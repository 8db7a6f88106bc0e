// Redis that hangs (SIGSTOP: connections stay open, nothing answers) and Redis that restarts for 2 s
// (AOF on): the service reports the first and fails fast with a coded error, and a generation in
// flight survives both, reaching a real EventSource whole, from one upstream request.
import t, { type Test } from 'tap'
import { EventSource } from 'eventsource'
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js'
import { startService, readEvents, type Service } from '../fixtures/service.js'
import { openStream } from '../helpers/http.js'
import { redisMissing, startRedis, type RedisServer } from '../helpers/redis.js'

const skip = redisMissing()
const TOKENS = Array.from({ length: 40 }, (_, i) => ` w${i}`)
const ANSWER = TOKENS.join('')
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function setup (t: Test, opts: { aof?: boolean, delayMs: number }): Promise<{ redis: RedisServer, fake: FakeUpstream, service: Service }> {
  const redis = await startRedis(t, { aof: opts.aof })
  const fake = await startFakeUpstream({ kind: 'normal', tokens: TOKENS, delayMs: opts.delayMs })
  t.teardown(() => fake.close())
  const service = await startService(t, {
    REDIS_URL: redis.url,
    REDIS_COMMAND_TIMEOUT_MS: '1000',
    LLM_BASE_URL: fake.baseURL,
    LLM_MODEL: 'm',
    RATE_LIMIT_MAX: '0',
    EVENTS_MAX_PER_CLIENT: '20'
  })
  return { redis, fake, service }
}

/**
 * Reads the whole answer through a real EventSource, which reconnects by itself with
 * Last-Event-ID. Resolves at `done`; rejects if the EventSource gives up for good (an HTTP error
 * or a 204), which is what a resume answered with the wrong status makes it do.
 */
function readAnswer (url: string): { text: () => string, tokens: () => number, done: Promise<void>, close: () => void, errors: string[] } {
  const es = new EventSource(url)
  let text = ''
  let tokens = 0
  const errors: string[] = []
  const done = new Promise<void>((resolve, reject) => {
    es.onmessage = (e) => { text += e.data; tokens++ }
    es.addEventListener('done', () => { es.close(); resolve() })
    es.onerror = (e: any) => {
      if (typeof e.data === 'string') errors.push(JSON.parse(e.data).code)
      if (es.readyState === EventSource.CLOSED) reject(new Error(`the EventSource gave up (${String(e.message ?? e.code ?? '')}) after ${JSON.stringify(text)}`))
    }
  })
  return { text: () => text, tokens: () => tokens, done, close: () => es.close(), errors }
}

async function until (what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(25)
  }
}

t.test('a hung Redis (SIGSTOP): /health says 503, /events and DELETE fail fast with SSE_ERR_HUB_UNAVAILABLE, a running answer survives', { skip }, async (t) => {
  const { redis, fake, service: { url } } = await setup(t, { delayMs: 60 })
  t.equal((await fetch(url + '/health')).status, 200, 'healthy before')
  const before = await openStream(`${url}/events?prompt=story`)
  const first = await before.waitForEvents(1)
  before.destroy()
  const reader = readAnswer(`${url}/events?prompt=story&lastEventId=${encodeURIComponent(first[0].id!)}`)
  await until('the resumed reader follows live', () => reader.tokens() >= 2)

  redis.pause()
  // Redis stays stopped until every request below has its answer: an answer at all proves that
  // it did not wait for Redis. The teardown lets it go on whatever happens.
  t.teardown(() => redis.resume())
  const health = await fetch(url + '/health')
  t.equal(health.status, 503, '/health: 503 while Redis does not answer')
  t.match(await health.json(), { status: 'degraded', hub: { state: 'down', problem: /did not answer a PING/ } })

  const get = await fetch(`${url}/events?prompt=hello`)
  t.equal(get.status, 200, 'an EventSource request is not given a status that stops it for good')
  const events = await readEvents(get)
  t.match(events.at(-1), { event: 'error', data: /"code":"SSE_ERR_HUB_UNAVAILABLE"/ }, '...but told why')
  const post = await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }) })
  t.equal(post.status, 503)
  t.equal(post.headers.get('retry-after'), '2')
  t.match(await post.json(), { code: 'SSE_ERR_HUB_UNAVAILABLE' })
  const del = await fetch(`${url}/events/${first[0].id!.split(':')[0]}`, { method: 'DELETE' })
  t.equal(del.status, 503)
  t.match(await del.json(), { code: 'SSE_ERR_HUB_UNAVAILABLE' })
  const requestsDuringHang = fake.requests.length

  redis.resume()
  await until('/health is 200 again', async () => (await fetch(url + '/health')).status === 200)
  await reader.done
  t.equal(reader.text(), TOKENS.slice(1).join(''), 'the answer that ran through the hang arrived whole, after the first token')
  t.equal(requestsDuringHang, 1, 'nothing was asked upstream for the refused requests')
  const again = await readEvents(await fetch(`${url}/events?prompt=hello`))
  t.equal(again.at(-1)?.event, 'done', 'a new answer works once Redis answers again')
})

t.test('a 2 s Redis restart (AOF on) does not cost a running generation: the EventSource reconnects and gets all of it', { skip }, async (t) => {
  const { redis, fake, service: { url } } = await setup(t, { aof: true, delayMs: 100 })
  const reader = readAnswer(`${url}/events?prompt=story`)
  await until('a few tokens arrived', () => reader.tokens() >= 3)
  await redis.stop()
  await sleep(2000) // the outage itself, not a margin: Redis is away this long
  await redis.start()
  await reader.done
  t.equal(reader.text(), ANSWER, 'the whole answer, once, in order')
  t.equal(fake.requests.length, 1, 'from one upstream request: the generation was not lost and re-run')
  t.ok(reader.errors.every((code) => code === 'SSE_ERR_HUB_UNAVAILABLE'), `only told that Redis was away: ${reader.errors.join(', ')}`)
})
