// A hub subscription as a `reply.sse()` source: resumes from the request's Last-Event-ID and is a
// push source, so the stream attaches to it and live frames are written inside the hub's flush.
// It takes no signal and no overflow callback: the stream ends it with `return()`, and a reader
// whose queue overflows has its connection destroyed through the stream (lib/hub/subscriber.ts).
// An idle connection then holds the subscriber and the stream, and nothing else of ours (bench S3).
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { SseFrame } from '../sse/encoder.js'
import type { Hub, SubscribeOptions } from './hub.js'
import { kSseOpen, type SseContext, type SseSource } from '../sse/stream.js'
import { SSE_ERR_NOT_REGISTERED } from '../errors.js'

export type HubSourceOptions = Omit<SubscribeOptions, 'lastEventId' | 'signal' | 'onOverflow'>

/** `reply.sse(hubSource(hub, { topics: 'news' }))`. */
export function hubSource (hub: Hub, options: HubSourceOptions): (ctx: SseContext) => AsyncIterable<SseFrame> {
  return (ctx) => hub.subscribe({ ...options, lastEventId: ctx.lastEventId })
}

/**
 * A whole route handler for a hub subscription: `app.get('/news', hubRoute(hub, { topics: 'news' }))`.
 * `options` may be a function of the request (topics from the query, say); what it throws is
 * answered like any source error before the stream starts (its status, or 500, with a JSON body).
 *
 * It opens the stream without handing Fastify a pending promise: Fastify would keep the request
 * and reply referenced until the stream ends, about 0.6 KB for every idle subscriber (bench S3).
 * `reply.sse(hubSource(...))` streams the same frames, for a handler that does more around them.
 */
export function hubRoute (hub: Hub, options: HubSourceOptions | ((request: FastifyRequest) => HubSourceOptions)): (request: FastifyRequest, reply: FastifyReply) => void {
  return function subscribe (request, reply) {
    const open = (reply as any)[kSseOpen] as ((source: SseSource) => void) | undefined
    if (typeof open !== 'function') throw new SSE_ERR_NOT_REGISTERED('hubRoute()')
    open.call(reply, (ctx: SseContext) => hub.subscribe({
      ...(typeof options === 'function' ? options(request) : options),
      lastEventId: ctx.lastEventId
    }))
  }
}
