// One server process: `node bench/server.js <variant>`. Serves the variant on one port and a
// control API on another (stats, GC, publish, exit), samples its own memory every 10 ms, and
// prints one JSON line `{ port, ctlPort }` once both listen.
import http from 'node:http'
import v8 from 'node:v8'
import { setTimeout as sleep } from 'node:timers/promises'
import { broadcastObject, nowUs, progress } from './lib/payload.js'
import { EXTRA_VARIANTS, VARIANTS as BASE } from './lib/cases.js'

const VARIANTS = [...BASE, ...EXTRA_VARIANTS]
const name = process.argv[2]
if (!VARIANTS.includes(name)) {
  console.error(`usage: node bench/server.js <${VARIANTS.join('|')}>`)
  process.exit(2)
}
const variant = await (await import(`./variants/${name}.js`)).create()

// Peaks between two /reset calls: what a scenario cost on top of where it started.
const peak = { rss: 0, js: 0 }
function sample () {
  const m = process.memoryUsage()
  const js = m.heapUsed + m.external
  if (m.rss > peak.rss) peak.rss = m.rss
  if (js > peak.js) peak.js = js
  return m
}
setInterval(sample, 10)

function stats () {
  const m = sample()
  const cpu = process.cpuUsage()
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    js: m.heapUsed + m.external,
    peakRss: peak.rss,
    peakJs: peak.js,
    cpuUs: cpu.user + cpu.system,
    subscribers: variant.subscribers(),
    flushes: variant.flushes?.(),
    pulled: progress.pulled,
    info: variant.info,
    now: nowUs()
  }
}

function collect () {
  if (typeof global.gc !== 'function') return
  // Twice: the first pass may only queue finalizers that free more on the second.
  global.gc()
  global.gc()
}

/**
 * Publishes `n` broadcasts: back to back in one tick, one every `paceMs`, `batch` per turn of the
 * event loop, or `batch` every `paceMs`.
 */
async function publish ({ n, paceMs, batch, pad }) {
  const t0 = nowUs()
  if (paceMs > 0 && batch > 0) {
    const start = performance.now()
    for (let i = 0; i < n; i++) {
      if (i % batch === 0) {
        const wait = start + (i / batch) * paceMs - performance.now()
        if (wait > 0) await sleep(wait)
      }
      variant.publish(broadcastObject(i, pad))
    }
  } else if (paceMs > 0) {
    const start = performance.now()
    for (let i = 0; i < n; i++) {
      const wait = start + i * paceMs - performance.now()
      if (wait > 0) await sleep(wait)
      variant.publish(broadcastObject(i, pad))
    }
  } else if (batch > 0) {
    for (let i = 0; i < n; i++) {
      variant.publish(broadcastObject(i, pad))
      if ((i + 1) % batch === 0) await new Promise((resolve) => setImmediate(resolve))
    }
  } else {
    for (let i = 0; i < n; i++) variant.publish(broadcastObject(i, pad))
  }
  return { t0, t1: nowUs() }
}

const ctl = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1')
  const q = (key) => Number(url.searchParams.get(key) ?? 0)
  let body
  try {
    switch (url.pathname) {
      case '/stats': body = stats(); break
      case '/gc': collect(); body = stats(); break
      case '/heapsnapshot':
        // For bench/heap-diff.js: what the heap holds, by constructor, after a full GC.
        collect()
        body = { file: v8.writeHeapSnapshot(url.searchParams.get('file')) }
        break
      case '/reset': {
        const m = sample()
        peak.rss = m.rss
        peak.js = m.heapUsed + m.external
        body = stats()
        break
      }
      case '/publish': body = await publish({ n: q('n'), paceMs: q('pace'), batch: q('batch'), pad: q('pad') }); break
      case '/exit':
        res.end('{}', () => process.exit(0))
        return
      default: res.writeHead(404).end(); return
    }
  } catch (err) {
    res.writeHead(500).end(JSON.stringify({ error: String(err?.stack ?? err) }))
    return
  }
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify(body))
})

// A --cpu-prof profile is written only on a normal exit.
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))

const port = await variant.listen()
ctl.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port, ctlPort: ctl.address().port, pid: process.pid }) + '\n')
})
