import t from 'tap'
import Fastify from 'fastify'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import sse from '../lib/index.js'
import { createHub, type Hub } from '../lib/hub.js'
import { hubSource } from '../lib/hub-source.js'
import type { SseFrame } from '../lib/encoder.js'
import { listen, openStream } from './helpers/http.js'

/** Reads frames from a subscription until `enough(events)`; returns the events and the frames' texts. */
async function read (sub: AsyncIterator<SseFrame>, enough: (events: EventSourceMessage[]) => boolean) {
  const events: EventSourceMessage[] = []
  const frames: string[] = []
  const parser = createParser({ onEvent: (e) => events.push(e) })
  while (!enough(events)) {
    const step = await sub.next()
    if (step.done === true) break
    frames.push(step.value.text)
    parser.feed(step.value.text)
  }
  return { events, frames }
}

const seqOf = (id: string | undefined): number => Number(id?.split(':')[1])

t.test('gives each message an id <epoch>:<seq>, monotonic across topics, and one epoch per hub', async (t) => {
  const hub = createHub()
  const other = createHub()
  t.teardown(() => Promise.all([hub.close(), other.close()]))
  const a = await hub.publish('a', { data: 1 })
  const b = await hub.publish('b', { data: 2 })
  const [epoch, one] = a.split(':')
  t.match(epoch, /^[0-9a-z]+$/)
  t.equal(one, '1')
  t.equal(b, `${epoch}:2`)
  t.not(other.stats().epoch, epoch)
  t.equal(hub.stats().lastId, b)
})

t.test('a new subscriber gets only what is published after it subscribed, gathered into one frame', async (t) => {
  const hub = createHub()
  t.teardown(() => hub.close())
  await hub.publish('news', { data: 'before' })
  const sub = hub.subscribe({ topics: 'news' })
  await hub.publish('news', { event: 'x', data: 'one' })
  await hub.publish('news', { data: { two: 2 } })
  await hub.publish('other', { data: 'not mine' })
  const { events, frames } = await read(sub, (e) => e.length >= 2)
  t.same(events.map((e) => [e.event, e.data]), [['x', 'one'], [undefined, '{"two":2}']])
  t.equal(frames.length, 1, 'both messages went out in one shared frame')
  t.equal(hub.stats().flushes, 1)
})

t.test('replays exactly what came after a known id, in order, then follows live', async (t) => {
  const hub = createHub()
  t.teardown(() => hub.close())
  const ids: string[] = []
  for (let i = 0; i < 10; i++) ids.push(await hub.publish('news', { data: String(i) }))
  const sub = hub.subscribe({ topics: 'news', lastEventId: ids[6] })
  await hub.publish('news', { data: 'live' })
  const { events } = await read(sub, (e) => e.length >= 4)
  t.same(events.map((e) => e.data), ['7', '8', '9', 'live'])
  t.same(events.map((e) => e.id), [...ids.slice(7), hub.stats().lastId])
})

t.test('resumes a subscription to several topics with one id, merged in publish order', async (t) => {
  const hub = createHub()
  t.teardown(() => hub.close())
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
})

t.test('an id from another epoch starts with a reset, then the whole history, then live', async (t) => {
  const hub = createHub({ historySize: 3 })
  t.teardown(() => hub.close())
  for (let i = 0; i < 5; i++) await hub.publish('news', { data: String(i) })
  const sub = hub.subscribe({ topics: 'news', lastEventId: 'zzzzzz:3' })
  await hub.publish('news', { data: 'live' })
  const { events } = await read(sub, (e) => e.length >= 5)
  t.equal(events[0].event, 'reset')
  t.same(JSON.parse(events[0].data), { reason: 'epoch' })
  t.equal(events[0].id, undefined, 'a reset followed by history carries no id')
  t.same(events.slice(1).map((e) => e.data), ['2', '3', '4', 'live'])
})

t.test('an id older than the history, from the future, or malformed is reset with its reason', async (t) => {
  const hub = createHub({ historySize: 3 })
  t.teardown(() => hub.close())
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
})

