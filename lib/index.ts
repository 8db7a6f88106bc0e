// Plugin entry: `app.register(sse)` decorates every reply with `reply.sse(source, options)` and
// every request with `request.lastEventId`.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { SSE_ERR_INVALID_LAST_EVENT_ID, SSE_ERR_INVALID_OPTION, SSE_ERR_TOO_MANY_STREAMS } from './errors.js'
import {
  SseStream,
  type ResolvedStreamOptions,
  type SseSource,
  type SseStreamOptions,
  type StreamRegistry
} from './sse/stream.js'

export interface SsePluginOptions extends SseStreamOptions {
  /**
   * The longest `Last-Event-ID` (header or `lastEventId` query parameter) accepted; a longer one
   * is answered with 400 before any source runs.
   * @default 256
   */
  maxLastEventIdLength?: number
  /**
   * The most streams this instance keeps open at once; one more is answered 503 with
   * `retry-after` (`SSE_ERR_TOO_MANY_STREAMS`), so a load balancer or the client tries elsewhere
   * or later. `0` means no cap.
   * @default 0
   */
  maxStreams?: number
}

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Streams `source` as `text/event-stream`. Settles when the stream is over: the source is
     * done, the client went away, or the server is closing. Never rejects for a source error:
     * before the first frame it becomes an HTTP error, after it an `error` event.
     */
    // NoInfer: `data` of different shapes in one source must not make TypeScript pick the first
    // one as T; pass T explicitly (`reply.sse<Quote>(...)`) to have every message checked.
    sse<T = unknown>(source: SseSource<NoInfer<T>>, options?: SseStreamOptions): Promise<void>
  }
  interface FastifyInstance {
    /** How many event streams `reply.sse()` has open right now (for health checks and metrics). */
    readonly sseOpenStreams: number
  }
  interface FastifyRequest {
    /**
     * The `Last-Event-ID` header, else the `lastEventId` query parameter (an `EventSource`'s first
     * request cannot set headers); `undefined` when neither is given. Reading a malformed one
     * throws a 400 error.
     */
    readonly lastEventId: string | undefined
  }
}

const DEFAULT_HEARTBEAT_MS = 15_000
const DEFAULT_HIGH_WATER_MARK = 16 * 1024
const DEFAULT_MAX_LAST_EVENT_ID = 256
// A timer longer than this fires at once (Node clamps it to 1 ms).
const MAX_TIMER_MS = 2 ** 31 - 1
// Control characters would be refused by the encoder anyway; non-ASCII cannot have come from us.
const BAD_LAST_EVENT_ID = /[^\x20-\x7e]/
const kLastEventId = Symbol('fastify-sse-stream.lastEventId')
// Seconds a client turned away by `maxStreams` is asked to wait.
const TOO_MANY_RETRY_AFTER_S = 5

function checkInteger (name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SSE_ERR_INVALID_OPTION(name, `expected an integer from ${min} to ${max}, got ${String(value)}`)
  }
  return value
}

/** Validates options over defaults; never changes the caller's object. */
export function resolveOptions (opts: SseStreamOptions, defaults?: ResolvedStreamOptions): ResolvedStreamOptions {
  const heartbeatMs = opts.heartbeatMs ?? defaults?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS
  const retryMs = opts.retryMs ?? defaults?.retryMs
  const serialize = opts.serialize ?? defaults?.serialize ?? JSON.stringify
  const highWaterMark = opts.highWaterMark ?? defaults?.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
  checkInteger('heartbeatMs', heartbeatMs, 0, MAX_TIMER_MS)
  if (retryMs !== undefined) checkInteger('retryMs', retryMs, 0, Number.MAX_SAFE_INTEGER)
  if (typeof serialize !== 'function') throw new SSE_ERR_INVALID_OPTION('serialize', 'expected a function')
  checkInteger('highWaterMark', highWaterMark, 1, 64 * 1024 * 1024)
  return { heartbeatMs, retryMs, serialize, highWaterMark }
}

function readLastEventId (request: FastifyRequest, maxLength: number): string | undefined {
  let value: string | string[] | undefined = request.headers['last-event-id']
  if (Array.isArray(value)) value = value[0]
  if (value === undefined || value === '') {
    const url = request.raw.url ?? ''
    const q = url.indexOf('?')
    value = q === -1 ? undefined : new URLSearchParams(url.slice(q + 1)).get('lastEventId') ?? undefined
  }
  if (value === undefined || value === '') return undefined
  if (value.length > maxLength) throw new SSE_ERR_INVALID_LAST_EVENT_ID(`longer than ${maxLength} characters`)
  if (BAD_LAST_EVENT_ID.test(value)) throw new SSE_ERR_INVALID_LAST_EVENT_ID('only printable ASCII is allowed')
  return value
}

const plugin: FastifyPluginAsync<SsePluginOptions> = async (fastify, opts) => {
  const defaults = resolveOptions(opts)
  const maxLastEventIdLength = checkInteger('maxLastEventIdLength',
    opts.maxLastEventIdLength ?? DEFAULT_MAX_LAST_EVENT_ID, 1, 64 * 1024)
  const maxStreams = checkInteger('maxStreams', opts.maxStreams ?? 0, 0, Number.MAX_SAFE_INTEGER)
  const registry: StreamRegistry = { open: new Set() }

  fastify.decorateRequest('lastEventId', {
    getter (this: FastifyRequest & { [kLastEventId]?: string | null }) {
      let cached = this[kLastEventId]
      if (cached === undefined) {
        cached = readLastEventId(this, maxLastEventIdLength) ?? null
        this[kLastEventId] = cached
      }
      return cached ?? undefined
    }
  })

  fastify.decorate('sseOpenStreams', { getter: () => registry.open.size })

  fastify.decorateReply('sse', function (this: FastifyReply, source: SseSource, options?: SseStreamOptions) {
    const resolved = options === undefined ? defaults : resolveOptions(options, defaults)
    if (maxStreams !== 0 && registry.open.size >= maxStreams) {
      this.header('retry-after', String(TOO_MANY_RETRY_AFTER_S)).send(new SSE_ERR_TOO_MANY_STREAMS(maxStreams))
      return Promise.resolve()
    }
    return new SseStream(this, resolved, registry).run(source)
  })

  // End open streams before the server stops accepting, or `close()` would wait on them forever.
  fastify.addHook('preClose', async () => {
    await Promise.all([...registry.open].map((stream) => stream.shutdown()))
  })
}

export const fastifySseStream = fp(plugin, { fastify: '5.x', name: 'fastify-sse-stream' })
export default fastifySseStream

export { encode, encodeComment, encodeData, encodeFrame, SseFrame } from './sse/encoder.js'
export { createHub } from './hub/hub.js'
export type { Hub, HubMessage, HubOptions, HubStats, SubscribeOptions, OverflowPolicy } from './hub/hub.js'
export { hubSource, type HubSourceOptions } from './hub/source.js'
export { createRedisHub, type RedisHubOptions } from './redis/hub.js'
export { createGenerations, GenerationStore, parseEventId } from './generations/store.js'
export type { Generations, GenerationStoreOptions, Producer, GenerationEvent } from './generations/store.js'
export { createRedisGenerations, type RedisGenerationsOptions } from './redis/generations.js'
export type { Serializer, SseInput, SseMessage } from './sse/encoder.js'
export type { SseContext, SseSource, SseStreamOptions } from './sse/stream.js'
export * as errors from './errors.js'
