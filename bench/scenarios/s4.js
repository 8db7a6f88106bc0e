// S4 slow client: a client reads nothing for `pauseMs` while the server offers `mb` MB of 1 KiB
// events, (a) from a generator on its own stream, or (b) as a broadcast (64 KiB every 10 ms) that
// one normal client also follows. Server memory over its baseline: what it still holds for the
// stalled client after a GC just before the client reads again, and the peaks (garbage included)
// during the stall; how far the source got, what the slow client finally receives, and (b) after
// a reconnect with Last-Event-ID whether anything the server's history still held was lost.
import { setTimeout as sleep } from 'node:timers/promises'
import { ctl, noSubscribers, waitFor } from '../lib/ctl.js'
import { Check, readBroadcast } from '../lib/check.js'
import { expectedData, nowUs } from '../lib/payload.js'
import { SseReader } from '../lib/sse-reader.js'

// 1 KiB events: `mb` MB is `mb * 1024` of them.
const PAD = 990

export async function run (opts) {
  return opts.params.mode === 'generator' ? generator(opts) : broadcast(opts)
}

/** Resolves when `reader` has `n` events (as counted by `got()`), its stream ended, or time ran out. */
async function settle (reader, got, n, timeoutMs) {
  const deadline = performance.now() + timeoutMs
  while (got() < n && reader.endedAt === 0 && performance.now() < deadline) await sleep(20)
}

async function generator ({ variant, port, ctlPort, params: { mb, pauseMs }, timeoutMs }) {
  const check = new Check()
  const n = mb * 1024
  await ctl(ctlPort, '/gc')
  const base = await ctl(ctlPort, '/reset')
  let next = 0
  const reader = new SseReader({
    port,
    path: `/stream?kind=json&n=${n}`,
    pauseMs,
    onEvent (event) {
      if (event.data !== expectedData('json', next, variant)) check.fail(`event ${next}: got ${JSON.stringify(event.data.slice(0, 40))}`)
      next++
    }
  })
  // Just before the client starts reading: how far did the source get, and what did it cost?
  await sleep(Math.max(0, pauseMs - 200))
  const stalled = await ctl(ctlPort, '/stats')
  // What the server still holds for the stalled client once garbage is gone.
  const held = await ctl(ctlPort, '/gc')
  const resumedAt = nowUs()
  await settle(reader, () => next, n, timeoutMs)
  reader.close()
  if (reader.error !== undefined && next < n) check.fail(`connection error: ${reader.error.message}`)
  if (next !== n) check.fail(`received ${next} of ${n} events`)
  return {
    ...check.result(),
    metrics: {
      pulledWhileStalledMB: stalled.pulled / 1024,
      heldMB: (held.js - base.js) / 1e6,
      peakRssMB: (stalled.peakRss - base.rss) / 1e6,
      peakJsMB: (stalled.peakJs - base.js) / 1e6,
      receivedMB: next / 1024,
      drainMs: ((reader.endedAt || nowUs()) - resumedAt) / 1000
    }
  }
}

/**
 * One client of the broadcast, EventSource-like: when the server ends its stream early it comes
 * back with its Last-Event-ID (if the server keeps history), and every event must follow the
 * previous one, across reconnects.
 */
class Follower {
  next = 0
  last = -1
  first = -1
  reconnects = 0
  reader

  constructor (name, check, port) {
    this.name = name
    this.check = check
    this.port = port
  }

  open (options = {}) {
    this.reader = new SseReader({
      port: this.port,
      path: '/sub',
      ...options,
      onEvent: (event) => {
        if (event.event !== undefined && event.event !== 'message') return
        const { i } = readBroadcast(event.data)
        if (this.gapAllowed) {
          // The first event after a reconnect that may skip what history no longer holds.
          this.gapAllowed = false
          this.replayFirst = i
          if (i <= this.last) this.check.fail(`${this.name}: replay started at ${i}, already had ${this.last}`)
        } else if (this.last >= 0 && i !== this.last + 1) {
          this.check.fail(`${this.name}: event ${i} after ${this.last}`)
        }
        if (this.first < 0) this.first = i
        this.last = i
        this.next++
      }
    })
    return this
  }

