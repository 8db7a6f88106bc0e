// Broadcast with history: `publish(topic, message)` encodes a message once, keeps it in the topic's
// history and hands it to every subscriber; `subscribe()` replays what a reconnecting client missed
// after its Last-Event-ID, then follows live. Frames published within `lingerMs` are concatenated
// once and the same string goes to every subscriber that is keeping up, which is what makes
// fan-out to thousands cheap (docs/benchmarks.md, "S2 fan-out").
// `Hub` is the seam where a Redis Streams backplane slots in (docs/hub.md).
import { encode, type Serializer, type SseFrame, type SseMessage } from '../sse/encoder.js'
import { SSE_ERR_HUB_UNAVAILABLE, SSE_ERR_INVALID_OPTION } from '../errors.js'
import { integerOption } from '../internal/integer-option.js'
import { TopicHistory, type HubEntry } from './history.js'
import { formatId, newEpoch, parseId } from './id.js'
import { Fanout } from './fanout.js'
import { allSubscribers, Subscriber, type OverflowPolicy, type SubscriberHost } from './subscriber.js'
import { channels, report, type HubMeter } from '../metrics/channels.js'

export type { OverflowPolicy } from './subscriber.js'

/** What may be published: a message without `id` (the hub assigns it). */
export type HubMessage = Omit<SseMessage, 'id'>

export interface HubOptions {
  /**
   * Messages kept per topic for replay after Last-Event-ID. `0` keeps none: every reconnect resets.
   * @default 1000
   */
  historySize?: number
  /**
   * Bytes of encoded frames kept per topic; the oldest go first past either bound.
   * @default 4 MiB
   */
  historyBytes?: number
  /**
   * Messages a subscriber that is behind may have queued before its overflow policy applies.
   * @default 1024
   */
  maxQueue?: number
  /**
   * Bytes a subscriber that is behind may have queued before its overflow policy applies.
   * @default 1 MiB
   */
  maxQueueBytes?: number
  /**
   * How long publishes are gathered into one shared frame before fan-out; `0` flushes on the
   * next turn of the event loop. While more publishes keep arriving the window is extended, up
   * to 5 × this from the first publish: the latency it adds is at most that.
   * @default 1
   */
  lingerMs?: number
  /**
   * A batch reaching this many bytes is fanned out at once, without waiting for `lingerMs`.
   * @default 64 KiB
   */
  maxBatchBytes?: number
  /**
   * Turns non-string `data` into text, once per message.
   * @default JSON.stringify
   */
  serialize?: Serializer
}

export interface SubscribeOptions {
  /** One topic or several; a message of any of them is delivered, in publish order. */
  topics: string | readonly string[]
  /** Where to resume: the `Last-Event-ID` of a reconnecting client (`request.lastEventId`). */
  lastEventId?: string | undefined
  /** Ends the subscription when aborted: pass the stream's `signal`. */
  signal?: AbortSignal
  /**
   * What happens when this subscriber's queue overflows.
   * @default 'disconnect'
   */
  overflow?: OverflowPolicy
  /** Called once when a `disconnect` subscriber overflows: close its connection here. */
  onOverflow?: () => void
  /**
   * After a `reset` (an id it cannot resume from): replay the topics' whole history, or go on
   * live only (for streams whose first frame already carries the state, like a ticker snapshot).
   * @default 'history'
   */
  resetTo?: 'history' | 'live'
}

export interface HubStats {
  /**
   * `up`; `down` while a backing store (Redis) is unreachable: subscribing and publishing fail
   * with SSE_ERR_HUB_UNAVAILABLE until it is back; `closed` after `close()`.
   */
  state: 'up' | 'down' | 'closed'
  epoch: string
  /** The id of the last message published, `''` before the first. */
  lastId: string
  topics: number
  subscribers: number
  published: number
  /** Fan-outs of a gathered batch. */
  flushes: number
  /** Subscribers disconnected for overflowing their queue. */
  overflows: number
  /** Messages dropped for subscribers with the `drop` policy (each reported by a `gap` event). */
  dropped: number
  /** Messages superseded for subscribers with the `conflate` policy. */
  conflated: number
  /** Bytes waiting in the queues of subscribers that are behind, right now. */
  queuedBytes: number
}

/** `stats()` of either hub, from its state and the counters its subscribers keep. */
export function hubStats (
  state: HubStats['state'],
  epoch: string,
  lastId: string,
  sizes: { topics: number, subscribers: number, published: number },
  flushes: number,
  counters: { overflows: number, dropped: number, conflated: number, queuedBytes: number }
): HubStats {
  return {
    state,
    epoch,
    lastId,
    ...sizes,
    flushes,
    overflows: counters.overflows,
    dropped: counters.dropped,
    conflated: counters.conflated,
    queuedBytes: counters.queuedBytes
  }
}

