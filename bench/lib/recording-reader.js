// A lighter SSE client for fan-out: a plain TCP socket that only records what arrives (and when)
// while the clock runs; the HTTP response (status, headers, chunked framing) and the events are
// parsed afterwards by `parseRecorded()`, with eventsource-parser, each event stamped with the
// arrival of the chunk that completed it. Thousands of node:http clients in one process cost
// more CPU than a fast server spends on them, which would make the client what gets measured.
import net from 'node:net'
import { StringDecoder } from 'node:string_decoder'
import { createParser } from 'eventsource-parser'
import { nowUs } from './payload.js'

const CRLF = Buffer.from('\r\n')
const HEAD_END = Buffer.from('\r\n\r\n')

export class RecordingReader {
  startedAt = nowUs()
  endedAt = 0
  now = 0
  count = 0
  status = 0
  error = undefined
  chunks = []
  times = []
  /** Resolves once the request is written; `closed` when the socket closes. */
  ready
  closed

  /**
   * @param {object} o
   * @param {number} o.port
   * @param {string} o.path
   * @param {(event: {event?: string, id?: string, data: string}, reader: RecordingReader) => void} o.onEvent
   * @param {(chunk: Buffer, reader: RecordingReader) => void} [o.onChunk] sees every read as it arrives
   */
  constructor ({ port, path, onEvent, onChunk }) {
    this.onEvent = onEvent
    const socket = this.socket = net.connect(port, '127.0.0.1')
    this.ready = new Promise((resolve) => {
      socket.once('connect', resolve)
      socket.once('error', resolve)
    })
    socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\naccept: text/event-stream\r\n\r\n`)
    socket.on('data', (buf) => {
      this.now = nowUs()
      this.chunks.push(buf)
      this.times.push(this.now)
      onChunk?.(buf, this)
    })
    this.closed = new Promise((resolve) => {
      socket.once('error', (err) => { this.error = err })
      socket.once('close', () => { this.endedAt = nowUs(); resolve() })
    })
  }

  /** Parses everything recorded so far: HTTP head, chunked framing, then the events. */
  parseRecorded () {
    const { chunks, times } = this
    this.chunks = []
    this.times = []
    this.decoder ??= new ResponseDecoder(createParser({
      onEvent: (event) => { this.count++; this.onEvent(event, this) }
    }))
    for (let i = 0; i < chunks.length; i++) {
      this.now = times[i]
      this.decoder.push(chunks[i])
    }
    this.status = this.decoder.status
    if (this.decoder.error !== undefined && this.error === undefined) this.error = new Error(this.decoder.error)
  }

  close () {
    this.socket.destroy()
  }
}

/** HTTP/1.1 response bytes -> body text for the SSE parser (chunked or not). */
class ResponseDecoder {
  status = 0
  error = undefined
  #parser
  #text = new StringDecoder('utf8')
  #state = 'head'
  #pending = Buffer.alloc(0)
  #chunked = false
  #remaining = 0

  constructor (parser) {
    this.#parser = parser
  }

  push (buf) {
    if (this.#pending.length > 0) {
      buf = Buffer.concat([this.#pending, buf])
      this.#pending = Buffer.alloc(0)
    }
    let at = 0
    while (at < buf.length && this.#state !== 'done') {
      if (this.#state === 'head') {
        const end = buf.indexOf(HEAD_END, at)
        if (end === -1) break
        const head = buf.toString('latin1', at, end)
        this.status = Number(head.slice(9, 12))
        if (this.status !== 200) this.error = `HTTP ${this.status}`
        this.#chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head)
        at = end + 4
        this.#state = this.#chunked ? 'size' : 'body'
      } else if (this.#state === 'body') {
        this.#parser.feed(this.#text.write(buf.subarray(at)))
        at = buf.length
      } else if (this.#state === 'size') {
        const eol = buf.indexOf(CRLF, at)
        if (eol === -1) break
        this.#remaining = parseInt(buf.toString('latin1', at, eol), 16)
        at = eol + 2
        this.#state = this.#remaining === 0 ? 'done' : 'data'
      } else if (this.#state === 'data') {
        const take = Math.min(this.#remaining, buf.length - at)
        this.#parser.feed(this.#text.write(buf.subarray(at, at + take)))
        at += take
        this.#remaining -= take
        if (this.#remaining === 0) this.#state = 'crlf'
      } else {
        // The CRLF after a chunk's data.
        if (buf.length - at < 2) break
        at += 2
        this.#state = 'size'
      }
    }
    if (at < buf.length && this.#state !== 'done') this.#pending = buf.subarray(at)
  }
}
