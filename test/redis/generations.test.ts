// Resumable generations on Redis: two stores on one redis-server stand for two instances.
import t, { type Test } from 'tap'
import { createParser } from 'eventsource-parser'
import type { Redis } from 'ioredis'
import type { Generations } from '../../lib/generations/store.js'
import { createRedisGenerations } from '../../lib/redis/generations.js'
import { connectRedis } from '../../lib/redis/connect.js'
import { redisMissing, startRedis, type RedisServer } from '../helpers/redis.js'
import { controlled } from '../helpers/producer.js'
import { eventually } from '../helpers/eventually.js'

/** Reads a follow until it ends (or `until` holds); returns the parsed events. */
async function collect (frames: AsyncIterable<{ text: string }>, until?: (data: string[]) => boolean) {
  const data: string[] = []
  const ids: string[] = []
  const parser = createParser({ onEvent: (e) => { data.push(e.data); ids.push(e.id ?? '') } })
  for await (const frame of frames) {
    parser.feed(frame.text)
    if (until?.(data) === true) break
  }
  return { data, ids }
}

interface Two { a: Generations, b: Generations, server: RedisServer, redis: Redis }

async function two (t: Test, opts: { graceMs?: number, ttlMs?: number } = {}): Promise<Two> {
  const server = await startRedis(t)
  const ra = await connectRedis(server.url)
  const rb = await connectRedis(server.url)
  const a = createRedisGenerations({ redis: ra, ...opts })
  const b = createRedisGenerations({ redis: rb, ...opts })
  t.teardown(async () => { await Promise.all([a.close(), b.close()]); ra.disconnect(); rb.disconnect() })
  return { a, b, server, redis: ra }
}

t.test('a generation started on one instance is replayed and followed live from another', { skip: redisMissing() }, async (t) => {
  const { a, b } = await two(t)
  const p = controlled()
  const id = await a.start('me', p.produce)
  t.match(id, /^[A-Za-z0-9_-]{22}$/)
  p.push({ data: 'a' }, { data: 'b' }, { data: 'c' })
  const first = await collect(a.follow(id, 0, new AbortController().signal), (d) => d.length >= 2)
  t.same(first.data.slice(0, 2), ['a', 'b'])
  const found = await b.lookup(`${id}:2`, 'me')
  t.same(found, { status: 'resumable', id, after: 2 })
  const rest = collect(b.follow(id, 2, new AbortController().signal))
  p.push({ data: 'd' }, { event: 'done', data: { finish_reason: 'stop' } })
  p.end()
  const { data, ids } = await rest
  t.same(data, ['c', 'd', '{"finish_reason":"stop"}'], 'what it missed, then live, then done')
  t.same(ids, [`${id}:3`, `${id}:4`, `${id}:5`])
  t.same(await b.lookup(`${id}:5`, 'me'), { status: 'finished' })
  t.same(await a.lookup(`${id}:4`, 'me'), { status: 'resumable', id, after: 4 })
})

t.test('another owner, a guessed id or a seq beyond the end is unknown, and cannot stop it', { skip: redisMissing() }, async (t) => {
  const { a, b } = await two(t)
  const p = controlled()
  const id = await a.start('alice', p.produce)
  p.push({ data: 'secret' })
  p.end()
  await collect(a.follow(id, 0, new AbortController().signal))
  t.same(await b.lookup(`${id}:0`, 'mallory'), { status: 'unknown' })
  t.same(await b.lookup(`${'A'.repeat(22)}:0`, 'alice'), { status: 'unknown' })
  t.same(await b.lookup(`${id}:99`, 'alice'), { status: 'unknown' })
  t.same(await b.lookup('not-ours', 'alice'), { status: 'unknown' })
  t.equal(await b.stop(id, 'mallory'), false)
  t.equal(await b.stop('../../etc', 'alice'), false)
})

