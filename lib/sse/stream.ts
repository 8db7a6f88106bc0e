// The I/O shell around the encoder: pulls messages from a source, writes them to the socket with
// backpressure, heartbeats and coalescing, and tears everything down on disconnect, error or
// shutdown. The wire format itself lives in encoder.ts.
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { ServerResponse } from 'node:http'
import { encode, encodeComment, type Serializer, type SseFrame, type SseInput } from './encoder.js'
import { SSE_ERR_INVALID_SOURCE, SSE_ERR_REPLY_SENT } from '../errors.js'
import type { StreamRegistry } from './registry.js'
import { publicError } from './public-error.js'
import { blocked, bytesIn, endStream, eventsIn, meterStream, overflowed, unblocked, type StreamEndReason, type StreamMeter } from '../metrics/channels.js'

/** What a source function receives. */
export interface SseContext {
  /** Aborts when the client disconnects, the server closes, or the stream ends: pass it upstream. */
  signal: AbortSignal
  /** `request.lastEventId`, validated: where a reconnecting client wants to resume. */
  lastEventId: string | undefined
  request: FastifyRequest
  reply: FastifyReply
}

type Iterables<T> = AsyncIterable<SseInput<T>> | Iterable<SseInput<T>>

/** An (async) iterable of messages, or a function of the stream's context returning one. */
export type SseSource<T = unknown> = Iterables<T> | ((ctx: SseContext) => Iterables<T> | Promise<Iterables<T>>)

/** Options of `reply.sse()`; the plugin's options are the defaults for every call. */
export interface SseStreamOptions {
  /**
   * Send a comment frame after this many milliseconds without a write, so proxies and load
   * balancers do not time an idle stream out. `0` turns it off.
   * @default 15000
   */
  heartbeatMs?: number
  /**
   * Write `retry: <n>` at the start of the stream: how long the client waits before reconnecting.
   * @default undefined (the client's own default, about 3 s in browsers)
   */
  retryMs?: number
  /**
   * Turns non-string `data` into text.
   * @default JSON.stringify
   */
  serialize?: Serializer
  /**
   * Frames yielded back to back are gathered into one write of up to this many characters; a
   * write the socket cannot take at once stops pulling from the source until it drains.
   * @default 16384
   */
  highWaterMark?: number
}

export interface ResolvedStreamOptions {
  heartbeatMs: number
  retryMs: number | undefined
  serialize: Serializer
  highWaterMark: number
}

/**
 * Marks a source that pushes pre-encoded frames instead of being pulled: the hub's subscriptions.
 * `reply.sse()` hands such a source the stream (`SsePushTarget`), and while the socket takes what
 * it is given the source writes to it directly, inside its own fan-out: no iterator step, promise
 * or timer per delivery, and nothing pending while idle (bench S2, S3). A push source is also an
 * iterator, so it stays usable with `for await`; `return()` detaches it.
 */
export const kPushSource = Symbol.for('fastify-sse-stream.pushSource')

/** What a push source writes to: the stream. */
export interface SsePushTarget {
  /**
   * Writes a frame (one or more complete events) now. `false` once the socket's buffer is full: the source
   * keeps what follows in its own (bounded) queue until `resume()` is called.
   */
  write: (frame: SseFrame) => boolean
  /** The source is done: the stream ends after what was written. */
  close: () => void
  /** The source failed: an `event: error` frame (or an HTTP error before the first), then the end. */
  error: (err: unknown) => void
  /** The reader stopped taking data and its queue overflowed: the connection is destroyed. */
  destroy: () => void
}

export interface SsePushSource {
  /** Called once by `reply.sse()`; the source may write to `target` at once (a replay). */
  [kPushSource]: (target: SsePushTarget) => void
  /** The socket drained: write what was held back, until `write()` says full again. */
  resume: () => void
  /** Detaches the source (the stream is over). */
  return?: () => unknown
}

/**
 * The reply decorator behind `hubRoute()`: `reply.sse()` without its promise, for handlers that
 * do not wait on the stream. A pending promise returned to Fastify keeps the request and reply
 * referenced until the stream ends; an idle hub subscriber should hold neither (bench S3).
 */
export const kSseOpen = Symbol.for('fastify-sse-stream.open')