t.test('resetTo live skips the history and puts the current position in the reset frame', async (t) => {
  const hub = createHub()
  t.teardown(() => hub.close())
  for (let i = 0; i < 3; i++) await hub.publish('q', { data: String(i) })
  const sub = hub.subscribe({ topics: 'q', lastEventId: 'old:1', resetTo: 'live' })
  await hub.publish('q', { data: 'live' })
  const { events } = await read(sub, (e) => e.length >= 2)
  t.same(events.map((e) => [e.event, e.id]), [['reset', `${hub.stats().epoch}:3`], [undefined, `${hub.stats().epoch}:4`]])
})

t.test('encodes each message once, whatever the number of subscribers', async (t) => {
  let calls = 0
  const hub = createHub({ serialize: (d) => { calls++; return JSON.stringify(d) } })
  t.teardown(() => hub.close())
  const subs = Array.from({ length: 50 }, () => hub.subscribe({ topics: 't' }))
  for (let i = 0; i < 20; i++) await hub.publish('t', { data: { i } })
  const results = await Promise.all(subs.map((s) => read(s, (e) => e.length >= 20)))
  for (const r of results) t.equal(r.events.length, 20)
  t.equal(calls, 20)
  t.equal(hub.stats().encodes, 20)
  t.equal(results[0].frames[0], results[49].frames[0], 'the same frame text')
})

t.test('a subscriber that overflows with the disconnect policy is ended, counted and told', async (t) => {
  const hub = createHub({ maxQueue: 5 })
  t.teardown(() => hub.close())
  let told = 0
  const slow = hub.subscribe({ topics: 't', onOverflow: () => { told++ } })
  const fast = hub.subscribe({ topics: 't' })
  const fastRead = read(fast, (e) => e.length >= 8)
  // The slow one is never read, so after the first frame is parked for it, the rest queue up.
  for (let i = 0; i < 8; i++) { await hub.publish('t', { data: String(i) }); await new Promise((resolve) => setTimeout(resolve, 2)) }
  t.equal(told, 1)
  t.equal(hub.stats().overflows, 1)
  t.equal(hub.stats().queuedBytes, 0, 'its queue was released')
  t.same((await slow.next()).done, true)
  t.equal((await fastRead).events.length, 8, 'the other kept receiving')
  t.equal(hub.stats().subscribers, 1)
})

t.test('the drop policy drops the oldest and reports the count in a gap event', async (t) => {
  const hub = createHub({ maxQueue: 4, lingerMs: 0 })
  t.teardown(() => hub.close())
  const sub = hub.subscribe({ topics: 'logs', overflow: 'drop' })
  await hub.publish('logs', { data: 'first' })
  const head = await sub.next()
  t.match(head.value?.text, /data: first/)
  // Now the reader is busy: nothing is parked, so everything below queues.
  for (let i = 0; i < 10; i++) { await hub.publish('logs', { data: String(i) }); await new Promise(setImmediate) }
  const { events } = await read(sub, (e) => e.some((x) => x.data === '9'))
  t.equal(events[0].event, 'gap')
  const { count } = JSON.parse(events[0].data)
  t.same(events.slice(1).map((e) => e.data), Array.from({ length: 10 - count }, (_, i) => String(i + count)))
  t.equal(hub.stats().dropped, count)
  t.ok(count > 0 && count < 10)
  t.equal(hub.stats().overflows, 0, 'still connected')
})

t.test('the conflate policy keeps the newest message of each topic', async (t) => {
  const hub = createHub({ maxQueue: 4, lingerMs: 0 })
  t.teardown(() => hub.close())
  const sub = hub.subscribe({ topics: ['A', 'B'], overflow: 'conflate' })
  await hub.publish('A', { data: 'A0' })
  await sub.next()
  for (let i = 1; i <= 9; i++) { await hub.publish(i % 3 === 0 ? 'B' : 'A', { data: `${i % 3 === 0 ? 'B' : 'A'}${i}` }); await new Promise(setImmediate) }
  const { events } = await read(sub, (e) => e.some((x) => x.data === 'A8' || x.data === 'B9'))
  const last = events.map((e) => e.data)
  t.ok(last.includes('B9') && last.includes('A8'), `newest of each kept: ${last.join(',')}`)
  t.ok(last.length < 9)
  t.ok(hub.stats().conflated > 0)
  t.same(last.map((d) => Number(d.slice(1))), [...last.map((d) => Number(d.slice(1)))].sort((a, b) => a - b), 'in order')
})

