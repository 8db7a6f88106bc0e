// S4 slow client: a client reads nothing for `pauseMs` while the server offers `mb` MB of 1 KiB
// events, (a) from a generator on its own stream, or (b) as a broadcast that one normal client
// also follows. Peak server memory over its baseline during the stall, how far the source got,
// what the slow client finally receives, and (b) after a reconnect with Last-Event-ID whether
// anything the server's history still held was lost.
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
  await sleep(Math.max(0, pauseMs - 100))
  const stalled = await ctl(ctlPort, '/stats')
  const resumedAt = nowUs()
  await settle(reader, () => next, n, timeoutMs)
  reader.close()
  if (reader.error !== undefined && next < n) check.fail(`connection error: ${reader.error.message}`)
  if (next !== n) check.fail(`received ${next} of ${n} events`)
  return {
    ...check.result(),
    metrics: {
      pulledWhileStalledMB: stalled.pulled / 1024,
      peakRssMB: (stalled.peakRss - base.rss) / 1e6,
      peakJsMB: (stalled.peakJs - base.js) / 1e6,
      receivedMB: next / 1024,
      drainMs: ((reader.endedAt || nowUs()) - resumedAt) / 1000
    }
  }
}

async function broadcast ({ port, ctlPort, params: { mb, pauseMs }, timeoutMs }) {
  const check = new Check()
  const n = mb * 1024
  await ctl(ctlPort, '/gc')
  const base = await ctl(ctlPort, '/reset')
  const follow = (name) => {
    const seen = { next: 0, last: -1 }
    seen.onEvent = (event) => {
      if (event.event !== undefined && event.event !== 'message') { seen.control = event.event; return }
      const { i } = readBroadcast(event.data)
      if (seen.last >= 0 && i !== seen.last + 1) check.fail(`${name}: event ${i} after ${seen.last}`)
      if (seen.last < 0) seen.first = i
      seen.last = i
      seen.next++
    }
    return seen
  }
  await noSubscribers(ctlPort, timeoutMs)
  const fast = follow('fast client')
  const slow = follow('slow client')
  const fastReader = new SseReader({ port, path: '/sub', onEvent: fast.onEvent })
  const slowReader = new SseReader({ port, path: '/sub', onEvent: slow.onEvent, pauseMs })
  await waitFor('2 subscribers', async () => (await ctl(ctlPort, '/stats')).subscribers === 2, timeoutMs)
  const pub = await ctl(ctlPort, `/publish?n=${n}&batch=64&pad=${PAD}`)
  await settle(fastReader, () => fast.last + 1, n, timeoutMs)
  const wait = pauseMs - 100 - (nowUs() - slowReader.startedAt) / 1000
  if (wait > 0) await sleep(wait)
  const stalled = await ctl(ctlPort, '/stats')
  await settle(slowReader, () => slow.last + 1, n, timeoutMs)
  const slowEnded = slowReader.endedAt !== 0
  const slowGot = slow.next

  // A slow subscriber the server dropped comes back with its Last-Event-ID, as EventSource does.
  let replayed = 0
  let lostFromHistory = 0
  const history = stalled.info.history ?? 0
  if (slow.last + 1 < n && history > 0) {
    const again = follow('reconnected client')
    const lastId = slowReader.lastId
    const reader = new SseReader({ port, path: '/sub', onEvent: again.onEvent, lastEventId: lastId })
    await settle(reader, () => again.last + 1, n, Math.min(timeoutMs, 20_000))
    reader.close()
    replayed = again.next
    // What history held when the client came back: the last `history` events.
    const heldFrom = Math.max(slow.last + 1, n - history)
    // The replay arrived in order (checked above), so it covers [first, last].
    lostFromHistory = again.next === 0
      ? n - heldFrom
      : Math.max(0, again.first - heldFrom) + (n - 1 - again.last)
    if (lostFromHistory > 0) check.fail(`reconnect after ${lastId}: ${lostFromHistory} events history held were not replayed`)
  }
  fastReader.close()
  slowReader.close()
  if (fast.last + 1 !== n) check.fail(`fast client got ${fast.last + 1} of ${n} events`)
  if (!slowEnded && slow.last + 1 !== n) check.fail(`slow client got ${slow.last + 1} of ${n} and was never disconnected`)
  return {
    ...check.result(),
    metrics: {
      peakRssMB: (stalled.peakRss - base.rss) / 1e6,
      peakJsMB: (stalled.peakJs - base.js) / 1e6,
      publishMs: (pub.t1 - pub.t0) / 1000,
      slowReceivedMB: slowGot / 1024,
      slowDisconnected: slowEnded && slow.last + 1 < n ? 1 : 0,
      replayedMB: replayed / 1024,
      lostFromHistory,
      historyEvents: history,
      queueBoundMB: (stalled.info.maxQueueBytes ?? NaN) / 1e6
    }
  }
}
