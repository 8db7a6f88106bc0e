// What the library reports about itself, on `node:diagnostics_channel`: named channels that cost a
// property read while nobody listens. `fastify-sse-stream/metrics` (./index.ts) subscribes and
// turns them into Prometheus metrics; anything else (OpenTelemetry, a log line) may subscribe too.
// The names and messages are documented in docs/metrics.md.
//
// Two kinds of report. Rare things (a stream starts or ends, a subscriber overflows, a generation
// is resumed) are published as they happen. What happens per event (frames and bytes written,
// time blocked on backpressure) is added to a small meter object that a stream owns and that was
// handed to subscribers when the stream started: the hot path adds numbers, the subscriber reads
// them when it is scraped. A stream started while nobody listened has no meter and costs nothing.
import { channel } from 'node:diagnostics_channel'
import type { FastifyRequest } from 'fastify'
import { SseFrame, type SseInput } from '../sse/encoder.js'

export const channels = {
  /** A stream opened: `StreamMeter`. */
  streamStart: channel('fastify-sse-stream:stream:start'),
  /** A stream ended: `{ meter: StreamMeter, reason: StreamEndReason }`. */
  streamEnd: channel('fastify-sse-stream:stream:end'),
  /** A hub was used (subscribed to or published on), so its gauges can be read: `HubMeter`. */
  hubSeen: channel('fastify-sse-stream:hub:seen'),
  /** A message was published on this instance: `HubMeter`. */
  hubPublish: channel('fastify-sse-stream:hub:publish'),
  /** A batch was fanned out: `{ hub: HubMeter, entries: number }`. */
  hubFanout: channel('fastify-sse-stream:hub:fanout'),
  /** A slow subscriber's queue overflowed: `{ hub: HubMeter, action, messages }`. */
  hubOverflow: channel('fastify-sse-stream:hub:overflow'),
  /** A subscription resumed from history: `{ hub: HubMeter, entries: number }`. */
  hubReplay: channel('fastify-sse-stream:hub:replay'),
  /** A subscription's Last-Event-ID could not be resumed: `{ hub: HubMeter, reason }`. */
  hubReset: channel('fastify-sse-stream:hub:reset'),
  /** A Redis command failed: `{ operation }`. */
  redisError: channel('fastify-sse-stream:redis:error'),
  /** The Redis reader handed over entries: `{ lagMs }`, from publish (any instance) to here. */
  redisRead: channel('fastify-sse-stream:redis:read'),
  /** A resumable generation was resumed by a reconnect: `{}`. */
  generationResume: channel('fastify-sse-stream:generation:resume'),
  /** A generation was stopped: `{ reason: 'stop' | 'abandoned' }` (abandoned: the grace period ran out). */
  generationStop: channel('fastify-sse-stream:generation:stop'),
  /** An LLM generation (one upstream chat completion) started: `LlmMeter`. */
  llmStart: channel('fastify-sse-stream:llm:start'),
  /** Its first token arrived: `LlmMeter` (`firstTokenAt` set). */
  llmFirstToken: channel('fastify-sse-stream:llm:first-token'),
  /** It ended: `{ meter: LlmMeter, error?: { code } }`; `tokens` and `endedAt` are set. */
  llmEnd: channel('fastify-sse-stream:llm:end')
}

export type StreamEndReason = 'done' | 'client' | 'error' | 'shutdown' | 'overflow'

/** One open stream's counts, added to by the stream writer. */
export interface StreamMeter {
  /** The route's URL pattern (`/items/:id`), never the URL itself: a bounded label. */
  readonly route: string
  /** Events and comments written (a pre-encoded frame counts the frames it holds). */
  events: number
  /**
   * Bytes written. HTTP/1.1: read from the connection when scraped (`socket.bytesWritten` since the
   * stream started: headers, chunk framing and heartbeats included), so writes cost nothing extra.
   * HTTP/2 shares one socket between streams: the stream adds the UTF-8 bytes of each write here.
   */
  bytes: number
  /** HTTP/1.1: the connection, and its `bytesWritten` when the stream started. */
  readonly socket: { readonly bytesWritten: number } | undefined
  readonly socketBase: number
  /** Writes the socket did not take at once, so the source was paused until `drain`. */
  waits: number
  /** Milliseconds spent paused for backpressure. */
  blockedMs: number
  /** When the pause in progress began (`performance.now()`), or 0. */
  blockedAt: number
}

