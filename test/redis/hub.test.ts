// What only the Redis hub has: instances sharing topics, Redis going away and coming back, topic
// expiry, the lock for single-producer feeds, and the service's REDIS_URL / MAX_STREAMS / health.
// The behaviours both hubs share are in hub-contract.test.ts.
import t from 'tap'
import type { Redis } from 'ioredis'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { createRedisHub } from '../../lib/redis/hub.js'
import { connectRedis } from '../../lib/redis/connect.js'
import { createRedisLock } from '../../lib/redis/lock.js'
import { buildApp } from '../../service/app.js'
import { loadConfig } from '../../service/config.js'
import type { SseFrame } from '../../lib/sse/encoder.js'
import { startService } from '../fixtures/service.js'
import { openStream } from '../helpers/http.js'
import { redisMissing, startRedis } from '../helpers/redis.js'
import { eventually } from '../helpers/eventually.js'

const skip = redisMissing()
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function read (sub: AsyncIterator<SseFrame>, count: number): Promise<EventSourceMessage[]> {
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (e) => events.push(e) })
  while (events.length < count) {
    const step = await sub.next()
    if (step.done === true) break
    parser.feed(step.value.text)
  }
  return events
}

async function connected (t: any, url: string): Promise<Redis> {
  const redis = await connectRedis(url)
  t.teardown(() => redis.disconnect())
  return redis
}

t.test('two hubs on one prefix are one hub: shared ids, and a publish on either reaches subscribers of both', { skip }, async (t) => {
  const server = await startRedis(t)
  const a = createRedisHub({ redis: await connected(t, server.url) })
  const b = createRedisHub({ redis: await connected(t, server.url) })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const onA = a.subscribe({ topics: 'news' })
  const onB = b.subscribe({ topics: 'news' })
  const id1 = await a.publish('news', { data: 'from a' })
  await sleep(20) // the subscriptions are joined by now; the next publish comes from the other side
  const id2 = await b.publish('news', { data: 'from b' })
  t.equal(id1.split(':')[0], id2.split(':')[0], 'one epoch for the dataset')
  for (const sub of [onA, onB]) {
    const events = await read(sub, 2)
    t.same(events.map((e) => [e.id, e.data]), [[id1, 'from a'], [id2, 'from b']])
  }
  const resumed = b.subscribe({ topics: 'news', lastEventId: id1 })
  t.same((await read(resumed, 1)).map((e) => e.data), ['from b'], 'an id handed out by A resumes on B')
})

t.test('Redis lost: subscribers get retry and SSE_ERR_HUB_UNAVAILABLE, publishes fail at once, and it all works once Redis is back', { skip }, async (t) => {
  const server = await startRedis(t)
  const redis = await connected(t, server.url)
  const hub = createRedisHub({ redis, retryMs: 500 })
  t.teardown(() => hub.close())
  const sub = hub.subscribe({ topics: 't' })
  await hub.publish('t', { data: 'one' })
  t.same((await read(sub, 1)).map((e) => e.data), ['one'])
  await server.kill()
  const lead = await sub.next()
  t.match(lead.value?.text, /^retry: \d+\n\n$/, 'first a retry, jittered around retryMs')
  const retry = Number(/retry: (\d+)/.exec(lead.value?.text ?? '')?.[1])
  t.ok(retry >= 375 && retry <= 625)
  await t.rejects(sub.next(), { code: 'SSE_ERR_HUB_UNAVAILABLE' })
  t.same(await sub.next(), { done: true, value: undefined })
  t.equal(hub.stats().state, 'down')
  t.equal(hub.stats().subscribers, 0)
  // While down: nothing is queued anywhere, whatever is published.
  const started = Date.now()
  const results = await Promise.allSettled(Array.from({ length: 1000 }, async (_, i) => await hub.publish('t', { data: String(i) })))
  t.ok(results.every((r) => r.status === 'rejected' && (r.reason as any).code === 'SSE_ERR_HUB_UNAVAILABLE'), '1000 publishes refused')
  t.ok(Date.now() - started < 10_000, 'at once: refused, not waiting for Redis to come back')
  t.equal(hub.stats().queuedBytes, 0)
  const refused = hub.subscribe({ topics: 't' })
  t.match((await refused.next()).value?.text, /^retry: /)
  await t.rejects(refused.next(), { code: 'SSE_ERR_HUB_UNAVAILABLE' })
  await server.start()
  await eventually(() => hub.stats().state === 'up', 'the hub reconnected')
  t.equal(hub.stats().state, 'up', 'reconnected by itself')
  const fresh = hub.subscribe({ topics: 't', lastEventId: 'oldepoch:1' })
  await sleep(20)
  const id = await hub.publish('t', { data: 'back' })
  const events = await read(fresh, 2)
  t.same(events.map((e) => e.event ?? e.data), ['reset', 'back'])
  t.equal(events[1].id, id)
})

