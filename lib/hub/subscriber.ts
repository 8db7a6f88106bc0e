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

// A subscriber's flags and overflow policy, as bits of one small integer: thousands of idle
// subscribers each hold a handful of fields and nothing else (bench S3).
const BLOCKED = 1 // push mode: the stream's socket said "full"
const ENDED = 2
// Held: live parts queue up but nothing is handed over until `release()` (the Redis hub holds a
// subscriber while it fetches the replay, so live parts cannot overtake it).
const HELD = 4
const POLICY_SHIFT = 3
const POLICIES: readonly OverflowPolicy[] = ['disconnect', 'drop', 'conflate']

/** What waits for a subscriber that is behind. */
interface Queue {
  parts: Part[]
  /** Messages in `parts`. */
  count: number
  bytes: number
}

/** What goes out before the queue: control frames (`reset`) and history being replayed. */
interface Replay {
  head: string
  entries: readonly HubEntry[]
  at: number
}

/** Only for a subscriber used as an async iterator, or one that failed. */
interface IteratorState {
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  onOverflow: (() => void) | undefined
  waiting: ((result: IteratorResult<SseFrame> | Promise<never>) => void) | undefined
  // Set by `fail()`: thrown by the next `next()`, once, after `lead`.
  error: unknown
  lead: string
}

/**
 * Every subscriber of a hub, gathered from its topics (each subscriber once). A hub keeps its
 * subscribers only in the topics' sets and counts them, rather than in a Set of all of them too:
 * one Set entry less per idle connection (bench S3). For the rare walks over all: close, outage.
 */
export function allSubscribers (topics: Iterable<{ readonly subscribers: ReadonlySet<Subscriber> }>): Set<Subscriber> {
  const all = new Set<Subscriber>()
  for (const topic of topics) for (const sub of topic.subscribers) all.add(sub)
  return all
}