/** A meter for a new stream, or undefined when nobody listens (the stream then measures nothing). */
export function meterStream (request: FastifyRequest): StreamMeter | undefined {
  if (!channels.streamStart.hasSubscribers) return undefined
  const socket = request.raw.httpVersionMajor === 1 ? request.raw.socket ?? undefined : undefined
  const meter: StreamMeter = {
    route: request.routeOptions.url ?? '(unmatched)',
    events: 0,
    bytes: 0,
    waits: 0,
    blockedMs: 0,
    blockedAt: 0,
    socket,
    socketBase: socket?.bytesWritten ?? 0
  }
  channels.streamStart.publish(meter)
  return meter
}

export function endStream (meter: StreamMeter, reason: StreamEndReason): void {
  unblocked(meter)
  channels.streamEnd.publish({ meter, reason })
}

/** The write was not taken at once: the source is paused until the socket drains. */
export function blocked (meter: StreamMeter): void {
  meter.waits++
  meter.blockedAt = performance.now()
}

export function unblocked (meter: StreamMeter): void {
  if (meter.blockedAt === 0) return
  meter.blockedMs += performance.now() - meter.blockedAt
  meter.blockedAt = 0
}

/** How many frames a yielded message puts on the wire: one, or those a pre-encoded frame holds. */
export function eventsIn (value: SseInput): number {
  return value instanceof SseFrame ? framesIn(value.text) : 1
}

// The text of a hub flush is the same string for every subscriber that keeps up: count it once.
let lastText = ''
let lastCount = 0

/** The frames in encoded text: every frame the encoder writes ends with a blank line, none has one inside. */
export function framesIn (text: string): number {
  if (text === lastText) return lastCount
  let n = 0
  for (let i = text.indexOf('\n\n'); i !== -1; i = text.indexOf('\n\n', i + 2)) n++
  lastText = text
  lastCount = n
  return n
}

// Likewise the text of one write: a hub flush hands every subscriber that keeps up the same string.
let lastWrite = ''
let lastBytes = 0

/** UTF-8 bytes of a write's text (HTTP/2 only: see `StreamMeter.bytes`). */
export function bytesIn (text: string): number {
  if (text !== lastWrite) {
    lastWrite = text
    lastBytes = Buffer.byteLength(text)
  }
  return lastBytes
}

/** The bytes a stream has written so far. */
export function bytesOf (meter: StreamMeter): number {
  return meter.socket === undefined ? meter.bytes : meter.socket.bytesWritten - meter.socketBase
}

/** Connections whose stream ended because their hub subscriber overflowed (not a client leaving). */
export const overflowed = new WeakSet<object>()

/** A hub as its reports name it; `stats` is read when metrics are scraped. */
export interface HubMeter {
  readonly backplane: 'memory' | 'redis'
  readonly stats: () => { state: string, subscribers: number, queuedBytes: number }
}

/** Publishes `message` on `ch` if anyone listens; `message` is built only then. */
export function report<T> (ch: { hasSubscribers: boolean, publish: (m: unknown) => void }, message: () => T): void {
  if (ch.hasSubscribers) ch.publish(message())
}

/** One LLM generation: an upstream chat completion, from the request to the end of its stream. */
export interface LlmMeter {
  /** `performance.now()` when the request was sent. */
  readonly startedAt: number
  /** When the first token arrived, or 0. */
  firstTokenAt: number
  /** When the last token arrived, or 0. */
  lastTokenAt: number
  /** Tokens streamed: the upstream's `usage.completion_tokens` when it says, else content chunks. */
  tokens: number
}

/** A meter for a new generation, or undefined when nobody listens. */
export function meterLlm (): LlmMeter | undefined {
  if (!channels.llmStart.hasSubscribers) return undefined
  const meter: LlmMeter = { startedAt: performance.now(), firstTokenAt: 0, lastTokenAt: 0, tokens: 0 }
  channels.llmStart.publish(meter)
  return meter
}

export function llmToken (meter: LlmMeter): void {
  meter.lastTokenAt = performance.now()
  if (meter.tokens++ === 0) {
    meter.firstTokenAt = meter.lastTokenAt
    channels.llmFirstToken.publish(meter)
  }
}

/** The generation ended; `error` is the coded error it failed with, if it did. */
export function llmEnd (meter: LlmMeter, error?: { code?: unknown }): void {
  channels.llmEnd.publish({ meter, error: error === undefined ? undefined : { code: typeof error.code === 'string' ? error.code : 'unknown' } })
}
