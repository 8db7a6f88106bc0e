// One subscription to the hub, for `reply.sse()`. Given to `reply.sse()` it is a push source: the
// stream attaches itself, and while its socket takes what it is given the hub's flush writes the
// shared batch frame straight to it (no iterator step, no promise, no timer per delivery; an idle
// subscriber holds nothing pending). Anywhere else it is an async iterator, parked in `next()`
// while it keeps up. Either way, when it falls behind (socket full, or still replaying) what it
// has not taken yet waits in its own bounded queue, and an overflow applies its policy instead of
// growing the server's memory; once the socket drains, the queue goes out and it is back on the
// direct path.
import { encode, SseFrame } from '../sse/encoder.js'
import { kPushSource, type SsePushSource, type SsePushTarget } from '../sse/stream.js'
import type { HubEntry } from './history.js'
import { channels, report, type HubMeter } from '../metrics/channels.js'

/**
 * What happens when a subscriber's queue overflows:
 * - `disconnect`: end it and call `onOverflow` (the route destroys the socket); its `EventSource`
 *   reconnects with `Last-Event-ID` and is replayed from history. Nothing is lost while history
 *   covers the gap.
 * - `drop`: drop the oldest queued messages and send `event: gap` with `{ count }` before the rest.
 * - `conflate`: keep only the newest queued message of each topic (a price per symbol).
 */
export type OverflowPolicy = 'disconnect' | 'drop' | 'conflate'

/** Messages handed to subscribers together: one frame for all of them, shared where possible. */
export interface Part {
  readonly frame: SseFrame
  readonly entries: readonly HubEntry[]
  readonly bytes: number
  readonly lastSeq: number
}

/** What a subscriber needs from its hub. */
export interface SubscriberHost {
  detach: (subscriber: Subscriber) => void
  counters: { overflows: number, dropped: number, conflated: number, queuedBytes: number }
  meter: HubMeter
}

export interface SubscriberLimits {
  maxQueue: number
  maxQueueBytes: number
  /** The most characters one `next()` gathers from the queue and the replay. */
  chunk: number
}

export function partOf (entries: readonly HubEntry[]): Part {
  let text = ''
  let bytes = 0
  for (const entry of entries) { text += entry.text; bytes += entry.bytes }
  return { frame: new SseFrame(text), entries, bytes, lastSeq: entries[entries.length - 1].seq }
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined }
const NONE: readonly HubEntry[] = []

export class Subscriber implements AsyncIterableIterator<SseFrame>, SsePushSource {
  readonly topics: readonly string[]
  /** The same for every subscriber to the same topics: they can share one frame per flush. */
  readonly key: string
  /** The highest seq handed over or queued: nothing at or below it is delivered again. */
  seen: number
  /** The last flush that visited this subscriber (one subscriber may sit in several topics). */
  flushMark = 0
  readonly #host: SubscriberHost
  readonly #limits: SubscriberLimits
  readonly #policy: OverflowPolicy
  readonly #onOverflow: (() => void) | undefined
  readonly #signal: AbortSignal | undefined
  readonly #onAbort: (() => void) | undefined
  // Push mode: the stream this subscriber writes to, and whether its socket said "full".
  #target: SsePushTarget | undefined
  #blocked = false
  #head = ''
  #replay: readonly HubEntry[]
  #replayAt = 0
  #queue: Part[] = []
  #count = 0
  #bytes = 0
  #dropped = 0
  #waiting: ((result: IteratorResult<SseFrame> | Promise<never>) => void) | undefined
  #ended = false
  // Held: live parts queue up but nothing is handed over until `release()` (the Redis hub holds a
  // subscriber while it fetches the replay, so live parts cannot overtake it).
  #held: boolean
  // Set by `fail()`: thrown by the next `next()`, once, after `#lead`.
  #error: unknown
  #lead = ''