export class Subscriber implements AsyncIterableIterator<SseFrame>, SsePushSource {
  /** The same for every subscriber to the same topics: they can share one frame per flush. */
  readonly key: string
  /** The highest seq handed over or queued: nothing at or below it is delivered again. */
  seen: number
  /** The last flush that visited this subscriber (one subscriber may sit in several topics). */
  flushMark = 0
  readonly #host: SubscriberHost
  readonly #limits: SubscriberLimits
  // Only for several topics; one topic is the key itself.
  readonly #topics: readonly string[] | undefined
  // Push mode: the stream this subscriber writes to.
  #target: SsePushTarget | undefined
  #state: number
  #queue: Queue | undefined
  #dropped = 0
  #replay: Replay | undefined
  #iter: IteratorState | undefined

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
    if (opts.topics.length === 1) this.key = opts.topics[0]
    else {
      this.#topics = opts.topics
      this.key = [...opts.topics].sort().join('\n')
    }
    this.seen = opts.seen
    this.#state = (POLICIES.indexOf(opts.policy) << POLICY_SHIFT) | (opts.held === true ? HELD : 0)
    this.#setReplay(opts.head, opts.replay)
    if (opts.onOverflow !== undefined || opts.signal !== undefined) {
      const iter = this.#iterState()
      iter.onOverflow = opts.onOverflow
      // A listener only when there is a signal: `reply.sse()` ends a push source by `return()`.
      if (opts.signal !== undefined) {
        iter.signal = opts.signal
        iter.onAbort = () => { this.end() }
        opts.signal.addEventListener('abort', iter.onAbort)
      }
    }
  }

  /** The topics subscribed to. */
  get topics (): readonly string[] { return this.#topics ?? [this.key] }

  get ended (): boolean { return (this.#state & ENDED) !== 0 }

  get #policy (): OverflowPolicy { return POLICIES[this.#state >> POLICY_SHIFT] }

  #iterState (): IteratorState {
    return (this.#iter ??= { signal: undefined, onAbort: undefined, onOverflow: undefined, waiting: undefined, error: undefined, lead: '' })
  }

  #setReplay (head: string, entries: readonly HubEntry[]): void {
    this.#replay = head === '' && entries.length === 0 ? undefined : { head, entries, at: 0 }
  }

  [Symbol.asyncIterator] (): this { return this }

  next (): Promise<IteratorResult<SseFrame>> {
    const frame = this.#take()
    if (frame !== undefined) return Promise.resolve({ done: false, value: frame })
    if (this.ended) return this.#finish()
    return new Promise((resolve) => { this.#iterState().waiting = resolve })
  }

  #finish (): Promise<IteratorResult<SseFrame>> {
    const iter = this.#iter
    if (iter === undefined) return Promise.resolve(DONE)
    if (iter.lead !== '') {
      const lead = new SseFrame(iter.lead)
      iter.lead = ''
      return Promise.resolve({ done: false, value: lead })
    }
    const error = iter.error
    iter.error = undefined
    return error === undefined ? Promise.resolve(DONE) : Promise.reject(error)
  }

  return (): Promise<IteratorResult<SseFrame>> {
    this.end()
    return Promise.resolve(DONE)
  }

  /** Gathers what is waiting (control frames, replay, queue) into one frame, up to a chunk. */
  #take (): SseFrame | undefined {
    if ((this.#state & (ENDED | HELD)) !== 0) return undefined
    let text = ''
    const replay = this.#replay
    if (replay !== undefined) {
      text = replay.head
      replay.head = ''
    }
    if (this.#dropped > 0) {
      text += encode({ event: 'gap', data: { count: this.#dropped } })
      this.#dropped = 0
    }
    const { chunk } = this.#limits
    if (replay !== undefined) {
      const entries = replay.entries
      while (replay.at < entries.length && text.length < chunk) text += entries[replay.at++].text
      if (replay.at === entries.length) this.#replay = undefined
    }
    const queue = this.#queue
    if (queue !== undefined && text.length < chunk) {
      const parts = queue.parts
      // A lone queued part goes out as the very frame other subscribers got.
      if (text === '' && (parts.length === 1 || parts[0].frame.text.length >= chunk)) return this.#unqueue(1)[0].frame
      let n = 0
      let size = text.length
      while (n < parts.length && size < chunk) size += parts[n++].frame.text.length
      for (const part of this.#unqueue(n)) text += part.frame.text
    }
    return text === '' ? undefined : new SseFrame(text)
  }

  #enqueue (part: Part): void {
    const queue = (this.#queue ??= { parts: [], count: 0, bytes: 0 })
    queue.parts.push(part)
    queue.count += part.entries.length
    queue.bytes += part.bytes
    this.#host.counters.queuedBytes += part.bytes
  }

  #unqueue (n: number): Part[] {
    const queue = this.#queue
    if (queue === undefined) return []
    const parts = queue.parts.splice(0, n)
    for (const part of parts) {
      queue.count -= part.entries.length
      queue.bytes -= part.bytes
      this.#host.counters.queuedBytes -= part.bytes
    }
    if (queue.parts.length === 0) this.#queue = undefined
    return parts
  }

  // ── push mode (reply.sse) ──

  /** Attaches the stream: from now on frames are written to it, starting with any replay. */
  [kPushSource] (target: SsePushTarget): void {
    if (this.ended) {
      // Ended before the stream attached (hub closed, or failed): say so the same way.
      const iter = this.#iter
      const error = iter?.error
      if (iter !== undefined) {
        iter.error = undefined
        if (iter.lead !== '') target.write(new SseFrame(iter.lead))
        iter.lead = ''
      }
      if (error !== undefined) target.error(error)
      else target.close()
      return
    }
    this.#target = target
    this.#pushOut()
  }

  /** The stream's socket drained: what waited in the queue goes out, then live is direct again. */
  resume (): void {
    if (this.#target === undefined || this.ended) return
    this.#state &= ~BLOCKED
    this.#pushOut()
  }

  /** Writes what is waiting (control frames, replay, queue), a chunk at a time, while the socket takes it. */
  #pushOut (): void {
    const target = this.#target as SsePushTarget
    while ((this.#state & BLOCKED) === 0) {
      const frame = this.#take()
      if (frame === undefined) return
      if (!target.write(frame)) this.#state |= BLOCKED
    }
  }

  /** Called by the hub's flush; never blocks, never throws. */
  deliver (part: Part): void {
    if (this.ended) return
    this.seen = part.lastSeq
    const target = this.#target
    if (target !== undefined) {
      // Keeping up: nothing is waiting (it would have been written on attach, release or resume),
      // so the shared frame goes to the socket now, inside the flush.
      if ((this.#state & (BLOCKED | HELD)) === 0 && this.#queue === undefined) {
        if (!target.write(part.frame)) this.#state |= BLOCKED
        return
      }
    } else if (this.#iter?.waiting !== undefined && (this.#state & HELD) === 0) {
      const iter = this.#iter
      const waiting = iter.waiting as (result: IteratorResult<SseFrame>) => void
      // Parked in next(): nothing else is pending, so it takes the shared frame as is.
      iter.waiting = undefined
      waiting({ done: false, value: part.frame })
      return
    }
    this.#enqueue(part)
    const queue = this.#queue as Queue
    if (queue.count > this.#limits.maxQueue || queue.bytes > this.#limits.maxQueueBytes) this.#overflow()
  }

  #overflow (): void {
    const { maxQueue, maxQueueBytes } = this.#limits
    const counters = this.#host.counters
    const policy = this.#policy
    const queue = this.#queue as Queue
    if (policy === 'drop') {
      // Down to half the limits, so a reader that stays slow gets one gap now and then, not one per message.
      let dropped = 0
      let n = 0
      let count = queue.count
      let bytes = queue.bytes
      while (n < queue.parts.length && (count > maxQueue / 2 || bytes > maxQueueBytes / 2)) {
        const part = queue.parts[n++]
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
    if (policy === 'conflate') {
      const newest = new Map<string, HubEntry>()
      for (const part of queue.parts) for (const entry of part.entries) newest.set(entry.topic, entry)
      const kept = [...newest.values()].sort((a, b) => a.seq - b.seq)
      const before = queue.count
      this.#unqueue(queue.parts.length)
      this.#enqueue(partOf(kept))
      counters.conflated += before - kept.length
      report(channels.hubOverflow, () => ({ hub: this.#host.meter, action: 'conflate', messages: before - kept.length }))
      const now = this.#queue as Queue
      if (now.count <= maxQueue && now.bytes <= maxQueueBytes) return
      // More topics than the queue may hold even one message each: nothing left but to disconnect.
    }
    counters.overflows++
    report(channels.hubOverflow, () => ({ hub: this.#host.meter, action: 'disconnect', messages: this.#queue?.count ?? 0 }))
    // A reader this far behind has a full socket: a stream waiting for `drain` would never see the
    // subscription end, so the connection is destroyed (its EventSource reconnects and replays).
    const target = this.#target
    const onOverflow = this.#iter?.onOverflow
    this.#target = undefined
    this.end()
    if (target !== undefined) target.destroy()
    else onOverflow?.()
  }

  /**
   * Lets a held subscriber go: `head` and `replay` come first, then what was queued meanwhile
   * with a seq above `after` (anything at or below it is in the replay, or predates the
   * subscription), merged in seq order with `extra` (entries fetched to close a gap).
   */
  release (head: string, replay: readonly HubEntry[], after: number, extra: readonly HubEntry[] = []): void {
    if ((this.#state & (ENDED | HELD)) !== HELD) return
    this.#state &= ~HELD
    this.#setReplay(head, replay)
    let queued = this.#unqueue(this.#queue?.parts.length ?? 0).flatMap((part) => part.entries).filter((e) => e.seq > after)
    if (extra.length > 0) {
      const bySeq = new Map<number, HubEntry>()
      for (const e of [...queued, ...extra]) if (e.seq > after) bySeq.set(e.seq, e)
      queued = [...bySeq.values()].sort((a, b) => a.seq - b.seq)
    }
    this.seen = Math.max(this.seen, after, queued.length > 0 ? queued[queued.length - 1].seq : 0)
    if (queued.length > 0) this.#enqueue(partOf(queued))
    if (this.#target !== undefined) {
      this.#pushOut()
      return
    }
    const iter = this.#iter
    const waiting = iter?.waiting
    const frame = waiting === undefined ? undefined : this.#take()
    if (frame !== undefined) {
      (iter as IteratorState).waiting = undefined
      waiting?.({ done: false, value: frame })
    }
  }

  /**
   * Ends the subscription with an error (its backing store went away): the consumer gets `lead`
   * (a frame such as `retry: 2000`), then the error from `next()`; `reply.sse()` turns that into
   * an `event: error` and ends the stream, so the client reconnects.
   */
  fail (error: unknown, lead = ''): void {
    if (this.ended) return
    const target = this.#target
    if (target !== undefined) {
      this.#target = undefined
      this.end()
      if (lead !== '') target.write(new SseFrame(lead))
      target.error(error)
      return
    }
    const iter = this.#iterState()
    iter.error = error
    iter.lead = lead
    const waiting = iter.waiting
    iter.waiting = undefined
    this.end()
    waiting?.(this.#finish() as Promise<never>)
  }

  /** Stops the subscription: the queue is released, and the stream or the iterator finishes. */
  end (): void {
    if (this.ended) return
    this.#state |= ENDED
    this.#unqueue(this.#queue?.parts.length ?? 0)
    this.#replay = undefined
    const iter = this.#iter
    if (iter?.onAbort !== undefined) iter.signal?.removeEventListener('abort', iter.onAbort)
    this.#host.detach(this)
    const target = this.#target
    this.#target = undefined
    // `close()` is a no-op when the stream itself ended us (through `return()`).
    target?.close()
    if (iter !== undefined) {
      const waiting = iter.waiting
      iter.waiting = undefined
      waiting?.(DONE)
    }
  }
}
