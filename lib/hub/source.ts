// A hub subscription as a `reply.sse()` source: resumes from the request's Last-Event-ID, ends with
// the stream, and closes the connection of a subscriber that overflows its queue.
import type { SseFrame } from '../sse/encoder.js'
import type { Hub, SubscribeOptions } from './hub.js'
import type { SseContext } from '../sse/stream.js'
import { overflowed } from '../metrics/channels.js'

export type HubSourceOptions = Omit<SubscribeOptions, 'lastEventId' | 'signal' | 'onOverflow'>

/** `reply.sse(hubSource(hub, { topics: 'news' }))`. */
export function hubSource (hub: Hub, options: HubSourceOptions): (ctx: SseContext) => AsyncIterable<SseFrame> {
  return ({ signal, lastEventId, reply }) => hub.subscribe({
    ...options,
    lastEventId,
    signal,
    // A subscriber that overflowed is one whose socket stopped taking data, so the stream is stuck
    // waiting for `drain` and would never see the iterator end: destroying the socket is the only
    // way to free it. Its EventSource reconnects with Last-Event-ID and is replayed from history.
    onOverflow: () => { overflowed.add(reply.raw); reply.raw.destroy() }
  })
}