t.test('a stop received by another instance aborts the producer where it runs, at once', { skip: redisMissing() }, async (t) => {
  const { a, b, redis } = await two(t, { graceMs: 60_000 })
  // The runner's pub/sub connection is up once it counts as a subscriber of the stop channel.
  await eventually(async () => (await redis.pubsub('NUMSUB', 'sse:gen:stop') as [string, number])[1] >= 2, 'both stores subscribed to stops')
  const p = controlled()
  const id = await a.start('me', p.produce)
  const following = collect(a.follow(id, 0, new AbortController().signal))
  p.push({ data: 'a' })
  t.equal(await b.stop(id, 'me'), true)
  t.equal(await p.aborted, 'stopped')
  const { data } = await following
  t.same(data, ['a', '{"finish_reason":"stopped"}'], 'the follower sees the stopped done and the end')
  // The pub/sub path alone, without the `stop` field that the runner's tick would also see: a
  // message on the channel is enough, so the stop does not wait for the next tick.
  const q = controlled()
  const other = await a.start('me', q.produce)
  await redis.publish('sse:gen:stop', other)
  t.equal(await q.aborted, 'stopped', 'stopped by the message alone')
  t.equal(await redis.hget(`sse:gen:${other}`, 'stop'), '', 'the tick had nothing to see')
})

t.test('with no client attached on any instance, the producer is aborted after the grace period', { skip: redisMissing() }, async (t) => {
  // A grace period long enough that a follower's heartbeat (every 500 ms, each good for 2 s) is
  // never late enough to lose it, even on a machine with every core busy.
  const { a, b } = await two(t, { graceMs: 1500 })
  const p = controlled()
  const id = await a.start('me', p.produce)
  // Attached on B for longer than the grace period: the generation goes on.
  const ac = new AbortController()
  const onB = collect(b.follow(id, 0, ac.signal))
  for (let i = 0; i < 5; i++) { p.push({ data: String(i) }); await new Promise((resolve) => setTimeout(resolve, 500)) }
  let aborted = false
  void p.aborted.then(() => { aborted = true })
  t.equal(aborted, false, 'a client on the other instance counts')
  ac.abort()
  await onB
  const left = Date.now()
  t.match(await p.aborted, /grace period/)
  const after = Date.now() - left
  t.ok(after >= 1000, `aborted ${after} ms after the last client left, not before the grace period`)
})

t.test('a failing producer ends every follower with the same coded error event, also one that resumes after it', { skip: redisMissing() }, async (t) => {
  const { a, b } = await two(t)
  const id = await a.start('me', async function * () {
    yield { data: 'x' }
    throw Object.assign(new Error('upstream broke'), { code: 'SSE_ERR_UPSTREAM_FAILED', statusCode: 502 })
  })
  const error = '{"code":"SSE_ERR_UPSTREAM_FAILED","message":"upstream broke","statusCode":502}'
  t.same(await collect(b.follow(id, 0, new AbortController().signal)), { data: ['x', error], ids: [`${id}:1`, `${id}:2`] })
  t.same(await b.lookup(`${id}:1`, 'me'), { status: 'resumable', id, after: 1 }, 'cut before the error: resumable, not finished')
  t.same(await collect(a.follow(id, 1, new AbortController().signal)), { data: [error], ids: [`${id}:2`] })
  t.same(await b.lookup(`${id}:2`, 'me'), { status: 'finished' }, 'after the error: nothing more')
  const early = await a.start('me', async function * () { throw Object.assign(new Error('no'), { code: 'SSE_ERR_UPSTREAM_RATE_LIMITED', statusCode: 429 }) })
  await t.rejects(collect(b.follow(early, 0, new AbortController().signal)), { code: 'SSE_ERR_UPSTREAM_RATE_LIMITED' }, 'nothing sent yet: thrown, for an HTTP status')
})

t.test('Redis lost mid-follow: the follower gets SSE_ERR_HUB_UNAVAILABLE, nothing crashes, and it works again after', { skip: redisMissing() }, async (t) => {
  const { a, b, server } = await two(t)
  const p = controlled()
  const id = await a.start('me', p.produce)
  p.push({ data: 'a' })
  const frames = b.follow(id, 0, new AbortController().signal)
  const reading = collect(frames)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const failed = t.rejects(reading, { code: 'SSE_ERR_HUB_UNAVAILABLE' })
  await server.kill()
  await failed
  await t.rejects(b.start('me', controlled().produce), { code: 'SSE_ERR_HUB_UNAVAILABLE' }, 'refused at once, not queued')
  await server.start()
  const connected = async (g: Generations): Promise<string> => {
    for (let i = 0; i < 200; i++) {
      try { return await g.start('me', async function * () { yield { data: 'again' } }) } catch { await new Promise((resolve) => setTimeout(resolve, 25)) }
    }
    throw new Error('Redis did not come back')
  }
  const again = await connected(b)
  // A reconnects on its own schedule: follow on it once it answers too.
  await connected(a)
  const { data } = await collect(a.follow(again, 0, new AbortController().signal))
  t.same(data, ['again'], 'started on B after the restart, followed on A')
})