t.test('a topic left alone past ttlMs expires, and a cursor into it is reset as expired', { skip }, async (t) => {
  const server = await startRedis(t)
  const redis = await connected(t, server.url)
  // Long enough that a busy machine still finds the stream there right after the publish.
  const ttlMs = 1500
  const hub = createRedisHub({ redis, ttlMs })
  t.teardown(() => hub.close())
  const id = await hub.publish('brief', { data: 'gone soon' })
  const pttl = await redis.pttl('sse:hub:t:brief')
  t.ok(pttl > 0 && pttl <= ttlMs, `the topic stream carries an expiry of at most ttlMs (${pttl} ms)`)
  await hub.publish('other', { data: 'keeps the counter going' })
  await eventually(async () => await redis.exists('sse:hub:t:brief') === 0, 'the topic stream expired')
  t.equal(await redis.exists('sse:hub:t:brief'), 0, 'the stream expired')
  const sub = hub.subscribe({ topics: 'brief', lastEventId: id.replace(/:\d+$/, ':0') })
  await sleep(20)
  await hub.publish('brief', { data: 'new life' })
  const events = await read(sub, 2)
  t.same(JSON.parse(events[0].data), { reason: 'expired' })
  t.equal(events[1].data, 'new life')
  const exact = hub.subscribe({ topics: 'brief', lastEventId: id })
  await sleep(20)
  await hub.publish('brief', { data: 'after' })
  t.same((await read(exact, 2)).map((e) => e.data), ['new life', 'after'], 'the last id it held resumes exactly')
})

t.test('the lock runs a task on one holder at a time and passes on when the holder stops renewing', { skip }, async (t) => {
  const server = await startRedis(t)
  const connections = [await connected(t, server.url), await connected(t, server.url)]
  const [one, two] = connections.map((redis) => createRedisLock({ redis, key: 'lock', ttlMs: 3000 }))
  const ac = new AbortController()
  t.teardown(() => ac.abort())
  let running = 0
  let most = 0
  const ran: string[] = []
  const task = (name: string) => async (signal: AbortSignal): Promise<void> => {
    running++
    most = Math.max(most, running)
    ran.push(name)
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
    running--
  }
  const loops = [one.exclusive(ac.signal, task('one')), two.exclusive(ac.signal, task('two'))]
  await eventually(() => running > 0, 'a holder runs the task')
  // Longer than the ttl: the holder keeps it by renewing every second (a renewal would have to be
  // 2 s late to lose it, which even a machine with every core busy does not do).
  await sleep(3500)
  t.equal(ran.length, 1, 'one holder, kept past the ttl')
  t.equal([one.held, two.held].filter(Boolean).length, 1)
  // The holder's connection dies without a release: its lock expires and the other takes over.
  connections[one.held ? 0 : 1].disconnect()
  await eventually(() => ran.length >= 2, 'the other instance took over')
  t.equal(ran.length, 2, 'taken over')
  t.equal(most, 1, 'never two at once')
  ac.abort()
  await Promise.all(loops)
})

t.test('REDIS_URL unreachable stops the service from starting, naming REDIS_URL', async (t) => {
  const config = loadConfig({ LOG_LEVEL: 'silent', REDIS_URL: 'redis://:s3cret@127.0.0.1:1' })
  const err = await buildApp(config).then(() => undefined, (e: any) => e)
  t.equal(err?.code, 'SSE_ERR_HUB_UNAVAILABLE')
  t.match(err?.message, /REDIS_URL=redis:\/\/:\*\*\*@127\.0\.0\.1:1/)
  t.notMatch(err?.message, /s3cret/, 'the password is not printed')
  t.throws(() => loadConfig({ REDIS_URL: 'http://localhost:6379' }), { code: 'SSE_ERR_INVALID_CONFIG', message: /REDIS_URL/ })
  t.throws(() => loadConfig({ MAX_STREAMS: '-1' }), { code: 'SSE_ERR_INVALID_CONFIG', message: /MAX_STREAMS/ })
})

t.test('MAX_STREAMS caps open streams with 503 and retry-after; /health counts them', async (t) => {
  const { url } = await startService(t, { MAX_STREAMS: '2' })
  const open = [await openStream(url + '/ticker'), await openStream(url + '/ticker')]
  t.teardown(() => { for (const s of open) s.destroy() })
  await Promise.all(open.map(async (s) => await s.waitForEvents(1)))
  const refused = await fetch(url + '/ticker')
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '5')
  t.match(await refused.json(), { code: 'SSE_ERR_TOO_MANY_STREAMS' })
  const health = await fetch(url + '/health')
  t.equal(health.status, 200)
  t.match(await health.json(), { status: 'ok', hub: { backplane: 'memory', state: 'up' }, streams: { open: 2, max: 2 } })
})
