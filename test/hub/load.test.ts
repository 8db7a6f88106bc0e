// The hub under load over real sockets: a thousand subscribers, and one that stops reading while
// 50 MB are published. Bounded to a few seconds each on two shared cores.
import t from 'tap'
import http, { type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import Fastify, { type FastifyInstance } from 'fastify'
import { createParser } from 'eventsource-parser'
import sse from '../../lib/index.js'
import { createHub, type Hub } from '../../lib/hub/hub.js'
import { hubSource } from '../../lib/hub/source.js'
import { deferred, listen, openStream } from '../helpers/http.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const seqOf = (id: string | undefined): number => Number(id?.split(':')[1])

/** A server whose `/fan` streams the hub's `fan` topic; `subscribed(n)` resolves at n subscribers. */
async function server (hub: Hub): Promise<{ app: FastifyInstance, url: string, subscribed: (n: number) => Promise<void>, closed: Map<string, Promise<unknown>> }> {
  const app = Fastify({ forceCloseConnections: true })
  await app.register(sse, { heartbeatMs: 0 })
  let count = 0
  let waiter: { n: number, resolve: () => void } | undefined
  const closed = new Map<string, Promise<unknown>>()
  const source = hubSource(hub, { topics: 'fan' })
  app.get<{ Querystring: { who?: string } }>('/fan', (request, reply) => reply.sse((ctx) => {
    const sub = source(ctx)
    if (request.query.who !== undefined) closed.set(request.query.who, once(reply.raw, 'close'))
    count++
    if (waiter !== undefined && count >= waiter.n) waiter.resolve()
    return sub
  }))
  const url = await listen(app)
  const subscribed = async (n: number): Promise<void> => {
    if (count >= n) return
    const d = deferred()
    waiter = { n, resolve: d.resolve }
    await d.promise
  }
  return { app, url, subscribed, closed }
}

/** A client that parses the stream and remembers the seq of every event. */
function client (url: string, onSeq?: (seq: number) => void): { seqs: number[], res: Promise<IncomingMessage>, destroy: () => void } {
  const seqs: number[] = []
  const parser = createParser({ onEvent: (e) => { const s = seqOf(e.id); seqs.push(s); onSeq?.(s) } })
  const req = http.get(url, { agent: false })
  const res = once(req, 'response').then(([r]) => {
    const res = r as IncomingMessage
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => parser.feed(chunk))
    return res
  })
  req.on('error', () => {})
  return { seqs, res, destroy: () => req.destroy() }
}

t.test('1 000 subscribers on one topic over real sockets receive every message, encoded once each', async (t) => {
  let calls = 0
  const hub = createHub({ serialize: (d) => { calls++; return JSON.stringify(d) } })
  const { app, url, subscribed } = await server(hub)
  const total = 200
  let complete = 0
  const done = deferred()
  const clients = Array.from({ length: 1000 }, () => client(url + '/fan', (s) => {
    if (s === total && ++complete === 1000) done.resolve()
  }))
  t.teardown(async () => { for (const c of clients) c.destroy(); await app.close(); await hub.close() })
  await subscribed(1000)
  const started = performance.now()
  for (let i = 0; i < total; i++) {
    await hub.publish('fan', { event: 'tick', data: { i, pad: 'x'.repeat(80) } })
    if (i % 20 === 19) await new Promise(setImmediate)
  }
  await done.promise
  const ms = performance.now() - started
  const expected = Array.from({ length: total }, (_, i) => i + 1)
  let exact = 0
  for (const c of clients) if (c.seqs.length === total && c.seqs.every((s, i) => s === expected[i])) exact++
  t.equal(exact, 1000, 'every client got all messages, in order, once')
  t.equal(calls, total, 'serialize ran once per message, not once per subscriber')
  t.equal(hub.stats().overflows, 0)
  t.ok(hub.stats().flushes < total, `${hub.stats().flushes} fan-outs for ${total} messages`)
  t.comment(`${total} x 1000 deliveries in ${ms.toFixed(0)} ms (${Math.round(total * 1000 / ms * 1000)} deliveries/s)`)
})

