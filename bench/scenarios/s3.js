// S3 idle memory: `conns` subscribers that have each received one event and then sit idle.
// Heap, heap+external and RSS per connection, each after a full GC, over the server's own
// baseline before the first connection.
import { setTimeout as sleep } from 'node:timers/promises'
import { ctl, noSubscribers, waitFor } from '../lib/ctl.js'
import { Check, readBroadcast } from '../lib/check.js'
import { openMany, SseReader } from '../lib/sse-reader.js'

export async function run ({ variant, port, ctlPort, params: { conns }, timeoutMs, snapshotDir }) {
  const check = new Check()
  let got = 0
  await noSubscribers(ctlPort, timeoutMs)
  const base = await ctl(ctlPort, '/gc')
  const snapshot = (name) => snapshotDir === undefined
    ? undefined
    : ctl(ctlPort, '/heapsnapshot?file=' + encodeURIComponent(`${snapshotDir}/S3-${variant}-${name}.heapsnapshot`))
  await snapshot('before')
  const readers = await openMany(conns, 64, () => new SseReader({
    port,
    path: '/sub',
    onEvent (event) {
      if (readBroadcast(event.data).i !== 0) check.fail(`unexpected event ${event.data.slice(0, 40)}`)
      got++
    }
  }))
  try {
    await waitFor(`${conns} subscribers`, async () => (await ctl(ctlPort, '/stats')).subscribers === conns, timeoutMs)
    // One event each, so every variant has sent its headers and first frame: a live, idle stream.
    await ctl(ctlPort, '/publish?n=1')
    await waitFor('the first event on every connection', () => got >= conns, timeoutMs)
    await sleep(200)
    const after = await ctl(ctlPort, '/gc')
    await snapshot('after')
    if (after.subscribers !== conns) check.fail(`${after.subscribers} of ${conns} subscribers left after GC`)
    for (const r of readers) if (r.error !== undefined) { check.fail(`connection error: ${r.error.message}`); break }
    return {
      ...check.result(),
      metrics: {
        heapKBPerConn: (after.heapUsed - base.heapUsed) / conns / 1024,
        jsKBPerConn: (after.js - base.js) / conns / 1024,
        rssKBPerConn: (after.rss - base.rss) / conns / 1024
      }
    }
  } finally {
    for (const r of readers) r.close()
  }
}
