// One table of hub behaviours, run against both implementations of `Hub`: the in-memory hub and
// the Redis Streams hub on a real redis-server. What a route may rely on holds for both.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import sse from '../../lib/index.js'
import { createHub, type Hub, type HubOptions } from '../../lib/hub/hub.js'
import { createRedisHub } from '../../lib/redis/hub.js'
import { hubSource } from '../../lib/hub/source.js'
import { connectRedis } from '../../lib/redis/connect.js'
import { listen, openStream } from '../helpers/http.js'
import { redisMissing, startRedis } from '../helpers/redis.js'
import { read } from '../helpers/frames.js'
import { eventually, PATIENCE_MS } from '../helpers/eventually.js'

type Make = (opts?: HubOptions) => Hub

/** Waits (bounded) until `ok()`; fails the test if it never holds. */
async function until (t: Test, ok: () => boolean, what: string): Promise<void> {
  await eventually(ok, what, PATIENCE_MS, 2).catch(() => {})
  t.ok(ok(), what)
}

/** Publishes and waits until the hub has fanned it out to its subscribers. */
async function publishAndFlush (t: Test, hub: Hub, topic: string, data: string): Promise<void> {
  const before = hub.stats().flushes
  await hub.publish(topic, { data })
  await until(t, () => hub.stats().flushes > before, `${data} fanned out`)
}

const seqOf = (id: string | undefined): number => Number(id?.split(':')[1])

