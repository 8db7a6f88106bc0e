// A hub subscription as a `reply.sse()` source: resumes from the request's Last-Event-ID and is a
// push source, so the stream attaches to it and live frames are written inside the hub's flush.
// It takes no signal and no overflow callback: the stream ends it with `return()`, and a reader
// whose queue overflows has its connection destroyed through the stream (lib/hub/subscriber.ts).
// An idle connection then holds the subscriber and the stream, and nothing else of ours (bench S3).
import type { SseFrame } from '../sse/encoder.js'
import type { Hub, SubscribeOptions } from './hub.js'
import type { SseContext } from '../sse/stream.js'

export type HubSourceOptions = Omit<SubscribeOptions, 'lastEventId' | 'signal' | 'onOverflow'>

/** `reply.sse(hubSource(hub, { topics: 'news' }))`. */
export function hubSource (hub: Hub, options: HubSourceOptions): (ctx: SseContext) => AsyncIterable<SseFrame> {
  return (ctx) => hub.subscribe({ ...options, lastEventId: ctx.lastEventId })
}
