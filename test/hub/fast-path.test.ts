// The hub's direct path to the socket: `reply.sse(hubSource(...))` attaches the stream to the
// subscription, and a reader that keeps up is written to inside the flush. These tests pin what
// that path must keep, over real sockets: order, no duplicates and no loss when a reader's socket
// fills (the queue takes over) and drains (direct again), replay, the overflow policies,
// heartbeats, and that a disconnect frees the subscription.
import t, { type Test } from 'tap'
import http, { type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import Fastify from 'fastify'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import sse from '../../lib/index.js'
import { createHub, type Hub, type HubOptions, type OverflowPolicy } from '../../lib/hub/hub.js'
import { hubSource } from '../../lib/hub/source.js'
import { listen, openStream } from '../helpers/http.js'
import { eventually, PATIENCE_MS } from '../helpers/eventually.js'

const seqOf = (id: string | undefined): number => Number(id?.split(':')[1])

/** Waits (bounded) until `ok()`; fails the test if it never holds. */
async function until (t: Test, ok: () => boolean, what: string): Promise<void> {
  await eventually(ok, what, PATIENCE_MS, 5).catch(() => {})
  t.ok(ok(), what)
}

async function serve (t: Test, hubOpts: HubOptions, overflow: OverflowPolicy = 'disconnect', heartbeatMs = 0): Promise<{ hub: Hub, url: string, app: ReturnType<typeof Fastify> }> {
  const hub = createHub(hubOpts)
  const app = Fastify({ forceCloseConnections: true })
  await app.register(sse, { heartbeatMs })
  app.get('/s', (request, reply) => reply.sse(hubSource(hub, { topics: ['a', 'b'], overflow })))
  const url = await listen(app)
  t.teardown(async () => { await app.close(); await hub.close() })
  return { hub, url: url + '/s', app }
}

/** A client whose socket can stop reading: events are parsed as they arrive while it reads. */
async function pausable (url: string): Promise<{ res: IncomingMessage, events: EventSourceMessage[], closed: Promise<unknown>, wait: (n: number) => Promise<void> }> {
  const req = http.get(url, { agent: false })
  req.on('error', () => {})
  const [res] = await once(req, 'response') as [IncomingMessage]
  res.on('error', () => {})
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (e) => events.push(e) })
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => parser.feed(chunk))
  // Not `once()`: it would reject on the 'error' (ECONNRESET) that comes with a destroyed connection.
  const closed = new Promise((resolve) => res.on('close', resolve))
  const wait = async (n: number): Promise<void> => {
    while (events.length < n) await Promise.race([once(res, 'data'), closed])
  }
  return { res, events, closed, wait }
}

const big = 'x'.repeat(32 * 1024)

/** Publishes large messages until some reader has a queue (its socket is full), bounded. */
async function publishUntilQueued (t: Test, hub: Hub, topic: string): Promise<number> {
  let n = 0
  while (hub.stats().queuedBytes === 0 && n < 4000) {
    await hub.publish(topic, { data: `${n} ${big}` })
    n++
    if (n % 16 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  t.ok(hub.stats().queuedBytes > 0, `a reader fell behind after ${n} messages`)
  return n
}

/** A reader subscribed, sent a first message on topic 'b', then stalled: its socket is full and the hub queues for it. */
async function stalledReader (t: Test, hub: Hub, url: string): ReturnType<typeof pausable> {
  const opening = pausable(url)
  await until(t, () => hub.stats().subscribers === 1, 'subscribed')
  await hub.publish('b', { data: 'first' })
  const slow = await opening
  await slow.wait(1)
  slow.res.pause()
  await publishUntilQueued(t, hub, 'a')
  return slow
}

t.test('a reader whose socket fills switches to its queue and back without losing, repeating or reordering a message', async (t) => {
  const { hub, url } = await serve(t, { maxQueueBytes: 512 * 1024 * 1024, maxQueue: 100_000, historySize: 10 })
  // Nothing is written (not even headers) before the first message: subscribe, then publish.
  const opening = Promise.all([pausable(url), openStream(url)])
  await until(t, () => hub.stats().subscribers === 2, 'both subscribed')
  await hub.publish('a', { data: 'first' })
  const [slow, fast] = await opening
  await slow.wait(1)
  slow.res.pause()
  const queuedAt = 1 + await publishUntilQueued(t, hub, 'b')
  // More while it is behind, then let it read: the queue goes out, then live is direct again.
  for (let i = 0; i < 20; i++) await hub.publish(i % 2 === 0 ? 'a' : 'b', { data: `behind ${i}` })
  slow.res.resume()
  const total = queuedAt + 20
  await slow.wait(total)
  await until(t, () => hub.stats().queuedBytes === 0, 'the queue is empty once the socket drained')
  for (let i = 0; i < 20; i++) await hub.publish('a', { data: `live ${i}` })
  await slow.wait(total + 20)
  await fast.waitForEvents(total + 20)
  for (const [name, events] of [['slow', slow.events], ['fast', fast.events]] as const) {
    const seqs = events.map((e) => seqOf(e.id))
    t.equal(seqs.length, total + 20, `${name}: every message`)
    t.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1), `${name}: in order, no duplicate, no gap`)
    t.same(events.slice(-3).map((e) => e.data), ['live 17', 'live 18', 'live 19'], `${name}: live again at the end`)
  }
  t.equal(hub.stats().overflows, 0)
})