/** A topic's last message as it was published, and the id the hub gave it. */
export interface HubRecord {
  id: string
  message: HubMessage
}

/** The hub's interface: the in-memory hub and a Redis Streams one implement the same. */
export interface Hub {
  /**
   * Publishes to a topic and resolves to the message's id. Never waits on a subscriber; rejects
   * only for a message the encoder refuses or a closed hub.
   */
  publish: (topic: string, message: HubMessage) => Promise<string>
  /** An async iterable of encoded frames for `reply.sse()`: replay after `lastEventId`, then live. */
  subscribe: (options: SubscribeOptions) => AsyncIterableIterator<SseFrame>
  /**
   * The last message published to `topic` (the object given to `publish`; on Redis, as it comes
   * back from JSON), so a route can send a snapshot of the current state without reading frames
   * back. `undefined` when nothing was published, or the topic was forgotten (no history left and
   * nobody subscribed).
   */
  last: (topic: string) => Promise<HubRecord | undefined>
  stats: () => HubStats
  /** Ends every subscription and refuses further publishes. */
  close: () => Promise<void>
}

const NO_ENTRIES: readonly HubEntry[] = []

interface Topic {
  readonly history: TopicHistory
  readonly subscribers: Set<Subscriber>
  last?: HubRecord
}

/** `HubOptions` validated over their defaults: shared by the in-memory and the Redis hub. */
export function resolveHubOptions (opts: HubOptions, minHistory = 0) {
  const historySize = integerOption('historySize', opts.historySize, 1000, minHistory)
  const historyBytes = integerOption('historyBytes', opts.historyBytes, 4 * 1024 * 1024, 0)
  const maxQueue = integerOption('maxQueue', opts.maxQueue, 1024, 1)
  const maxQueueBytes = integerOption('maxQueueBytes', opts.maxQueueBytes, 1024 * 1024, 1)
  const lingerMs = integerOption('lingerMs', opts.lingerMs, 1, 0)
  const maxBatchBytes = integerOption('maxBatchBytes', opts.maxBatchBytes, 64 * 1024, 1)
  const serialize = opts.serialize ?? JSON.stringify
  if (typeof serialize !== 'function') throw new SSE_ERR_INVALID_OPTION('serialize', 'expected a function')
  const limits = { maxQueue, maxQueueBytes, chunk: Math.max(16 * 1024, Math.min(maxBatchBytes, 256 * 1024)) }
  return { historySize, historyBytes, lingerMs, maxBatchBytes, serialize, limits }
}

/** The topic names and overflow policy of `subscribe()` options, validated. */
export function checkSubscribe (options: SubscribeOptions): { names: string[], policy: OverflowPolicy } {
  const names = [...new Set(typeof options.topics === 'string' ? [options.topics] : options.topics)]
  if (names.length === 0 || names.some((n) => typeof n !== 'string' || n === '')) {
    throw new SSE_ERR_INVALID_OPTION('topics', 'expected one or more non-empty strings')
  }
  const policy = options.overflow ?? 'disconnect'
  if (policy !== 'disconnect' && policy !== 'drop' && policy !== 'conflate') {
    throw new SSE_ERR_INVALID_OPTION('overflow', `expected disconnect, drop or conflate, got ${String(policy)}`)
  }
  return { names, policy }
}