  constructor (opts: {
    host: SubscriberHost
    limits: SubscriberLimits
    topics: readonly string[]
    seen: number
    head: string
    replay: readonly HubEntry[]
    policy: OverflowPolicy
    onOverflow: (() => void) | undefined
    signal: AbortSignal | undefined
    held?: boolean
  }) {
    this.#host = opts.host
    this.#limits = opts.limits
    this.topics = opts.topics
    this.key = opts.topics.length === 1 ? opts.topics[0] : [...opts.topics].sort().join('\n')
    this.seen = opts.seen
    this.#head = opts.head
    this.#replay = opts.replay.length === 0 ? NONE : opts.replay
    this.#policy = opts.policy
    this.#onOverflow = opts.onOverflow
    this.#held = opts.held ?? false
    // A listener only when there is a signal: `reply.sse()` ends a push source by `return()`.
    if (opts.signal !== undefined) {
      this.#signal = opts.signal
      this.#onAbort = () => { this.end() }
      opts.signal.addEventListener('abort', this.#onAbort)
    }
  }

  get ended (): boolean { return this.#ended }

  [Symbol.asyncIterator] (): this { return this }

  next (): Promise<IteratorResult<SseFrame>> {
    const frame = this.#take()
    if (frame !== undefined) return Promise.resolve({ done: false, value: frame })
    if (this.#ended) return this.#finish()
    return new Promise((resolve) => { this.#waiting = resolve })
  }

  #finish (): Promise<IteratorResult<SseFrame>> {
    if (this.#lead !== '') {
      const lead = new SseFrame(this.#lead)
      this.#lead = ''
      return Promise.resolve({ done: false, value: lead })
    }
    const error = this.#error
    this.#error = undefined
    return error === undefined ? Promise.resolve(DONE) : Promise.reject(error)
  }

  return (): Promise<IteratorResult<SseFrame>> {
    this.end()
    return Promise.resolve(DONE)
  }

  /** Gathers what is waiting (control frames, replay, queue) into one frame, up to a chunk. */
  #take (): SseFrame | undefined {
    if (this.#ended || this.#held) return undefined
    let text = this.#head
    this.#head = ''
    if (this.#dropped > 0) {
      text += encode({ event: 'gap', data: { count: this.#dropped } })
      this.#dropped = 0
    }
    const { chunk } = this.#limits
    const replay = this.#replay
    while (this.#replayAt < replay.length && text.length < chunk) text += replay[this.#replayAt++].text
    if (this.#replayAt === replay.length && replay.length > 0) { this.#replay = NONE; this.#replayAt = 0 }
    const queue = this.#queue
    if (queue.length > 0 && text.length < chunk) {
      // A lone queued part goes out as the very frame other subscribers got.
      if (text === '' && (queue.length === 1 || queue[0].frame.text.length >= chunk)) return this.#unqueue(1)[0].frame
      let n = 0
      let size = text.length
      while (n < queue.length && size < chunk) size += queue[n++].frame.text.length
      for (const part of this.#unqueue(n)) text += part.frame.text
    }
    return text === '' ? undefined : new SseFrame(text)
  }

  #unqueue (n: number): Part[] {
    const parts = this.#queue.splice(0, n)
    for (const part of parts) {
      this.#count -= part.entries.length
      this.#bytes -= part.bytes
      this.#host.counters.queuedBytes -= part.bytes
    }
    return parts
  }

  // ── push mode (reply.sse) ──

  /** Attaches the stream: from now on frames are written to it, starting with any replay. */
  [kPushSource] (target: SsePushTarget): void {
    if (this.#ended) {
      // Ended before the stream attached (hub closed, or failed): say so the same way.
      const error = this.#error
      this.#error = undefined
      if (this.#lead !== '') target.write(new SseFrame(this.#lead))
      this.#lead = ''
      if (error !== undefined) target.error(error)
      else target.close()
      return
    }
    this.#target = target
    this.#pushOut()
  }

  /** The stream's socket drained: what waited in the queue goes out, then live is direct again. */
  resume (): void {
    if (this.#target === undefined || this.#ended) return
    this.#blocked = false
    this.#pushOut()
  }

  /** Writes what is waiting (control frames, replay, queue), a chunk at a time, while the socket takes it. */
  #pushOut (): void {
    const target = this.#target as SsePushTarget
    while (!this.#blocked) {
      const frame = this.#take()
      if (frame === undefined) return
      if (!target.write(frame)) this.#blocked = true
    }
  }

  /** Called by the hub's flush; never blocks, never throws. */
  deliver (part: Part): void {
    if (this.#ended) return
    this.seen = part.lastSeq
    const target = this.#target
    if (target !== undefined) {
      // Keeping up: nothing is waiting (it would have been written on attach, release or resume),
      // so the shared frame goes to the socket now, inside the flush.
      if (!this.#blocked && !this.#held && this.#queue.length === 0) {
        if (!target.write(part.frame)) this.#blocked = true
        return
      }
    } else if (this.#waiting !== undefined && !this.#held) {
      const waiting = this.#waiting
      // Parked in next(): nothing else is pending, so it takes the shared frame as is.
      this.#waiting = undefined
      waiting({ done: false, value: part.frame })
      return
    }
    this.#queue.push(part)
    this.#count += part.entries.length
    this.#bytes += part.bytes
    this.#host.counters.queuedBytes += part.bytes
    if (this.#count > this.#limits.maxQueue || this.#bytes > this.#limits.maxQueueBytes) this.#overflow()
  }

  #overflow (): void {
    const { maxQueue, maxQueueBytes } = this.#limits
    const counters = this.#host.counters
    if (this.#policy === 'drop') {
      // Down to half the limits, so a reader that stays slow gets one gap now and then, not one per message.
      let dropped = 0
      let n = 0
      let count = this.#count
      let bytes = this.#bytes
      while (n < this.#queue.length && (count > maxQueue / 2 || bytes > maxQueueBytes / 2)) {
        const part = this.#queue[n++]
        count -= part.entries.length
        bytes -= part.bytes
        dropped += part.entries.length
      }
      this.#unqueue(n)
      this.#dropped += dropped
      counters.dropped += dropped
      report(channels.hubOverflow, () => ({ hub: this.#host.meter, action: 'gap', messages: dropped }))
      return
    }
    if (this.#policy === 'conflate') {
      const newest = new Map<string, HubEntry>()
      for (const part of this.#queue) for (const entry of part.entries) newest.set(entry.topic, entry)
      const kept = [...newest.values()].sort((a, b) => a.seq - b.seq)
      const before = this.#count
      this.#unqueue(this.#queue.length)
      const part = partOf(kept)
      this.#queue.push(part)
      this.#count = kept.length
      this.#bytes = part.bytes
      counters.queuedBytes += part.bytes
      counters.conflated += before - kept.length
      report(channels.hubOverflow, () => ({ hub: this.#host.meter, action: 'conflate', messages: before - kept.length }))
      if (this.#count <= maxQueue && this.#bytes <= maxQueueBytes) return
      // More topics than the queue may hold even one message each: nothing left but to disconnect.
    }
    counters.overflows++
    report(channels.hubOverflow, () => ({ hub: this.#host.meter, action: 'disconnect', messages: this.#count }))
    // A reader this far behind has a full socket: a stream waiting for `drain` would never see the
    // subscription end, so the connection is destroyed (its EventSource reconnects and replays).
    const target = this.#target
    this.#target = undefined
    this.end()
    if (target !== undefined) target.destroy()
    else this.#onOverflow?.()
  }

  /**
   * Lets a held subscriber go: `head` and `replay` come first, then what was queued meanwhile
   * with a seq above `after` (anything at or below it is in the replay, or predates the
   * subscription), merged in seq order with `extra` (entries fetched to close a gap).
   */
  release (head: string, replay: readonly HubEntry[], after: number, extra: readonly HubEntry[] = []): void {
    if (this.#ended || !this.#held) return
    this.#held = false
    this.#head = head
    this.#replay = replay
    let queued = this.#unqueue(this.#queue.length).flatMap((part) => part.entries).filter((e) => e.seq > after)
    if (extra.length > 0) {
      const bySeq = new Map<number, HubEntry>()
      for (const e of [...queued, ...extra]) if (e.seq > after) bySeq.set(e.seq, e)
      queued = [...bySeq.values()].sort((a, b) => a.seq - b.seq)
    }
    this.seen = Math.max(this.seen, after, queued.length > 0 ? queued[queued.length - 1].seq : 0)
    if (queued.length > 0) {
      const part = partOf(queued)
      this.#queue.push(part)
      this.#count += queued.length
      this.#bytes += part.bytes
      this.#host.counters.queuedBytes += part.bytes
    }
    if (this.#target !== undefined) {
      this.#pushOut()
      return
    }
    const waiting = this.#waiting
    const frame = waiting === undefined ? undefined : this.#take()
    if (frame !== undefined) {
      this.#waiting = undefined
      waiting?.({ done: false, value: frame })
    }
  }

  /**
   * Ends the subscription with an error (its backing store went away): the consumer gets `lead`
   * (a frame such as `retry: 2000`), then the error from `next()`; `reply.sse()` turns that into
   * an `event: error` and ends the stream, so the client reconnects.
   */
  fail (error: unknown, lead = ''): void {
    if (this.#ended) return
    const target = this.#target
    if (target !== undefined) {
      this.#target = undefined
      this.end()
      if (lead !== '') target.write(new SseFrame(lead))
      target.error(error)
      return
    }
    this.#error = error
    this.#lead = lead
    const waiting = this.#waiting
    this.#waiting = undefined
    this.end()
    waiting?.(this.#finish() as Promise<never>)
  }

  /** Stops the subscription: the queue is released, and the stream or the iterator finishes. */
  end (): void {
    if (this.#ended) return
    this.#ended = true
    this.#unqueue(this.#queue.length)
    this.#replay = NONE
    this.#head = ''
    if (this.#onAbort !== undefined) this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#host.detach(this)
    const target = this.#target
    this.#target = undefined
    // `close()` is a no-op when the stream itself ended us (through `return()`).
    target?.close()
    const waiting = this.#waiting
    this.#waiting = undefined
    waiting?.(DONE)
  }
}