function isPushSource (value: unknown): value is SsePushSource {
  return typeof (value as any)[kPushSource] === 'function'
}

const HEARTBEAT = encodeComment('') + '\n'
// Each response's stream, so the response's listeners can be shared functions rather than
// closures made for every stream, without adding a property to the response (an idle
// connection's memory is mostly such small objects; bench S3).
const streams = new WeakMap<ServerResponse, SseStream>()
const CLIENT_GONE = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE', 'ERR_STREAM_DESTROYED', 'ABORT_ERR'])
// How long an ending stream may take to flush before its socket is destroyed at shutdown.
const SHUTDOWN_FLUSH_MS = 1000

// A stream's state, as bits of one small integer (an idle connection holds thousands of streams'
// worth of fields; bench S3). The end reason is kept above them as an index into REASONS.
const STARTED = 1 // the headers are out
const CLOSED = 2 // no more writes from the source: done, failed, client gone or shutdown
const FLUSH_SCHEDULED = 4
const BEATING = 8 // the source is attached and the stream takes heartbeats
const BLOCKED = 16 // the socket's buffer is full; waiting for 'drain'
const PUSH = 32 // the source is a push source (a hub subscription)
const FINISHED = 64 // over: the promise of run() is (or would be) resolved
const REASON_SHIFT = 8
const REASONS: readonly StreamEndReason[] = ['done', 'client', 'error', 'shutdown', 'overflow']

function isIterable (value: unknown): value is Iterables<unknown> {
  return value !== null && typeof value === 'object' &&
    (typeof (value as any)[Symbol.asyncIterator] === 'function' || typeof (value as any)[Symbol.iterator] === 'function')
}

function describe (value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value
}

/**
 * The error frame sent once a stream has started: `{ code, message, statusCode }` as `publicError`
 * allows. `id`: for a stored error a client must be able to say it has seen (generations).
 */
export function errorFrame (err: unknown, id?: string): string {
  const { code, message, statusCode } = publicError(err)
  const data = { code, message, statusCode }
  return encode(id === undefined ? { event: 'error', data } : { event: 'error', id, data })
}

/**
 * One open stream. Created by `reply.sse()`: `run()` returns a promise that settles when the
 * stream is over, `open()` the same without a promise (for handlers that do not wait on it).
 */
export class SseStream implements SsePushTarget {
  // Fastify's reply until the headers are out; then only the raw response and the logger are
  // kept, so an idle stream does not hold the request, its headers, query and params (bench S3).
  #reply: FastifyReply | undefined
  readonly #log: FastifyBaseLogger
  readonly #res: ServerResponse
  readonly #opts: ResolvedStreamOptions
  readonly #registry: StreamRegistry<SseStream>
  // Made on first use of `signal`: a push source (the hub) never asks for one, and an idle
  // connection then holds no AbortController, AbortSignal or listener map (bench S3).
  #controller: AbortController | undefined
  // The iterator being pulled, or the push source attached (PUSH set).
  #source: Iterator<SseInput> | AsyncIterator<SseInput> | SsePushSource | undefined
  #state = 0
  #pending = ''
  /** Heartbeat clock ticks since the last write (lib/sse/registry.ts). */
  idleTicks = 0
  #drain: (() => void) | undefined
  // Set only while someone collects metrics (lib/metrics/channels.ts).
  #meter: StreamMeter | undefined
  // Made when somebody asks for the outcome (`run()`, `shutdown()`), not for every stream.
  #finished: Promise<void> | undefined
  #done: (() => void) | undefined

  constructor (reply: FastifyReply, opts: ResolvedStreamOptions, registry: StreamRegistry<SseStream>) {
    this.#reply = reply
    this.#log = reply.log
    this.#res = reply.raw as ServerResponse
    this.#opts = opts
    this.#registry = registry
  }

