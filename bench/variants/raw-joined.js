// `raw-joined`: the ceiling probe. Plain node:http doing each case the fastest way we know, with
// none of a library's bookkeeping: S1 joins what the source yields within one turn of the event
// loop into one write (at 16 KiB, or on `setImmediate`); S2 joins the broadcasts of 1 ms (up to
// 5 ms while they keep coming, as the hub does) and writes the joined text once per subscriber;
// S3 is raw's response alone. Run beside `raw` and `ours` (`--variants raw,raw-joined,ours`), it
// puts a measured ceiling next to our figure instead of one copied from another machine.
import http from 'node:http'
import { RawBroadcaster, SSE_HEADERS } from './raw-writer.js'
import { source } from '../lib/payload.js'

const FRAME = {
  tokens: (tok) => 'data: ' + tok + '\n\n',
  json: (obj) => 'data: ' + JSON.stringify(obj) + '\n\n'
}
const HIGH_WATER = 16 * 1024

async function streamJoined (res, kind, n) {
  res.writeHead(200, SSE_HEADERS)
  let pending = ''
  let scheduled = false
  let blocked = false
  let resume
  const flush = () => {
    scheduled = false
    if (pending === '' || res.destroyed) return
    const text = pending
    pending = ''
    if (!res.write(text)) blocked = true
  }
  res.on('drain', () => { blocked = false; resume?.() })
  res.on('close', () => { blocked = false; resume?.() })
  for await (const frame of source(kind, n, FRAME[kind])) {
    if (res.destroyed) return
    pending += frame
    if (pending.length >= HIGH_WATER) flush()
    else if (!scheduled) { scheduled = true; setImmediate(flush) }
    if (blocked) await new Promise((resolve) => { resume = resolve })
  }
  flush()
  res.end()
}

// Subscribers as raw keeps them; only publishing differs.
class JoinedBroadcaster extends RawBroadcaster {
  batch = ''
  timer = undefined
  firstAt = 0

  publish (obj) {
    this.batch += 'id: ' + obj.i + '\ndata: ' + JSON.stringify(obj) + '\n\n'
    const now = performance.now()
    if (this.timer === undefined) this.firstAt = now
    else clearTimeout(this.timer)
    // 1 ms after the last publish, and never more than 5 ms after the first.
    const wait = Math.max(0, Math.min(1, this.firstAt + 5 - now))
    this.timer = setTimeout(() => this.flush(), wait)
  }

  flush () {
    this.timer = undefined
    const text = this.batch
    this.batch = ''
    for (const res of this.subs) res.write(text)
  }
}

export async function create () {
  const hub = new JoinedBroadcaster()
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1')
    if (url.pathname === '/stream') streamJoined(res, url.searchParams.get('kind'), Number(url.searchParams.get('n')))
    else if (url.pathname === '/sub') hub.subscribe(res)
    else res.writeHead(404).end()
  })
  return {
    listen: () => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port))),
    publish: (obj) => hub.publish(obj),
    subscribers: () => hub.count,
    info: { history: 0 }
  }
}
