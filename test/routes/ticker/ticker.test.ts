import t, { type Test } from 'tap'
import Fastify from 'fastify'
import sse from '../../../lib/index.js'
import ticker, { type TickerRouteOptions } from '../../../routes/ticker/index.js'
import { simulatedQuotes, type Quote, type QuoteFeed } from '../../../routes/ticker/simulated-quotes.js'
import { deferred, listen, openStream } from '../../helpers/http.js'

async function serve (t: Test, opts: TickerRouteOptions = {}): Promise<string> {
  const app = Fastify()
  await app.register(sse, { heartbeatMs: 0 })
  await app.register(ticker, opts)
  const url = await listen(app)
  t.teardown(() => app.close())
  return url
}

const seqOf = (id: string | undefined): number => Number(id?.split(':')[1])

t.test('sends a snapshot of the requested symbols first, then simulated quotes for those symbols only', async (t) => {
  const url = await serve(t, { intervalMs: 5 })
  const s = await openStream(url + '/ticker?symbols=acme,Hooli')
  t.teardown(s.destroy)
  await s.waitForEvents(11)
  const [snapshot, ...quotes] = s.events
  t.equal(snapshot.event, 'snapshot')
  t.equal(snapshot.id, undefined)
  const data = JSON.parse(snapshot.data)
  t.same(data.quotes.map((q: Quote) => q.symbol), ['ACME', 'HOOLI'])
  t.equal(data.simulated, true)
  t.match(data.quotes[0], { price: 120, change: 0, simulated: true })
  for (const q of quotes) {
    t.equal(q.event, 'quote')
    const quote = JSON.parse(q.data)
    t.ok(['ACME', 'HOOLI'].includes(quote.symbol), quote.symbol)
    t.match(quote, { price: Number, change: Number, ts: Number, simulated: true })
    t.equal(quote.change, Math.round((quote.price - (quote.symbol === 'ACME' ? 120 : 1520)) * 100) / 100)
  }
  const seqs = quotes.map((q) => seqOf(q.id))
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'ids increase')
})

t.test('answers 400 for an unknown symbol, an oversized list and a malformed one', async (t) => {
  const url = await serve(t)
  const unknown = await fetch(url + '/ticker?symbols=ACME,NOPE')
  t.equal(unknown.status, 400)
  t.match(await unknown.json(), { code: 'SSE_ERR_UNKNOWN_SYMBOL', message: /NOPE/ })
  const many = await fetch(url + '/ticker?symbols=' + Array.from({ length: 21 }, () => 'ACME').join(','))
  t.equal(many.status, 400)
  t.match(await many.json(), { code: 'FST_ERR_VALIDATION' })
  const malformed = await fetch(url + '/ticker?symbols=ACME,,HOOLI')
  t.equal(malformed.status, 400)
})

t.test('starts the feed with the first subscriber and stops it, timer included, after the last leaves', async (t) => {
  let starts = 0
  let running = 0
  let stopped = deferred()
  let feedSignal: AbortSignal | undefined
  const walk = simulatedQuotes({ intervalMs: 5 })
  const feed: QuoteFeed = async function * (signal) {
    starts++
    running++
    feedSignal = signal
    try { yield * walk(signal) } finally { running--; stopped.resolve() }
  }
  const url = await serve(t, { feed, symbols: ['ACME', 'GLOBEX'] })
  t.equal(starts, 0, 'nobody watching, no feed')
  const a = await openStream(url + '/ticker?symbols=ACME')
  const b = await openStream(url + '/ticker?symbols=GLOBEX')
  await Promise.all([a.waitForEvents(3), b.waitForEvents(3)])
  t.equal(starts, 1, 'one feed for both')
  a.destroy()
  await b.waitForEvents(b.events.length + 2)
  t.equal(running, 1, 'still running for the other one')
  b.destroy()
  await stopped.promise
  t.equal(running, 0, 'the feed ended')
  // Its own state, not a count of every timer in the process (which other work changes): the
  // signal it was given is aborted, and the walk's sleep takes that signal (see the test below).
  t.equal(feedSignal?.aborted, true, 'its signal aborted, which cancels its timer')
  stopped = deferred()
  const c = await openStream(url + '/ticker?symbols=ACME')
  await c.waitForEvents(2)
  t.equal(starts, 2, 'started again for a new subscriber')
  c.destroy()
  await stopped.promise
})

t.test('the simulated walk ends at once when its signal aborts mid-sleep: no timer runs on', async (t) => {
  // A tick of an hour: if the abort did not cancel the sleep, this would wait for it (and time out).
  const ac = new AbortController()
  const it = simulatedQuotes({ intervalMs: 3_600_000 })(ac.signal)[Symbol.asyncIterator]()
  const next = it.next()
  ac.abort()
  t.same(await next, { value: undefined, done: true })
})

t.test('a reconnect with Last-Event-ID gets the quotes it missed, then live, with no gap', async (t) => {
  const url = await serve(t, { intervalMs: 2 })
  // Another watcher keeps the feed running while the first one is away.
  const keeper = await openStream(url + '/ticker')
  t.teardown(keeper.destroy)
  const first = await openStream(url + '/ticker')
  await first.waitForEvents(5)
  first.destroy()
  const last = first.events[4].id as string
  await keeper.waitForEvents(keeper.events.length + 20)
  const again = await openStream(url + '/ticker', { 'last-event-id': last })
  t.teardown(again.destroy)
  await again.waitForEvents(40)
  t.equal(again.events[0].event, 'snapshot')
  const seqs = again.events.slice(1).map((e) => seqOf(e.id))
  t.same(seqs, seqs.map((_, i) => seqOf(last) + 1 + i), 'every quote since the last one seen, once, in order')
})

t.test('a stale Last-Event-ID gets the snapshot, a reset carrying the current position, then live quotes', async (t) => {
  const quotes: Quote[] = [{ symbol: 'ACME', price: 1, change: 0, ts: 1 }]
  const next = deferred()
  const feed: QuoteFeed = async function * (signal) {
    yield quotes[0]
    await next.promise
    if (!signal.aborted) yield { symbol: 'ACME', price: 2, change: 1, ts: 2 }
  }
  const url = await serve(t, { feed, symbols: { ACME: 1 } })
  const s = await openStream(url + '/ticker?symbols=ACME', { 'last-event-id': 'oldepoch:42' })
  t.teardown(s.destroy)
  await s.waitForEvents(3)
  next.resolve()
  await s.waitForEvents(4)
  t.same(s.events.map((e) => e.event), ['snapshot', 'reset', 'quote', 'quote'])
  t.same(JSON.parse(s.events[0].data).simulated, false, 'a real feed is not labelled simulated')
  t.same(JSON.parse(s.events[1].data), { reason: 'epoch' })
  t.equal(seqOf(s.events[2].id), seqOf(s.events[1].id) + 1, 'the reset id is the position just before the next quote')
  t.same(s.events.slice(2).map((e) => JSON.parse(e.data).price), [1, 2])
})