t.test('an aborted signal ends the subscription and frees the topic', async (t) => {
  const hub = createHub({ historySize: 0 })
  t.teardown(() => hub.close())
  const ac = new AbortController()
  const sub = hub.subscribe({ topics: 'gone', signal: ac.signal })
  const pending = sub.next()
  t.equal(hub.stats().topics, 1)
  ac.abort()
  t.same(await pending, { done: true, value: undefined })
  t.equal(hub.stats().subscribers, 0)
  t.equal(hub.stats().topics, 0)
})

t.test('rejects a message the encoder refuses, and everything once closed', async (t) => {
  const hub = createHub()
  await t.rejects(hub.publish('t', { event: 'a\nb', data: 1 }), { code: 'SSE_ERR_INVALID_FIELD' })
  const sub = hub.subscribe({ topics: 't' })
  await hub.close()
  t.same(await sub.next(), { done: true, value: undefined })
  await t.rejects(hub.publish('t', { data: 1 }), { code: 'SSE_ERR_HUB_UNAVAILABLE' })
  t.throws(() => createHub({ maxQueue: 0 }), { code: 'SSE_ERR_INVALID_OPTION' })
})

t.test('history is bounded in messages and in bytes', async (t) => {
  const hub = createHub({ historySize: 100, historyBytes: 2000 })
  t.teardown(() => hub.close())
  const ids: string[] = []
  for (let i = 0; i < 50; i++) ids.push(await hub.publish('t', { data: 'x'.repeat(100) }))
  const sub = hub.subscribe({ topics: 't', lastEventId: 'other:1' })
  const { events } = await read(sub, (e) => e.length >= 2 && e[e.length - 1].id === ids[49])
  const kept = events.length - 1
  t.ok(kept > 5 && kept < 20, `kept ${kept} frames of ~130 bytes within 2000`)
})

/** Publishes `total` messages in small bursts, yielding to the event loop between them. */
async function publishMany (hub: Hub, total: number, onEach?: (i: number, id: string) => void): Promise<void> {
  for (let i = 0; i < total; i++) {
    const id = await hub.publish('race', { data: String(i) })
    onEach?.(i, id)
    if (i % 7 === 0) await new Promise(setImmediate)
  }
}

t.test('clients resuming while publishes race the replay get every message once, in order', async (t) => {
  const hub = createHub({ historySize: 5000 })
  const app = Fastify()
  await app.register(sse)
  app.get('/race', (request, reply) => reply.sse(hubSource(hub, { topics: 'race' })))
  const url = await listen(app)
  t.teardown(async () => { await app.close(); await hub.close() })
  const total = 3000
  const ids: string[] = []
  const resumed: Array<Promise<{ from: number, seqs: number[] }>> = []
  await publishMany(hub, total, (i, id) => {
    ids.push(id)
    // Every 300 messages a client reconnects from an id a little in the past, mid-publish.
    if (i % 300 === 150) {
      const from = i - 100
      resumed.push(openStream(url + '/race', { 'last-event-id': ids[from] }).then(async (s) => {
        const last = `${hub.stats().epoch}:${total}`
        while (s.events.at(-1)?.id !== last) await s.waitForEvents(s.events.length + 1)
        s.destroy()
        return { from, seqs: s.events.map((e) => seqOf(e.id)) }
      }))
    }
  })
  const results = await Promise.all(resumed)
  t.equal(results.length, 10)
  for (const { from, seqs } of results) {
    const expected = Array.from({ length: total - from - 1 }, (_, k) => from + 2 + k)
    t.same(seqs, expected, `resumed after message #${from}: ${seqs.length} messages, no gap, no duplicate`)
  }
})