t.test('a reconnect with Last-Event-ID is replayed what it missed, then follows live on the direct path', async (t) => {
  const { hub, url } = await serve(t, { historySize: 100 })
  const ids: string[] = []
  for (let i = 0; i < 10; i++) ids.push(await hub.publish(i % 2 === 0 ? 'a' : 'b', { data: String(i) }))
  await hub.publish('other', { data: 'not subscribed' })
  const s = await openStream(url, { 'last-event-id': ids[4] })
  await s.waitForEvents(5)
  const live = await hub.publish('a', { data: 'live' })
  const events = await s.waitForEvents(6)
  t.same(events.map((e) => e.data), ['5', '6', '7', '8', '9', 'live'])
  t.same(events.map((e) => e.id), [...ids.slice(5), live])
})

t.test('a reader that falls behind with the drop policy gets a gap event, then the rest in order', async (t) => {
  const { hub, url } = await serve(t, { maxQueueBytes: 256 * 1024, maxQueue: 100_000 }, 'drop')
  const slow = await stalledReader(t, hub, url)
  // Well past the queue's bound: the oldest queued go, the reader stays connected.
  for (let i = 0; i < 40; i++) await hub.publish('a', { data: `${i} ${big}` })
  await until(t, () => hub.stats().dropped > 0, 'messages were dropped for it')
  const last = await hub.publish('b', { data: 'last' })
  slow.res.resume()
  await until(t, () => slow.events.at(-1)?.id === last, 'it read up to the last message')
  const gap = slow.events.findIndex((e) => e.event === 'gap')
  t.ok(gap > 0, 'a gap event')
  t.equal(JSON.parse(slow.events[gap].data).count, hub.stats().dropped, 'counting what was dropped')
  const seqs = slow.events.filter((e) => e.event !== 'gap').map((e) => seqOf(e.id))
  t.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), 'in order, no duplicate')
  t.equal(hub.stats().overflows, 0, 'not disconnected')
})

t.test('a reader that falls behind with the conflate policy gets the newest message of each topic', async (t) => {
  const { hub, url } = await serve(t, { maxQueueBytes: 256 * 1024, maxQueue: 100_000 }, 'conflate')
  const slow = await stalledReader(t, hub, url)
  for (let i = 0; i < 40; i++) await hub.publish('a', { data: `${i} ${big}` })
  const lastB = await hub.publish('b', { data: 'b newest' })
  const lastA = await hub.publish('a', { data: 'a newest' })
  await until(t, () => hub.stats().conflated > 0, 'messages were conflated')
  slow.res.resume()
  await until(t, () => slow.events.at(-1)?.id === lastA, 'it read up to the last message')
  t.same(slow.events.slice(-2).map((e) => e.id), [lastB, lastA], 'the newest of each topic, in order')
  const seqs = slow.events.map((e) => seqOf(e.id))
  t.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), 'in order, no duplicate')
})

