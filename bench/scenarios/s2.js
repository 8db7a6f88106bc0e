// S2 fan-out: `conns` subscribers, `events` broadcasts, back to back (paceMs 0), one per turn of
// the event loop (batch 1), or one every `paceMs`. Time until every client has every event, per-client completion p50/p99, per-delivery
// latency (publish -> arrival at the client), deliveries/s, server CPU and peak memory.
// While the clock runs the client only records chunks and looks for the last event's marker;
// eventsource-parser checks every event afterwards, using each chunk's arrival time.
import { setTimeout as sleep } from 'node:timers/promises'
import { ctl, noSubscribers, waitFor } from '../lib/ctl.js'
import { Check, readBroadcast } from '../lib/check.js'
import { quantile, sorted } from '../lib/stats.js'
import { RecordingReader } from '../lib/recording-reader.js'
import { openMany } from '../lib/sse-reader.js'

export async function run ({ port, ctlPort, params: { conns, events, paceMs, batch = 0 }, timeoutMs }) {
  const check = new Check()
  const next = new Int32Array(conns)
  const doneAt = new Float64Array(conns)
  const firstAt = new Float64Array(conns)
  const latencies = new Float64Array(conns * events)
  const marked = new Uint8Array(conns)
  const marker = Buffer.from('{"i":' + (events - 1) + ',')
  let deliveries = 0
  let seen = 0
  let complete
  const completed = new Promise((resolve) => { complete = resolve })

  await noSubscribers(ctlPort, timeoutMs)
  const readers = await openMany(conns, 64, (k) => {
    let tail
    return new RecordingReader({
      port,
      path: '/sub',
      onChunk (chunk) {
        if (marked[k] === 1) return
        if (chunk.includes(marker) || (tail !== undefined && Buffer.concat([tail, chunk.subarray(0, marker.length)]).includes(marker))) {
          marked[k] = 1
          if (++seen === conns) complete()
        }
        tail = chunk.subarray(-marker.length)
      },
      onEvent (event, r) {
        const { i, t } = readBroadcast(event.data)
        if (i !== next[k]) check.fail(`client ${k}: expected event ${next[k]}, got ${i}`)
        if (i === 0) firstAt[k] = r.now
        next[k] = i + 1
        if (deliveries < latencies.length) latencies[deliveries++] = r.now - t
        if (i === events - 1) doneAt[k] = r.now
      }
    })
  })
  try {
    await waitFor(`${conns} subscribers`, async () => (await ctl(ctlPort, '/stats')).subscribers === conns, timeoutMs)
    const before = await ctl(ctlPort, '/reset')
    const clientCpu = process.cpuUsage()
    const pub = await ctl(ctlPort, `/publish?n=${events}&pace=${paceMs}&batch=${paceMs > 0 ? 0 : batch}`)
    const timer = setTimeout(complete, timeoutMs)
    await completed
    clearTimeout(timer)
    const after = await ctl(ctlPort, '/stats')
    const cpu = process.cpuUsage(clientCpu)
    // The marker may have come just before the end of its frame: let the last bytes arrive.
    await sleep(50)
    for (const r of readers) r.parseRecorded()
    for (const r of readers) if (r.error !== undefined) { check.fail(`connection error: ${r.error.message}`); break }
    for (const r of readers) if (r.status !== 200) { check.fail(`HTTP status ${r.status}`); break }
    const missing = doneAt.filter((at) => at === 0).length
    if (missing > 0) check.fail(`${missing} of ${conns} clients did not get all ${events} events`)
    const completion = sorted(Array.from(doneAt, (at) => at > 0 ? (at - pub.t0) / 1000 : Infinity))
    const first = sorted(Array.from(firstAt, (at) => at > 0 ? (at - pub.t0) / 1000 : Infinity))
    const lat = latencies.subarray(0, deliveries).sort()
    const totalMs = completion[conns - 1]
    return {
      ...check.result(),
      window: [pub.t0, pub.t0 + totalMs * 1000],
      metrics: {
        totalMs,
        completionP50Ms: quantile(completion, 0.5),
        completionP99Ms: quantile(completion, 0.99),
        firstEventP99Ms: quantile(first, 0.99),
        latencyP50Ms: quantile(lat, 0.5) / 1000,
        latencyP99Ms: quantile(lat, 0.99) / 1000,
        deliveriesPerSec: deliveries / (totalMs / 1000),
        publishMs: (pub.t1 - pub.t0) / 1000,
        serverCpuMs: (after.cpuUs - before.cpuUs) / 1000,
        peakRssMB: (after.peakRss - before.rss) / 1e6,
        peakJsMB: (after.peakJs - before.js) / 1e6,
        clientCpuShare: (cpu.user + cpu.system) / 1000 / totalMs,
        ...(after.flushes === undefined ? {} : { flushes: after.flushes - before.flushes })
      }
    }
  } finally {
    for (const r of readers) r.close()
  }
}