  /** Comes back with Last-Event-ID; `gapAllowed`: events older than the history may be skipped. */
  reconnect (gapAllowed = false) {
    this.reconnects++
    this.gapAllowed = gapAllowed
    this.replayFirst = undefined
    return this.open({ lastEventId: this.reader.lastId })
  }

  /** Until it has event `n - 1`, or its stream ended (and `maxReconnects` are used up), or time is up. */
  async follow (n, timeoutMs, maxReconnects) {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      await settle(this.reader, () => this.last + 1, n, deadline - performance.now())
      if (this.last + 1 >= n || this.reader.endedAt === 0 || this.reconnects >= maxReconnects) return
      this.reconnect()
    }
  }
}

async function broadcast ({ port, ctlPort, params: { mb, pauseMs }, timeoutMs }) {
  const check = new Check()
  const n = mb * 1024
  await ctl(ctlPort, '/gc')
  const base = await ctl(ctlPort, '/reset')
  const history = base.info.history ?? 0
  await noSubscribers(ctlPort, timeoutMs)
  const normal = new Follower('normal client', check, port).open()
  const slow = new Follower('slow client', check, port).open({ pauseMs })
  const slowReader = slow.reader
  await waitFor('2 subscribers', async () => (await ctl(ctlPort, '/stats')).subscribers === 2, timeoutMs)
  // 64 KiB every 10 ms (6.4 MB/s): a broadcast a normal client follows easily, over most of the stall.
  const pub = await ctl(ctlPort, `/publish?n=${n}&batch=64&pace=10&pad=${PAD}`)
  // A normal client may still be dropped when the machine starves it; like EventSource, it comes back.
  await normal.follow(n, timeoutMs, history > 0 ? 5 : 0)
  const wait = pauseMs - 200 - (nowUs() - slowReader.startedAt) / 1000
  if (wait > 0) await sleep(wait)
  const stalled = await ctl(ctlPort, '/stats')
  // What the server still holds for the stalled client once garbage is gone.
  const held = await ctl(ctlPort, '/gc')
  await settle(slowReader, () => slow.last + 1, n, timeoutMs)
  const slowEnded = slowReader.endedAt !== 0
  const slowGot = slow.next
  const slowLast = slow.last

  // A slow subscriber the server dropped comes back with its Last-Event-ID, as EventSource does.
  let lostFromHistory = 0
  if (slowLast + 1 < n && history > 0) {
    const lastId = slowReader.lastId
    slow.reconnect(true)
    await settle(slow.reader, () => slow.last + 1, n, Math.min(timeoutMs, 20_000))
    // History held the last `history` events when the client came back: the replay must start
    // at the first of them it lacks and run, in order (checked as it arrived), to the end.
    const heldFrom = Math.max(slowLast + 1, n - history)
    lostFromHistory = slow.replayFirst === undefined
      ? n - heldFrom
      : Math.max(0, slow.replayFirst - heldFrom) + (n - 1 - slow.last)
    if (lostFromHistory > 0) check.fail(`reconnect after ${lastId}: ${lostFromHistory} events history held were not replayed`)
  }
  normal.reader.close()
  slow.reader.close()
  if (normal.last + 1 !== n) check.fail(`normal client got ${normal.last + 1} of ${n} events after ${normal.reconnects} reconnects`)
  if (!slowEnded && slowLast + 1 !== n) check.fail(`slow client got ${slowLast + 1} of ${n} and was never disconnected`)
  return {
    ...check.result(),
    metrics: {
      heldMB: (held.js - base.js) / 1e6,
      peakRssMB: (stalled.peakRss - base.rss) / 1e6,
      peakJsMB: (stalled.peakJs - base.js) / 1e6,
      publishMs: (pub.t1 - pub.t0) / 1000,
      normalReceivedMB: (normal.last + 1) / 1024,
      normalReconnects: normal.reconnects,
      slowReceivedMB: slowGot / 1024,
      slowDisconnected: slowEnded && slowLast + 1 < n ? 1 : 0,
      replayedMB: (slow.next - slowGot) / 1024,
      lostFromHistory,
      historyEvents: history,
      queueBoundMB: (stalled.info.maxQueueBytes ?? NaN) / 1e6
    }
  }
}
