// S1 throughput: one connection, `n` events of `kind` from an async generator, as fast as the
// client reads. Events/s, data MB/s, server CPU per event, time to first event, peak memory.
import { ctl } from '../lib/ctl.js'
import { Check } from '../lib/check.js'
import { expectedData } from '../lib/payload.js'
import { SseReader } from '../lib/sse-reader.js'

export async function run ({ variant, port, ctlPort, params: { kind, n }, timeoutMs }) {
  const check = new Check()
  const before = await ctl(ctlPort, '/reset')
  const clientCpu = process.cpuUsage()
  let next = 0
  let dataChars = 0
  let lastAt = 0
  let complete
  const completed = new Promise((resolve) => { complete = resolve })
  const reader = new SseReader({
    port,
    path: `/stream?kind=${kind}&n=${n}`,
    onEvent (event, r) {
      if (next >= n) { check.fail(`event after the last one: ${event.data.slice(0, 40)}`); return }
      if (event.data !== expectedData(kind, next, variant)) check.fail(`event ${next}: got ${JSON.stringify(event.data.slice(0, 40))}`)
      dataChars += event.data.length
      if (++next === n) { lastAt = r.now; complete() }
    }
  })
  const timer = setTimeout(complete, timeoutMs)
  await Promise.race([completed, reader.closed])
  clearTimeout(timer)
  const after = await ctl(ctlPort, '/stats')
  const cpu = process.cpuUsage(clientCpu)
  reader.close()
  if (reader.error !== undefined) check.fail(`connection error: ${reader.error.message}`)
  if (next !== n) check.fail(`received ${next} of ${n} events`)
  const durationUs = (lastAt || reader.now) - reader.startedAt
  return {
    ...check.result(),
    window: [reader.startedAt, lastAt || reader.now],
    metrics: {
      eventsPerSec: next / (durationUs / 1e6),
      dataMBps: dataChars / durationUs,
      wireBytesPerEvent: reader.wireBytes / Math.max(1, next),
      serverCpuUsPerEvent: (after.cpuUs - before.cpuUs) / Math.max(1, next),
      ttfbMs: (reader.firstEventAt - reader.startedAt) / 1000,
      peakRssMB: (after.peakRss - before.rss) / 1e6,
      peakJsMB: (after.peakJs - before.js) / 1e6,
      clientCpuShare: (cpu.user + cpu.system) / durationUs
    }
  }
}