  get signal (): AbortSignal {
    let controller = this.#controller
    if (controller === undefined) {
      controller = this.#controller = new AbortController()
      if ((this.#state & CLOSED) !== 0) controller.abort(new Error('stream ended'))
    }
    return controller.signal
  }

  /** For the registry's heartbeat clock. */
  get heartbeatMs (): number { return this.#opts.heartbeatMs }
  get beating (): boolean { return (this.#state & BEATING) !== 0 }

  #abort (reason: unknown): void {
    const controller = this.#controller
    if (controller !== undefined && !controller.signal.aborted) controller.abort(reason)
  }

  #setReason (reason: StreamEndReason): void {
    this.#state = (this.#state & ((1 << REASON_SHIFT) - 1)) | (REASONS.indexOf(reason) << REASON_SHIFT)
  }

  /**
   * Streams `source` to the client. Never rejects: errors become an HTTP error or an `error` event.
   * Not an async function: a source given or made synchronously (the hub's) is attached in this
   * call, and the caller gets the outcome promise itself rather than a promise chained onto it.
   */
  run (source: SseSource): Promise<void> {
    if ((this.#reply as FastifyReply).sent) return Promise.reject(new SSE_ERR_REPLY_SENT())
    this.open(source)
    return this.#outcome()
  }

  /** `run()` without the promise: nothing is kept for an outcome nobody waits for. */
  open (source: SseSource): void {
    const reply = this.#reply as FastifyReply
    if (reply.sent) throw new SSE_ERR_REPLY_SENT()
    this.#registry.add(this)
    this.#meter = meterStream(reply.request)
    const res = this.#res
    streams.set(res, this)
    // `on`, not `once`: 'close' comes once anyway, and `once` would wrap the listener per stream.
    res.on('close', SseStream.#onResClose)
    res.on('error', SseStream.#onResClose)
    // The socket may already be gone (the client left while hooks ran).
    if (res.destroyed || (res as any).socket?.destroyed === true) this.#onClose()

    let made: unknown
    try {
      // Validated for every source, not only for functions that read it: a malformed
      // Last-Event-ID is a 400 before anything is streamed (the getter throws it).
      void reply.request.lastEventId
      made = typeof source === 'function' ? source(this.#context()) : source
    } catch (err) {
      this.#fail(err)
      return
    }
    if (made !== null && typeof (made as any)?.then === 'function') {
      (made as Promise<unknown>).then((iterable) => this.#begin(iterable), (err) => this.#fail(err))
    } else {
      this.#begin(made)
    }
  }

  #outcome (): Promise<void> {
    if ((this.#state & FINISHED) !== 0) return Promise.resolve()
    return (this.#finished ??= new Promise<void>((resolve) => { this.#done = resolve }))
  }

  /** What a source function gets; `signal` is read lazily, so a source that ignores it costs none. */
  #context (): SseContext {
    const stream = this
    const reply = this.#reply as FastifyReply
    return {
      get signal () { return stream.signal },
      lastEventId: reply.request.lastEventId,
      request: reply.request,
      reply
    }
  }

  #begin (iterable: unknown): void {
    if (!isIterable(iterable)) {
      this.#fail(new SSE_ERR_INVALID_SOURCE(describe(iterable)))
      return
    }
    if ((this.#state & CLOSED) !== 0) {
      // The client left while the source was being made: let it go at once.
      this.#source = iterable as any
      this.#stopSource()
      this.#finish()
      return
    }
    if (isPushSource(iterable)) {
      this.#source = iterable
      this.#state |= PUSH
      // A subscription is open once attached: the headers go out now (the client's EventSource
      // fires `open`), and an idle subscriber holds no Fastify request or reply from here on.
      this.#start()
      this.#state |= BEATING
      iterable[kPushSource](this)
      return
    }
    const it = typeof (iterable as any)[Symbol.asyncIterator] === 'function'
      ? (iterable as AsyncIterable<SseInput>)[Symbol.asyncIterator]()
      : (iterable as Iterable<SseInput>)[Symbol.iterator]()
    this.#source = it
    this.#state |= BEATING
    // The pump runs detached: if the source is stuck awaiting something that never settles, a
    // disconnect still settles the stream at once (see #onClose) instead of waiting for it.
    void this.#pump(it)
  }

  // ── SsePushTarget: what a push source (the hub) calls ──

  /** Writes frames a push source hands over; `false` when the socket buffer is full. */
  write (frame: SseFrame): boolean {
    if ((this.#state & CLOSED) !== 0) return false
    if (this.#meter !== undefined) this.#meter.events += eventsIn(frame)
    this.#pending += frame.text
    this.#flush()
    return (this.#state & BLOCKED) === 0
  }

  /** The push source ended: the stream ends after what was written. */
  close (): void {
    if ((this.#state & CLOSED) !== 0) return
    this.#state |= CLOSED
    this.#source = undefined
    this.#end()
  }

  /** The push source failed. */
  error (err: unknown): void {
    this.#fail(err)
  }

  /** The push source gave up on this reader (its queue overflowed while the socket was full). */
  destroy (): void {
    overflowed.add(this.#res)
    this.#res.destroy()
  }

  /** Ends the stream from the server side (shutdown): the source is aborted, the response ended. */
  shutdown (): Promise<void> {
    if ((this.#state & CLOSED) === 0) {
      this.#state |= CLOSED
      this.#setReason('shutdown')
      this.#abort(new Error('server is closing'))
      this.#stopSource()
      this.#end()
      const res = this.#res
      // A client that reads nothing must not hold the server open.
      if (!res.writableFinished) setTimeout(() => { if (!res.writableFinished) res.destroy() }, SHUTDOWN_FLUSH_MS).unref()
    }
    return this.#outcome()
  }

  /** Pulls, encodes and writes until the source ends or the stream closes; never rejects. */
  async #pump (it: Iterator<SseInput> | AsyncIterator<SseInput>): Promise<void> {
    const { serialize, highWaterMark } = this.#opts
    try {
      while ((this.#state & CLOSED) === 0) {
        const step = await it.next()
        if ((this.#state & CLOSED) !== 0) return
        if (step.done === true) break
        const text = encode(step.value, serialize)
        if (text === '') continue
        if (this.#meter !== undefined) this.#meter.events += eventsIn(step.value)
        this.#pending += text
        if (this.#pending.length >= highWaterMark) this.#flush()
        else if ((this.#state & FLUSH_SCHEDULED) === 0) {
          this.#state |= FLUSH_SCHEDULED
          setImmediate(SseStream.#flushSoon, this)
        }
        // Backpressure: pull nothing more until the socket has taken what it was given.
        if ((this.#state & BLOCKED) !== 0) await this.#waitDrain()
      }
    } catch (err) {
      this.#fail(err)
      return
    }
    if ((this.#state & CLOSED) !== 0) return
    this.#state |= CLOSED
    this.#end()
  }

  // Gathers what the source yields within one turn of the event loop into a single write: one
  // syscall and one chunk header for many small frames, and no delay for a lone one.
  static #flushSoon (stream: SseStream): void {
    stream.#state &= ~FLUSH_SCHEDULED
    if ((stream.#state & CLOSED) === 0) stream.#flush()
  }

  /** Writes what is pending; marks the stream blocked when the socket buffer is full. */
  #flush (): void {
    const text = this.#pending
    if (text === '') return
    this.#pending = ''
    if ((this.#state & STARTED) === 0) this.#start()
    this.idleTicks = 0
    const meter = this.#meter
    if (meter !== undefined && meter.socket === undefined) meter.bytes += bytesIn(text)
    if (!this.#res.write(text) && (this.#state & BLOCKED) === 0) {
      this.#state |= BLOCKED
      // Listened for only while blocked: an idle stream keeps no 'drain' listener.
      this.#res.on('drain', SseStream.#onResDrain)
      if (meter !== undefined) blocked(meter)
    }
  }

  #waitDrain (): Promise<void> {
    return new Promise<void>((resolve) => {
      if ((this.#state & (CLOSED | BLOCKED)) !== BLOCKED) resolve()
      else this.#drain = resolve
    })
  }

  static #onResDrain (this: ServerResponse): void {
    const stream = streams.get(this)
    if (stream !== undefined) stream.#onDrain()
  }

  static #onResClose (this: ServerResponse, err?: unknown): void {
    const stream = streams.get(this)
    if (stream !== undefined) stream.#onClose(err)
  }

  #onDrain (): void {
    if ((this.#state & BLOCKED) !== 0) {
      this.#state &= ~BLOCKED
      this.#res.removeListener('drain', SseStream.#onResDrain)
      if (this.#meter !== undefined) unblocked(this.#meter)
    }
    const resolve = this.#drain
    this.#drain = undefined
    resolve?.()
    if ((this.#state & PUSH) !== 0) (this.#source as SsePushSource | undefined)?.resume()
  }

  /** Headers go out with the first frame, so an error before it can still be an HTTP error. */
  #start (): void {
    this.#state |= STARTED
    const reply = this.#reply as FastifyReply
    this.#reply = undefined
    const headers: Record<string, any> = reply.getHeaders()
    headers['content-type'] = 'text/event-stream; charset=utf-8'
    headers['cache-control'] = 'no-cache'
    // nginx buffers proxied responses unless told otherwise.
    headers['x-accel-buffering'] = 'no'
    delete headers['content-length']
    const http1 = reply.request.raw.httpVersionMajor === 1
    // Connection-specific headers are forbidden in HTTP/2 (RFC 9113 §8.2.2).
    if (http1) headers.connection = 'keep-alive'
    else delete headers.connection
    reply.hijack()
    this.#res.writeHead(reply.statusCode, headers)
    // Sent on their own, the header block is flattened once; written with the first frame, Node
    // keeps it as a rope of ~23 pieces for the life of the connection (0.7 KB; bench S3).
    if (http1) this.#res.flushHeaders()
    if (this.#opts.retryMs !== undefined) this.#res.write(encode({ retry: this.#opts.retryMs }))
  }

  /** A comment frame, written now: the stream has been idle for a whole heartbeat period. */
  beat (): void {
    if ((this.#state & CLOSED) !== 0) return
    this.#pending += HEARTBEAT
    this.#flush()
  }

  #onClose (err?: unknown): void {
    if (err !== undefined && !isClientGone(err)) this.#log.warn({ err }, 'SSE response error')
    if ((this.#state & CLOSED) !== 0) { this.#finish(); return }
    // The client went away: stop the source and its upstream work at once.
    this.#log.debug('SSE client disconnected')
    this.#state |= CLOSED
    this.#setReason(overflowed.has(this.#res) ? 'overflow' : 'client')
    this.#abort(new Error('client disconnected'))
    this.#stopSource()
    this.#finish()
  }

  #fail (err: any): void {
    if ((this.#state & CLOSED) !== 0) { this.#finish(); return }
    this.#state |= CLOSED
    this.#setReason('error')
    this.#abort(err)
    this.#stopSource()
    if ((this.#state & STARTED) === 0 && this.#pending === '') {
      // Nothing yielded yet: an ordinary HTTP error through Fastify's error handler, with a JSON body.
      this.#cleanup()
      ;(this.#reply as FastifyReply).send(err)
      this.#finish()
      return
    }
    this.#log.error({ err }, 'SSE source failed after the stream started')
    this.#pending += errorFrame(err)
    this.#end()
  }

  #stopSource (): void {
    const it = this.#source
    this.#source = undefined
    this.#onDrain()
    if (it?.return === undefined) return
    // Not awaited: an async generator stuck on an await runs its `finally` once that await
    // settles, which the aborted signal makes happen for any upstream request given it.
    try {
      const r = it.return()
      if (r instanceof Promise) r.catch((err) => this.#log.debug({ err }, 'SSE source failed while closing'))
    } catch (err) {
      this.#log.debug({ err }, 'SSE source failed while closing')
    }
  }

  #end (): void {
    this.#cleanup()
    if (this.#pending !== '' || (this.#state & STARTED) !== 0) {
      this.#flush()
      this.#res.end()
    } else if (!this.#res.destroyed) {
      // The source ended without yielding anything: an empty but valid stream.
      this.#start()
      this.#res.end()
    }
    if (this.#res.writableFinished || this.#res.destroyed) this.#finish()
    else this.#res.once('finish', () => this.#finish())
  }

  #cleanup (): void {
    this.#state &= ~BEATING
    if ((this.#state & BLOCKED) !== 0) this.#res.removeListener('drain', SseStream.#onResDrain)
  }

  #finish (): void {
    if ((this.#state & FINISHED) !== 0) return
    this.#state |= FINISHED
    this.#abort(new Error('stream ended'))
    this.#cleanup()
    this.#registry.delete(this)
    if (this.#meter !== undefined) { endStream(this.#meter, REASONS[this.#state >> REASON_SHIFT]); this.#meter = undefined }
    const done = this.#done
    this.#done = undefined
    done?.()
  }
}

/** Errors that only mean the client went away; logged at debug, never as failures. */
export function isClientGone (err: any): boolean {
  return CLIENT_GONE.has(err?.code) || err?.name === 'AbortError'
}
