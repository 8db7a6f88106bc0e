// Plugin entry: `app.register(sse)` decorates every reply with `reply.sse(source, options)` and
// every request with `request.lastEventId`.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { SSE_ERR_INVALID_LAST_EVENT_ID, SSE_ERR_TOO_MANY_STREAMS } from './errors.js'
import { integerOption } from './internal/integer-option.js'
import { resolveOptions } from './sse/options.js'
import { kSseOpen, SseStream, type SseSource, type SseStreamOptions } from './sse/stream.js'
import { StreamRegistry } from './sse/registry.js'

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

const DEFAULT_MAX_LAST_EVENT_ID = 256
// Control characters would be refused by the encoder anyway; non-ASCII cannot have come from us.
const BAD_LAST_EVENT_ID = /[^\x20-\x7e]/
const kLastEventId = Symbol('fastify-sse-stream.lastEventId')
// Seconds a client turned away by `maxStreams` is asked to wait.
const TOO_MANY_RETRY_AFTER_S = 5

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
  const maxLastEventIdLength = integerOption('maxLastEventIdLength', opts.maxLastEventIdLength, DEFAULT_MAX_LAST_EVENT_ID, 1, 64 * 1024)
  const maxStreams = integerOption('maxStreams', opts.maxStreams, 0, 0)
  const registry = new StreamRegistry<SseStream>()

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

  /** The stream for a `reply.sse()` call, or undefined when `maxStreams` turned it away (answered 503). */
  function streamFor (reply: FastifyReply, options: SseStreamOptions | undefined): SseStream | undefined {
    const resolved = options === undefined ? defaults : resolveOptions(options, defaults)
    if (maxStreams !== 0 && registry.open.size >= maxStreams) {
      reply.header('retry-after', String(TOO_MANY_RETRY_AFTER_S)).send(new SSE_ERR_TOO_MANY_STREAMS(maxStreams))
      return undefined
    }
    return new SseStream(reply, resolved, registry)
  }

  fastify.decorateReply('sse', function (this: FastifyReply, source: SseSource, options?: SseStreamOptions) {
    return streamFor(this, options)?.run(source) ?? Promise.resolve()
  })
  fastify.decorateReply(kSseOpen, function (this: FastifyReply, source: SseSource, options?: SseStreamOptions) {
    streamFor(this, options)?.open(source)
  })

  // End open streams before the server stops accepting, or `close()` would wait on them forever.
  fastify.addHook('preClose', async () => {
    await Promise.all([...registry.open].map((stream) => stream.shutdown()))
  })
}

export const fastifySseStream = fp(plugin, { fastify: '5.x', name: 'fastify-sse-stream' })
export default fastifySseStream

// `.` is the plugin, the encoder and the plugin's errors; every other part is a subpath of its own
// (`./hub`, `./generations`, `./redis`, `./client`, `./events`, `./logs`), so that importing the
// plugin loads neither Redis nor OpenAI nor anything a user did not ask for.
export { encode, encodeComment, encodeData, encodeFrame, SseFrame } from './sse/encoder.js'
export type { Serializer, SseInput, SseMessage } from './sse/encoder.js'
export type { SseContext, SseSource, SseStreamOptions } from './sse/stream.js'
export * as errors from './errors.js'