const cases: Array<[string, (t: Test, make: Make) => Promise<void>]> = [
  ['gives each message an id <epoch>:<seq>, monotonic across topics', async (t, make) => {
    const hub = make()
    const a = await hub.publish('a', { data: 1 })
    const b = await hub.publish('b', { data: 2 })
    t.match(a, /^[0-9a-z]+:\d+$/)
    t.equal(b.split(':')[0], a.split(':')[0], 'one epoch')
    t.equal(seqOf(b), seqOf(a) + 1)
    t.equal(hub.stats().lastId, b)
    t.equal(hub.stats().state, 'up')
  }],

  ['a new subscriber gets only what is published after it subscribed, gathered into one frame', async (t, make) => {
    const hub = make({ lingerMs: 30 })
    await hub.publish('news', { data: 'before' })
    const sub = hub.subscribe({ topics: 'news' })
    await hub.publish('news', { event: 'x', data: 'one' })
    await hub.publish('news', { data: { two: 2 } })
    await hub.publish('other', { data: 'not mine' })
    const { events, frames } = await read(sub, (e) => e.length >= 2)
    t.same(events.map((e) => [e.event, e.data]), [['x', 'one'], [undefined, '{"two":2}']])
    t.equal(frames.length, 1, 'both messages went out in one shared frame')
  }],

  ['replays exactly what came after a known id, in order, then follows live', async (t, make) => {
    const hub = make()
    const ids: string[] = []
    for (let i = 0; i < 10; i++) ids.push(await hub.publish('news', { data: String(i) }))
    const sub = hub.subscribe({ topics: 'news', lastEventId: ids[6] })
    const live = await hub.publish('news', { data: 'live' })
    const { events } = await read(sub, (e) => e.length >= 4)
    t.same(events.map((e) => e.data), ['7', '8', '9', 'live'])
    t.same(events.map((e) => e.id), [...ids.slice(7), live])
  }],

  ['resumes a subscription to several topics with one id, merged in publish order', async (t, make) => {
    const hub = make()
    const first = await hub.publish('a', { data: 'a0' })
    await hub.publish('b', { data: 'b1' })
    await hub.publish('c', { data: 'c2' })
    await hub.publish('a', { data: 'a3' })
    const sub = hub.subscribe({ topics: ['b', 'a'], lastEventId: first })
    await hub.publish('b', { data: 'b4' })
    await hub.publish('c', { data: 'c5' })
    await hub.publish('a', { data: 'a6' })
    const { events } = await read(sub, (e) => e.length >= 4)
    t.same(events.map((e) => e.data), ['b1', 'a3', 'b4', 'a6'])
  }],

  ['an id from another epoch starts with a reset, then the whole history, then live', async (t, make) => {
    const hub = make({ historySize: 3 })
    for (let i = 0; i < 5; i++) await hub.publish('news', { data: String(i) })
    const sub = hub.subscribe({ topics: 'news', lastEventId: 'zzzzzz:3' })
    await hub.publish('news', { data: 'live' })
    const { events } = await read(sub, (e) => e.length >= 5)
    t.equal(events[0].event, 'reset')
    t.same(JSON.parse(events[0].data), { reason: 'epoch' })
    t.equal(events[0].id, undefined, 'a reset followed by history carries no id')
    t.same(events.slice(1).map((e) => e.data), ['2', '3', '4', 'live'])
  }],

  ['an id older than the history, from the future, or malformed is reset with its reason', async (t, make) => {
    const hub = make({ historySize: 3 })
    const ids: string[] = []
    for (let i = 0; i < 6; i++) ids.push(await hub.publish('news', { data: String(i) }))
    const epoch = hub.stats().epoch
    const cases: Array<[string, string]> = [[ids[1], 'expired'], [`${epoch}:99`, 'invalid'], ['garbage', 'invalid']]
    for (const [lastEventId, reason] of cases) {
      const sub = hub.subscribe({ topics: 'news', lastEventId })
      const { events } = await read(sub, (e) => e.length >= 4)
      t.same(JSON.parse(events[0].data), { reason }, lastEventId)
      t.same(events.slice(1).map((e) => e.data), ['3', '4', '5'])
      await sub.return?.()
    }
    // The last id still in reach is resumed exactly: the one just before the oldest kept.
    const exact = hub.subscribe({ topics: 'news', lastEventId: ids[2] })
    const { events } = await read(exact, (e) => e.length >= 3)
    t.same(events.map((e) => e.data), ['3', '4', '5'])
  }],

  ['resetTo live skips the history and puts the current position in the reset frame', async (t, make) => {
    const hub = make()
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push(await hub.publish('q', { data: String(i) }))
    const sub = hub.subscribe({ topics: 'q', lastEventId: 'old:1', resetTo: 'live' })
    const live = await hub.publish('q', { data: 'live' })
    const { events } = await read(sub, (e) => e.length >= 2)
    t.same(events.map((e) => [e.event, e.id]), [['reset', ids[2]], [undefined, live]])
  }],

  ['last() gives the last message of a topic as published, with its id', async (t, make) => {
    const hub = make()
    t.equal(await hub.last('q'), undefined, 'nothing before the first publish')
    await hub.publish('q', { event: 'quote', data: { price: 1 } })
    const id = await hub.publish('q', { event: 'quote', data: { price: 2 } })
    await hub.publish('other', { data: 'x' })
    t.same(await hub.last('q'), { id, message: { event: 'quote', data: { price: 2 } } })
  }],

  ['encodes each message once, whatever the number of subscribers', async (t, make) => {
    let calls = 0
    const hub = make({ serialize: (d) => { calls++; return JSON.stringify(d) } })
    const subs = Array.from({ length: 50 }, () => hub.subscribe({ topics: 't' }))
    for (let i = 0; i < 20; i++) await hub.publish('t', { data: { i } })
    const results = await Promise.all(subs.map((s) => read(s, (e) => e.length >= 20)))
    for (const r of results) t.same(r.events.map((e) => JSON.parse(e.data).i), Array.from({ length: 20 }, (_, i) => i))
    t.equal(calls, 20)
    t.equal(hub.stats().published, 20)
  }],

  ['a subscriber that overflows with the disconnect policy is ended, counted and told', async (t, make) => {
    const hub = make({ maxQueue: 5, lingerMs: 0 })
    let told = 0
    const slow = hub.subscribe({ topics: 't', onOverflow: () => { told++ } })
    const fast = hub.subscribe({ topics: 't' })
    const fastRead = read(fast, (e) => e.length >= 8)
    for (let i = 0; i < 8; i++) await publishAndFlush(t, hub, 't', String(i))
    t.equal(told, 1)
    t.equal(hub.stats().overflows, 1)
    t.equal(hub.stats().queuedBytes, 0, 'its queue was released')
    t.same((await slow.next()).done, true)
    t.equal((await fastRead).events.length, 8, 'the other kept receiving')
    t.equal(hub.stats().subscribers, 1)
  }],

  ['the drop policy drops the oldest and reports the count in a gap event', async (t, make) => {
    const hub = make({ maxQueue: 4, lingerMs: 0 })
    const sub = hub.subscribe({ topics: 'logs', overflow: 'drop' })
    await hub.publish('logs', { data: 'first' })
    const head = await sub.next()
    t.match(head.value?.text, /data: first/)
    // Now the reader is busy: nothing is parked, so everything below queues.
    for (let i = 0; i < 10; i++) await publishAndFlush(t, hub, 'logs', String(i))
    const { events } = await read(sub, (e) => e.some((x) => x.data === '9'))
    t.equal(events[0].event, 'gap')
    const { count } = JSON.parse(events[0].data)
    t.same(events.slice(1).map((e) => e.data), Array.from({ length: 10 - count }, (_, i) => String(i + count)))
    t.equal(hub.stats().dropped, count)
    t.ok(count > 0 && count < 10)
    t.equal(hub.stats().overflows, 0, 'still connected')
  }],

  ['the conflate policy keeps the newest message of each topic, in order', async (t, make) => {
    const hub = make({ maxQueue: 4, lingerMs: 0 })
    const sub = hub.subscribe({ topics: ['A', 'B'], overflow: 'conflate' })
    await hub.publish('A', { data: 'A0' })
    await sub.next()
    for (let i = 1; i <= 9; i++) await publishAndFlush(t, hub, i % 3 === 0 ? 'B' : 'A', `${i % 3 === 0 ? 'B' : 'A'}${i}`)
    const { events } = await read(sub, (e) => e.some((x) => x.data === 'A8' || x.data === 'B9'))
    const last = events.map((e) => e.data)
    t.ok(last.includes('B9') && last.includes('A8'), `newest of each kept: ${last.join(',')}`)
    t.ok(last.length < 9)
    t.ok(hub.stats().conflated > 0)
    t.same(last.map((d) => Number(d.slice(1))), [...last.map((d) => Number(d.slice(1)))].sort((a, b) => a - b), 'in order')
  }],

  ['an aborted signal ends the subscription and frees the topic', async (t, make) => {
    const hub = make()
    const ac = new AbortController()
    const sub = hub.subscribe({ topics: 'gone', signal: ac.signal })
    const pending = sub.next()
    t.equal(hub.stats().topics, 1)
    ac.abort()
    t.same(await pending, { done: true, value: undefined })
    t.equal(hub.stats().subscribers, 0)
    t.equal(hub.stats().topics, 0)
  }],

  ['rejects a message the encoder refuses, and everything once closed', async (t, make) => {
    const hub = make()
    await t.rejects(hub.publish('t', { event: 'a\nb', data: 1 }), { code: 'SSE_ERR_INVALID_FIELD' })
    await t.rejects(hub.publish('', { data: 1 }), { code: 'SSE_ERR_INVALID_OPTION' })
    t.throws(() => hub.subscribe({ topics: [] }), { code: 'SSE_ERR_INVALID_OPTION' })
    const sub = hub.subscribe({ topics: 't' })
    await hub.close()
    t.same(await sub.next(), { done: true, value: undefined })
    await t.rejects(hub.publish('t', { data: 1 }), { code: 'SSE_ERR_HUB_UNAVAILABLE' })
    t.equal(hub.stats().state, 'closed')
    t.throws(() => make({ maxQueue: 0 }), { code: 'SSE_ERR_INVALID_OPTION' })
  }],

  ['clients resuming while publishes race the replay get every message once, in order', async (t, make) => {
    const hub = make({ historySize: 5000 })
    const app = Fastify({ forceCloseConnections: true })
    await app.register(sse)
    app.get('/race', (request, reply) => reply.sse(hubSource(hub, { topics: 'race' })))
    const url = await listen(app)
    t.teardown(() => app.close())
    const total = 2000
    const ids: string[] = []
    const resumed: Array<Promise<{ from: number, seqs: number[] }>> = []
    for (let i = 0; i < total; i++) {
      ids.push(await hub.publish('race', { data: String(i) }))
      if (i % 7 === 0) await new Promise(setImmediate)
      // Every 200 messages a client reconnects from an id a little in the past, mid-publish.
      if (i % 200 === 150) {
        const from = i - 100
        resumed.push(openStream(url + '/race', { 'last-event-id': ids[from] }).then(async (s) => {
          while (ids.length < total || s.events.at(-1)?.id !== ids[total - 1]) await s.waitForEvents(s.events.length + 1)
          s.destroy()
          return { from, seqs: s.events.map((e) => seqOf(e.id)) }
        }))
      }
    }
    const results = await Promise.all(resumed)
    t.equal(results.length, 10)
    for (const { from, seqs } of results) {
      const expected = ids.slice(from + 1).map(seqOf)
      t.same(seqs, expected, `resumed after message #${from}: ${seqs.length} messages, no gap, no duplicate`)
    }
  }]
]

const implementations: Array<{ name: string, skip: string | false, setup: (t: Test) => Promise<Make> }> = [
  { name: 'in-memory hub', skip: false, setup: async () => (opts) => createHub(opts) },
  {
    name: 'Redis hub',
    skip: redisMissing(),
    setup: async (t) => {
      const server = await startRedis(t)
      const redis = await connectRedis(server.url)
      t.teardown(() => redis.disconnect())
      let n = 0
      return (opts) => createRedisHub({ redis, prefix: `contract${n++}:`, ...opts })
    }
  }
]

for (const impl of implementations) {
  t.test(impl.name, { skip: impl.skip }, async (t) => {
    const make = await impl.setup(t)
    for (const [name, run] of cases) {
      await t.test(name, async (t) => {
        const made: Hub[] = []
        t.teardown(() => Promise.all(made.map((hub) => hub.close())))
        await run(t, (opts) => { const hub = make(opts); made.push(hub); return hub })
      })
    }
  })
}
