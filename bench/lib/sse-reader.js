// One SSE connection on the client side: node:http, parsed with eventsource-parser, with the
// arrival time of every chunk so per-event latencies cost no clock read per event. With
// `deferParse`, chunks are only recorded while the clock runs and parsed afterwards
// (`parseRecorded()`), each event stamped with the arrival of the chunk that completed it: a
// client holding thousands of connections must not be what limits the measurement.
import http from 'node:http'
import { createParser } from 'eventsource-parser'
import { nowUs } from './payload.js'

// No keep-alive pooling: every reader is its own TCP connection, as browsers' EventSources are.
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity })

export class SseReader {
  /** µs timestamps (CLOCK_MONOTONIC) of: request start, response headers, first event, end. */
  startedAt = 0
  headersAt = 0
  firstEventAt = 0
  endedAt = 0
  /** Arrival time of the chunk being parsed: what `onEvent` should use as "now". */
  now = 0
  status = 0
  chars = 0
  /** Bytes read from the socket: SSE text plus HTTP headers and chunk framing. */
  wireBytes = 0
  count = 0
  lastId = undefined
  error = undefined
  /** Resolves when the response ends, the socket closes, or the request fails; never rejects. */
  closed

  /**
   * @param {object} o
   * @param {number} o.port
   * @param {string} o.path
   * @param {(event: {event?: string, id?: string, data: string}, reader: SseReader) => void} o.onEvent
   * @param {string} [o.lastEventId] sent as the Last-Event-ID header
   * @param {number} [o.pauseMs] read nothing for this long after connecting (a stalled client)
   * @param {boolean} [o.deferParse] record chunks now, parse them in `parseRecorded()`
   * @param {(chunk: string, reader: SseReader) => void} [o.onChunk] sees every chunk as it arrives
   */
  constructor ({ port, path, onEvent, lastEventId, pauseMs = 0, deferParse = false, onChunk }) {
    this.startedAt = nowUs()
    this.chunks = []
    this.times = []
    const parser = this.parser = createParser({
      onEvent: (event) => {
        if (this.count++ === 0) this.firstEventAt = this.now
        if (event.id !== undefined) this.lastId = event.id
        onEvent(event, this)
      }
    })
    const headers = { accept: 'text/event-stream' }
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId
    this.closed = new Promise((resolve) => {
      const finish = (err) => {
        if (this.endedAt === 0) this.endedAt = nowUs()
        this.wireBytes = this.req.socket?.bytesRead ?? this.wireBytes
        if (err !== undefined && this.error === undefined) this.error = err
        resolve()
      }
      this.req = http.get({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
        this.headersAt = nowUs()
        this.status = res.statusCode
        res.setEncoding('utf8')
        res.on('data', (chunk) => {
          this.now = nowUs()
          this.chars += chunk.length
          if (deferParse) {
            this.chunks.push(chunk)
            this.times.push(this.now)
          } else {
            parser.feed(chunk)
          }
          onChunk?.(chunk, this)
        })
        res.on('end', () => finish())
        res.on('error', finish)
        res.on('close', () => finish())
      })
      this.req.on('error', finish)
      if (pauseMs > 0) {
        // Paused before the first byte: the kernel buffers fill and then the server's write()
        // reports backpressure, as with a client on a stalled network.
        this.req.once('socket', (socket) => {
          socket.pause()
          this.resumeTimer = setTimeout(() => socket.resume(), pauseMs)
        })
      }
    })
  }

  /** Parses what `deferParse` recorded, with `now` set to each chunk's arrival time. */
  parseRecorded () {
    const { chunks, times } = this
    this.chunks = []
    this.times = []
    for (let i = 0; i < chunks.length; i++) {
      this.now = times[i]
      this.parser.feed(chunks[i])
    }
  }

  close () {
    clearTimeout(this.resumeTimer)
    if (this.endedAt === 0) this.wireBytes = this.req.socket?.bytesRead ?? 0
    this.req.destroy()
  }
}

/**
 * Opens `count` readers, at most `concurrency` connecting at a time, so the server's accept queue
 * never overflows. Resolves when every request has been written to its socket.
 */
export async function openMany (count, concurrency, open) {
  const readers = []
  let next = 0
  async function worker () {
    while (next < count) {
      const reader = open(next++)
      readers.push(reader)
      await (reader.ready ?? new Promise((resolve) => {
        reader.req.once('finish', resolve)
        reader.req.once('error', resolve)
      }))
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return readers
}