export function createHub (opts: HubOptions = {}): Hub {
  const { historySize, historyBytes, lingerMs, maxBatchBytes, serialize, limits } = resolveHubOptions(opts)

  const epoch = newEpoch()
  const topics = new Map<string, Topic>()
  // Subscribers live in their topics' sets; this counts them (a subscriber to several, once).
  let subscriberCount = 0
  let seq = 0
  // Topics dropped once empty leave their eviction point here, so an old cursor is still caught.
  let forgottenSeq = 0
  let closed = false
  let published = 0
  const meter: HubMeter = { backplane: 'memory', stats: () => stats() }
  const fanout = new Fanout({ lingerMs, maxBatchBytes, subscribersOf: (name) => topics.get(name)?.subscribers, meter })
  const counters = { overflows: 0, dropped: 0, conflated: 0, queuedBytes: 0 }

  const host: SubscriberHost = {
    counters,
    meter,
    detach (sub) {
      let attached = false
      for (const name of sub.topics) {
        const topic = topics.get(name)
        if (topic === undefined || !topic.subscribers.delete(sub)) continue
        attached = true
        forgetIfIdle(name, topic)
      }
      if (attached) subscriberCount--
    }
  }

  function forgetIfIdle (name: string, topic: Topic): void {
    if (topic.subscribers.size > 0 || topic.history.size > 0) return
    forgottenSeq = Math.max(forgottenSeq, topic.history.evictedSeq)
    topics.delete(name)
  }

  function topicOf (name: string): Topic {
    let topic = topics.get(name)
    if (topic === undefined) {
      topic = { history: new TopicHistory(historySize, historyBytes), subscribers: new Set() }
      // A topic forgotten earlier may come back: a cursor from its first life is not resumable.
      topic.history.evictedSeq = forgottenSeq
      topics.set(name, topic)
    }
    return topic
  }

  function publish (name: string, message: HubMessage): Promise<string> {
    if (closed) return Promise.reject(new SSE_ERR_HUB_UNAVAILABLE('the hub is closed'))
    if (typeof name !== 'string' || name === '') {
      return Promise.reject(new SSE_ERR_INVALID_OPTION('topic', 'expected a non-empty string'))
    }
    const id = formatId(epoch, seq + 1)
    let text: string
    try {
      text = encode({ ...message, id }, serialize)
    } catch (err) {
      return Promise.reject(err)
    }
    const entry: HubEntry = { seq: ++seq, topic: name, text, bytes: Buffer.byteLength(text) }
    published++
    if (channels.hubPublish.hasSubscribers) channels.hubPublish.publish(meter)
    const topic = topicOf(name)
    topic.last = { id, message }
    topic.history.push(entry)
    if (topic.subscribers.size > 0) {
      // Unsubscribed topics stop here: no batch, no timer.
      fanout.add(entry)
    } else {
      forgetIfIdle(name, topic)
    }
    return Promise.resolve(id)
  }

  function replayFrom (names: readonly string[], after: number): HubEntry[] {
    const out: HubEntry[] = []
    for (const name of names) out.push(...(topics.get(name)?.history.after(after) ?? []))
    if (names.length > 1) out.sort((a, b) => a.seq - b.seq)
    return out
  }

  function subscribe (options: SubscribeOptions): AsyncIterableIterator<SseFrame> {
    const { names, policy } = checkSubscribe(options)
    // Everything below runs in one turn: what was published before this point is replayed, what
    // is published after it is delivered live, and `seen` keeps the two from overlapping.
    let head = ''
    let replay: readonly HubEntry[] = NO_ENTRIES
    const lastEventId = options.lastEventId
    if (lastEventId !== undefined && lastEventId !== '') {
      const cursor = parseId(epoch, lastEventId)
      const floor = Math.max(...names.map((n) => topics.get(n)?.history.evictedSeq ?? forgottenSeq))
      const reason = cursor === 'epoch' || cursor === 'invalid'
        ? cursor
        : cursor > seq
          ? 'invalid'
          : cursor < floor
            ? 'expired'
            : undefined
      if (reason === undefined) {
        replay = replayFrom(names, cursor as number)
        report(channels.hubReplay, () => ({ hub: meter, entries: replay.length }))
      } else if (options.resetTo === 'live') {
        // The reset frame carries the current position, so the next reconnect resumes exactly.
        head = encode({ event: 'reset', id: formatId(epoch, seq), data: { reason } })
      } else {
        head = encode({ event: 'reset', data: { reason } })
        replay = replayFrom(names, 0)
      }
      if (reason !== undefined) report(channels.hubReset, () => ({ hub: meter, reason }))
    }
    const sub = new Subscriber({
      host,
      limits,
      topics: names,
      seen: seq,
      head,
      replay,
      policy,
      onOverflow: options.onOverflow,
      signal: options.signal
    })
    if (closed || options.signal?.aborted === true) {
      sub.end()
      return sub
    }
    subscriberCount++
    for (const name of names) topicOf(name).subscribers.add(sub)
    report(channels.hubSeen, () => meter)
    return sub
  }

  function stats (): HubStats {
    return hubStats(closed ? 'closed' : 'up', epoch, seq === 0 ? '' : formatId(epoch, seq),
      { topics: topics.size, subscribers: subscriberCount, published }, fanout.flushes, counters)
  }

  return {
    publish,
    subscribe,
    last: (name) => Promise.resolve(topics.get(name)?.last),
    stats,
    close: async () => {
      closed = true
      fanout.flush()
      for (const sub of allSubscribers(topics.values())) sub.end()
      topics.clear()
    }
  }
}