t.test('a subscriber that stops reading while 50 MB are published is disconnected, memory stays bounded, the others get everything, and it resumes from history', async (t) => {
  const maxQueueBytes = 1024 * 1024
  const hub = createHub({ historySize: 1000, maxQueueBytes })
  const { app, url, subscribed, closed } = await server(hub)
  t.teardown(async () => { await app.close(); await hub.close() })

  // The slow one reads its first few events, then stops reading.
  let slowLastId = ''
  const slowPaused = deferred()
  const slowReq = http.get(url + '/fan?who=slow', { agent: false })
  slowReq.on('error', () => {})
  t.teardown(() => slowReq.destroy())
  slowReq.on('response', (res: IncomingMessage) => {
    res.setEncoding('utf8')
    let n = 0
    const parser = createParser({ onEvent: (e) => { if (e.id !== undefined && n < 5) { slowLastId = e.id; n++ } } })
    res.on('data', (chunk: string) => {
      if (n >= 5) return
      parser.feed(chunk)
      if (n >= 5) { res.pause(); slowPaused.resolve() }
    })
  })

  const fastCount = 3
  const fastSeen = new Array<number>(fastCount).fill(0)
  let want = 0
  let caughtUp: (() => void) | undefined
  const fast = Array.from({ length: fastCount }, (_, k) => client(url + '/fan', (s) => {
    fastSeen[k] = s
    if (caughtUp !== undefined && fastSeen.every((x) => x >= want)) { const f = caughtUp; caughtUp = undefined; f() }
  }))
  t.teardown(() => { for (const c of fast) c.destroy() })
  await subscribed(fastCount + 1)

  const payload = 'x'.repeat(1000)
  // Enough for the slow one to pass its five events and stop.
  for (let i = 0; i < 5; i++) await hub.publish('fan', { data: payload })
  await slowPaused.promise

  gc()
  const baseline = process.memoryUsage().heapUsed
  let peakQueued = 0
  let peakHeap = 0
  const burst = 64
  const bursts = Math.ceil(50 * 1024 * 1024 / (burst * 1000))
  const started = performance.now()
  for (let b = 0; b < bursts; b++) {
    let id = ''
    for (let i = 0; i < burst; i++) id = await hub.publish('fan', { data: payload })
    peakQueued = Math.max(peakQueued, hub.stats().queuedBytes)
    // Publishing never waits on the slow one; the test only paces itself on the fast readers.
    want = seqOf(id)
    if (!fastSeen.every((x) => x >= want)) await new Promise<void>((resolve) => { caughtUp = resolve })
    if (b % 160 === 0) { gc(); peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed - baseline) }
  }
  const ms = performance.now() - started
  gc()
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed - baseline)
  const last = seqOf(hub.stats().lastId)

  await closed.get('slow')
  t.equal(hub.stats().overflows, 1, 'the slow subscriber was disconnected, once')
  t.ok(peakQueued <= maxQueueBytes + 64 * 1024, `queued bytes peaked at ${peakQueued}`)
  t.ok(peakHeap < 24 * 1024 * 1024, `heap grew by at most ${(peakHeap / 1048576).toFixed(1)} MB while 50 MB were published`)
  for (const c of fast) {
    t.equal(c.seqs.length, last, 'a fast reader got every message')
    t.ok(c.seqs.every((s, i) => s === i + 1), 'in order')
  }
  t.comment(`50 MB to ${fastCount} readers in ${ms.toFixed(0)} ms (${(50 * fastCount / ms * 1000).toFixed(0)} MB/s delivered)`)

  // It comes back with the last id it read: long gone from history, so a reset, then all of it.
  const again = await openStream(url + '/fan', { 'last-event-id': slowLastId })
  t.teardown(() => again.destroy())
  await again.waitForEvents(1001)
  t.equal(again.events[0].event, 'reset')
  t.same(JSON.parse(again.events[0].data), { reason: 'expired' })
  const replayed = again.events.slice(1, 1001).map((e) => seqOf(e.id))
  t.same(replayed, Array.from({ length: 1000 }, (_, i) => last - 999 + i), 'the whole history, in order')
})
