// The baseline both `raw` and `fastify-raw` use: pre-formatted frames, one `res.write()` per
// event, and the source is not pulled again while `write()` says the socket buffer is full.
import { source } from '../lib/payload.js'

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive'
}

const FRAME = {
  tokens: (tok) => 'data: ' + tok + '\n\n',
  json: (obj) => 'data: ' + JSON.stringify(obj) + '\n\n'
}

function drained (res) {
  return new Promise((resolve) => {
    const done = () => { res.off('drain', done); res.off('close', done); resolve() }
    res.on('drain', done)
    res.on('close', done)
  })
}

/** S1/S4a: streams `n` events of `kind` to `res`, honouring backpressure. */
export async function streamFrames (res, kind, n) {
  res.writeHead(200, SSE_HEADERS)
  for await (const frame of source(kind, n, FRAME[kind])) {
    if (res.destroyed) return
    if (!res.write(frame)) await drained(res)
  }
  res.end()
}

/** Fan-out: a set of open responses; each broadcast is formatted once and written to every one. */
export class RawBroadcaster {
  subs = new Set()

  subscribe (res) {
    res.writeHead(200, SSE_HEADERS)
    res.flushHeaders()
    this.subs.add(res)
    res.on('close', () => this.subs.delete(res))
  }

  publish (obj) {
    // No queue and no drop: what a subscriber cannot take yet, Node buffers in its response.
    const frame = 'id: ' + obj.i + '\ndata: ' + JSON.stringify(obj) + '\n\n'
    for (const res of this.subs) res.write(frame)
  }

  get count () { return this.subs.size }
}