t.test('a reader that overflows with the disconnect policy loses its connection and its subscription', async (t) => {
  const { hub, url, app } = await serve(t, { maxQueueBytes: 256 * 1024, maxQueue: 100_000 })
  const opening = Promise.all([pausable(url), openStream(url)])
  await until(t, () => hub.stats().subscribers === 2, 'both subscribed')
  await hub.publish('b', { data: 'first' })
  const [slow, fast] = await opening
  await slow.wait(1)
  slow.res.pause()
  let n = 1
  while (hub.stats().overflows === 0 && n < 4000) {
    await hub.publish('a', { data: `${n++} ${big}` })
    // The other reader is in this process too: let it read.
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(hub.stats().overflows, 1, 'counted')
  slow.res.resume()
  await slow.closed
  t.pass('its connection was closed')
  await until(t, () => hub.stats().subscribers === 1 && app.sseOpenStreams === 1, 'only the other reader is left')
  t.equal(hub.stats().queuedBytes, 0, 'its queue was released')
  const last = await hub.publish('a', { data: 'after' })
  await until(t, () => fast.events.at(-1)?.id === last, 'the other reader goes on')
  t.equal(fast.events.length, n + 1, 'the other reader got everything')
})

t.test('an idle reader on the direct path gets heartbeats', async (t) => {
  const { hub, url } = await serve(t, {}, 'disconnect', 20)
  const opening = openStream(url)
  await until(t, () => hub.stats().subscribers === 1, 'subscribed')
  await hub.publish('a', { data: 'one' })
  const s = await opening
  await s.waitForEvents(1)
  t.equal(await s.waitForComment(), '', 'a comment frame while nothing is published')
  await hub.publish('b', { data: 'two' })
  t.same((await s.waitForEvents(2)).map((e) => e.data), ['one', 'two'], 'and live messages still')
})

t.test('a subscription sends its headers at once, before anything is published', async (t) => {
  const { hub, url } = await serve(t, {})
  const req = http.get(url, { agent: false, headers: { 'x-test': 'headers-first' } })
  req.on('error', () => {})
  t.teardown(() => req.destroy())
  // Nothing is published: the response (an EventSource's `open`) must not wait for a message.
  const [res] = await once(req, 'response', { signal: AbortSignal.timeout(PATIENCE_MS) }) as [IncomingMessage]
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(hub.stats().subscribers, 1, 'subscribed when the headers arrive')
  t.equal(hub.stats().published, 0, 'and nothing was published')
})

t.test('a client that disconnects frees its subscription and its stream', async (t) => {
  const { hub, url, app } = await serve(t, {})
  const opening = Promise.all(Array.from({ length: 20 }, () => openStream(url)))
  await until(t, () => hub.stats().subscribers === 20, 'all subscribed')
  await hub.publish('a', { data: 'one' })
  const streams = await opening
  await Promise.all(streams.map((s) => s.waitForEvents(1)))
  for (const s of streams.slice(0, 15)) s.destroy()
  await until(t, () => hub.stats().subscribers === 5 && app.sseOpenStreams === 5, 'the 15 that left are gone from the hub and the plugin')
  for (const s of streams.slice(15)) s.destroy()
  await until(t, () => hub.stats().subscribers === 0 && app.sseOpenStreams === 0, 'back to 0')
  t.equal(hub.stats().topics, 1, 'a topic with history is kept, one without is forgotten')
  await hub.publish('a', { data: 'to nobody' })
  t.equal(hub.stats().queuedBytes, 0)
})

t.test('closing the hub ends every attached stream cleanly', async (t) => {
  const { hub, url } = await serve(t, {})
  const opening = openStream(url)
  await until(t, () => hub.stats().subscribers === 1, 'subscribed')
  await hub.publish('a', { data: 'bye' })
  const s = await opening
  await hub.close()
  await s.ended
  t.same(s.events.map((e) => e.data), ['bye'], 'what was published before close is delivered')
})