t.test('what a producer yields within one turn is one write, in order; a write Redis applied but answered too late is retried without a loss or a repeat', { skip: redisMissing() }, async (t) => {
  const server = await startRedis(t)
  // A short command timeout: a hung Redis fails the write in flight, which the store retries.
  const ra = await connectRedis(server.url, { commandTimeoutMs: 150 })
  const rb = await connectRedis(server.url)
  const a = createRedisGenerations({ redis: ra, outageMs: 20_000 })
  const b = createRedisGenerations({ redis: rb })
  t.teardown(async () => { server.resume(); await Promise.all([a.close(), b.close()]); ra.disconnect(); rb.disconnect() })
  const p = controlled()
  const id = await a.start('me', p.produce)
  const log = `sse:gen:${id}:log`
  const monitor = await connectRedis(server.url)
  t.teardown(() => monitor.disconnect())
  p.push(...Array.from({ length: 20 }, (_, i) => ({ data: `a${i}` })))
  await eventually(async () => await rb.xlen(log) === 20)
  const entries = await rb.xrange(log, '-', '+')
  t.same(entries.map(([entryId]) => entryId), Array.from({ length: 20 }, (_, i) => `${i + 1}-0`), 'one entry per frame, seq as the entry id')
  const commands = Number((await monitor.info('commandstats')).match(/cmdstat_evalsha:calls=(\d+)/)?.[1])
  t.ok(commands <= 3, `20 frames pushed together took ${commands} script calls in all (start included), not 20`)

  // Hung mid-write: the batch reaches Redis, which applies it only when it wakes, after the
  // client has given up on it and queued the same batch again.
  server.pause()
  p.push(...Array.from({ length: 20 }, (_, i) => ({ data: `b${i}` })))
  await new Promise((resolve) => setTimeout(resolve, 600))
  server.resume()
  p.push({ data: 'c' })
  p.end()
  const { data, ids } = await collect(b.follow(id, 0, new AbortController().signal))
  const want = [...Array.from({ length: 20 }, (_, i) => `a${i}`), ...Array.from({ length: 20 }, (_, i) => `b${i}`), 'c']
  t.same(data, want, 'every frame once, in order')
  t.same(ids, want.map((_, i) => `${id}:${i + 1}`))
  t.same(await b.lookup(`${id}:41`, 'me'), { status: 'finished' })
})

t.test('a client that resumes on another instance right after a batched write gets exactly the rest', { skip: redisMissing() }, async (t) => {
  const { a, b } = await two(t)
  const p = controlled()
  const id = await a.start('me', p.produce)
  p.push(...Array.from({ length: 50 }, (_, i) => ({ data: `t${i}` })))
  // Cut as soon as the first frames arrive: whatever a follower saw, Redis has.
  const seen = await collect(a.follow(id, 0, new AbortController().signal), (d) => d.length >= 1)
  const last = seen.ids.at(-1)!
  const after = Number(last.split(':')[1])
  t.same(await b.lookup(last, 'me'), { status: 'resumable', id, after })
  const rest = collect(b.follow(id, after, new AbortController().signal))
  p.end()
  t.same([...seen.data, ...(await rest).data], Array.from({ length: 50 }, (_, i) => `t${i}`))
})

t.test('followers on the instance running a generation get its frames from the runner, in order and each once, without a blocking read', { skip: redisMissing() }, async (t) => {
  const { a, redis } = await two(t)
  const p = controlled()
  const id = await a.start('me', p.produce)
  const all = Array.from({ length: 300 }, (_, i) => `t${i}`)
  // Pushed over many turns while followers attach at different points, mid-write included.
  const followers: Array<Promise<{ data: string[] }>> = []
  for (let i = 0; i < all.length; i += 30) {
    p.push(...all.slice(i, i + 30).map((data) => ({ data })))
    followers.push(collect(a.follow(id, 0, new AbortController().signal)))
    await new Promise((resolve) => setImmediate(resolve))
  }
  p.end()
  for (const f of followers) t.same((await f).data, all)
  const stats = await redis.info('commandstats')
  t.notMatch(stats, /cmdstat_xread:/, 'no XREAD was needed')
})
