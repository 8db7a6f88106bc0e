// The hub's interface on Redis Streams, for many instances behind a load balancer (docs/hub.md,
// docs/deployment.md). A publish on any instance is one script call: the message is encoded once,
// appended to its topic's stream with the next id of a hub-wide counter, and the stream trimmed to
// `historySize`. Each instance runs one blocking reader (lib/redis/stream-reader.ts) over the
// topics its own clients watch, and fans what it reads out locally with the in-memory hub's code:
// shared frames, bounded queues, the same overflow policies. Replay after Last-Event-ID is an
// XRANGE inside the subscribe script; an id that cannot be resumed gets `event: reset`.
//
// Redis lost: every local subscriber gets `retry:` and an `event: error` (SSE_ERR_HUB_UNAVAILABLE),
// so its EventSource reconnects and resumes from Redis by Last-Event-ID; publishes and new
// subscriptions fail at once meanwhile (nothing is buffered); ioredis reconnects with backoff.
import type { Redis } from 'ioredis'
import { encode, type SseFrame } from '../sse/encoder.js'
import { SSE_ERR_HUB_UNAVAILABLE, SSE_ERR_INVALID_OPTION } from '../errors.js'
import { integerOption } from '../internal/integer-option.js'
import { splitEventId } from '../internal/event-id.js'
import type { HubEntry } from '../hub/history.js'
import { checkSubscribe, hubStats, resolveHubOptions, type Hub, type HubMessage, type HubOptions, type HubRecord, type HubStats, type SubscribeOptions } from '../hub/hub.js'
import { Fanout } from '../hub/fanout.js'
import { formatId, newEpoch } from '../hub/id.js'
import { joinScript, publishScript } from './hub-scripts.js'
import { allSubscribers, Subscriber, type SubscriberHost } from '../hub/subscriber.js'
import { StreamReader, type StreamEntry, type StreamWatch } from './stream-reader.js'
import { channels, report, type HubMeter } from '../metrics/channels.js'

export interface RedisHubOptions extends Omit<HubOptions, 'historyBytes'> {
  /**
   * A connected ioredis client (see `connectRedis`): publishes and subscribes go through it, and
   * the blocking reader is a `duplicate()` of it. The hub does not close it.
   */
  redis: Redis
  /**
   * Prefix of every key the hub uses; instances sharing it share topics.
   * @default 'sse:hub:'
   */
  prefix?: string
  /**
   * A topic's stream expires this long after its last publish; `0` keeps it (trimmed to
   * `historySize`). A cursor into an expired topic is reset (`expired`).
   * @default 0
   */
  ttlMs?: number
  /**
   * The `retry:` sent to a client before the error that ends its stream when Redis is lost:
   * how long its EventSource waits before reconnecting.
   * @default 2000
   */
  retryMs?: number
}

interface Topic {
  readonly subscribers: Set<Subscriber>
  watch?: StreamWatch
  /** The seq the reader started reading this topic after. */
  start: number
}

/** The parts of a Last-Event-ID the subscribe script needs. */
function cursorOf (lastEventId: string | undefined): [mode: string, epoch: string, seq: string] {
  if (lastEventId === undefined || lastEventId === '') return ['none', '', '0']
  const parsed = splitEventId(lastEventId)
  if (parsed === undefined) return ['invalid', '', '0']
  return ['cursor', parsed.prefix, String(parsed.seq)]
}

const seqOfId = (id: string): number => Number(id.slice(0, id.indexOf('-')))

export function createRedisHub (opts: RedisHubOptions): Hub {
  const { redis } = opts
  if (redis === null || typeof redis !== 'object' || typeof redis.duplicate !== 'function') {
    throw new SSE_ERR_INVALID_OPTION('redis', 'expected an ioredis client')
  }
  const { historySize, lingerMs, maxBatchBytes, serialize, limits } = resolveHubOptions(opts, 1)
  const prefix = opts.prefix ?? 'sse:hub:'
  const ttlMs = integerOption('ttlMs', opts.ttlMs, 0, 0)
  const retryMs = integerOption('retryMs', opts.retryMs, 2000, 0)
  const base = [prefix + 'epoch', prefix + 'seq', prefix + 'meta']
  const streamKey = (topic: string): string => prefix + 't:' + topic

  const topics = new Map<string, Topic>()
  // Subscribers live in their topics' sets; this counts them (a subscriber to several, once).
  let subscriberCount = 0
  const counters = { overflows: 0, dropped: 0, conflated: 0, queuedBytes: 0 }
  const meter: HubMeter = { backplane: 'redis', stats: () => stats() }
  const fanout = new Fanout({ lingerMs, maxBatchBytes, subscribersOf: (name) => topics.get(name)?.subscribers, meter })
  // The dataset's epoch as last seen ('' before the first answer), and the highest seq the reader
  // has handed over: a topic starts being read after it, so what the reader delivers stays in order.
  let epoch = ''
  let delivered = 0
  let lastId = ''
  let published = 0
  let closed = false
  // Entries of one read, gathered across topics and put in seq order before fan-out.
  let pending: HubEntry[] = []

  const unavailable = (why: string): Error => new SSE_ERR_HUB_UNAVAILABLE(why)
  // Sent before the error frame: a jittered `retry:` spreads the reconnects of many clients.
  const lead = (): string => retryMs === 0 ? '' : `retry: ${Math.round(retryMs * (0.75 + Math.random() * 0.5))}\n\n`

  // Loaded on every (re)connect before anything else is sent on it, so EVALSHA never misses and
  // the order of a subscribe and a publish sent back to back is the order Redis runs them in.
  const loadScripts = (): void => {
    for (const script of [publishScript, joinScript]) redis.script('LOAD', script.lua).catch(() => {})
  }
  if (redis.status === 'ready') loadScripts()
  redis.on('ready', loadScripts)

  const reader = new StreamReader({
    redis,
    commands: redis,
    connectionName: 'fastify-sse-stream:hub-reader',
    onDown: (err) => failAll(`lost the connection to Redis (${err.message})`)
  })

  const host: SubscriberHost = {
    counters,
    meter,
    detach (sub) {
      let attached = false
      for (const name of sub.topics) {
        const topic = topics.get(name)
        if (topic === undefined || !topic.subscribers.delete(sub)) continue
        attached = true
        if (topic.subscribers.size === 0) {
          topic.watch?.close()
          topics.delete(name)
        }
      }
      if (attached) subscriberCount--
    }
  }

  function failAll (why: string, except?: Subscriber): void {
    const err = unavailable(why)
    for (const sub of allSubscribers(topics.values())) if (sub !== except) sub.fail(err, lead())
  }

  /**
   * Notes the dataset's epoch. A new one means Redis lost its data and every cursor with it: the
   * topics are read afresh, and subscribers from before are ended (their clients come back with
   * an id of the old epoch and get a reset); `joining`, whose cut is from the new epoch, stays.
   */
  function noteEpoch (seen: string, joining?: Subscriber): void {
    if (seen === epoch) return
    const known = epoch !== ''
    epoch = seen
    delivered = 0
    if (!known) return
    for (const topic of topics.values()) {
      topic.watch?.close()
      topic.watch = undefined
      topic.start = 0
    }
    failAll('Redis lost its data (a new epoch)', joining)
  }

  function frameText (seq: number, body: string): string {
    return 'id: ' + formatId(epoch, seq) + '\n' + (body === '' ? '\n' : body)
  }

  function toEntry (topic: string, [id, fields]: StreamEntry): HubEntry {
    const seq = seqOfId(id)
    const body = fields[fields.indexOf('d') + 1] ?? ''
    const text = frameText(seq, body)
    return { seq, topic, text, bytes: Buffer.byteLength(text) }
  }

  function onEntries (topic: string, entries: StreamEntry[]): void {
    if (!topics.has(topic)) return
    // Field `t`: when it was published (ms since the epoch, the publisher's clock).
    report(channels.redisRead, () => ({ lagMs: Date.now() - Number(entries[entries.length - 1][1][3]) }))
    if (pending.length === 0) queueMicrotask(drain)
    for (const e of entries) pending.push(toEntry(topic, e))
  }

  function drain (): void {
    const entries = pending.sort((a, b) => a.seq - b.seq)
    pending = []
    for (const entry of entries) {
      if (entry.seq > delivered) delivered = entry.seq
      fanout.add(entry)
    }
    if (entries.length > 0) lastId = formatId(epoch, delivered)
  }

  function publish (topic: string, message: HubMessage): Promise<string> {
    if (closed) return Promise.reject(unavailable('the hub is closed'))
    if (typeof topic !== 'string' || topic === '') {
      return Promise.reject(new SSE_ERR_INVALID_OPTION('topic', 'expected a non-empty string'))
    }
    let body: string
    let json = ''
    try {
      body = encode(message, serialize)
    } catch (err) {
      return Promise.reject(err)
    }
    try {
      // For `last()`; a message JSON cannot represent is still published, just not kept.
      json = JSON.stringify(message) ?? ''
    } catch {}
    // Never queued while Redis is away: the caller learns at once, and memory stays flat.
    if (redis.status !== 'ready') return Promise.reject(unavailable(`Redis is ${redis.status}`))
    return publishScript.run(redis, [...base, streamKey(topic)], [newEpoch(), topic, body, historySize, ttlMs, Date.now(), json])
      .then((reply) => {
        const [e, n] = reply as [string, number]
        noteEpoch(e)
        published++
        if (channels.hubPublish.hasSubscribers) channels.hubPublish.publish(meter)
        const id = formatId(e, n)
        lastId = id
        return id
      }, (err: Error) => {
        report(channels.redisError, () => ({ operation: 'publish' }))
        throw unavailable(`publish failed: ${err.message}`)
      })
  }

  function subscribe (options: SubscribeOptions): AsyncIterableIterator<SseFrame> {
    const { names, policy } = checkSubscribe(options)
    // Held until the subscribe script answers: live entries read meanwhile wait in its queue, so
    // they cannot overtake the replay, and `release` drops those the replay already has.
    const sub = new Subscriber({
      host,
      limits,
      topics: names,
      seen: 0,
      head: '',
      replay: [],
      policy,
      onOverflow: options.onOverflow,
      signal: options.signal,
      held: true
    })
    if (closed || options.signal?.aborted === true) {
      sub.end()
      return sub
    }
    subscriberCount++
    for (const name of names) {
      let topic = topics.get(name)
      if (topic === undefined) topics.set(name, topic = { subscribers: new Set(), start: 0 })
      topic.subscribers.add(sub)
    }
    if (redis.status !== 'ready') {
      sub.fail(unavailable(`Redis is ${redis.status}`), lead())
      return sub
    }
    join(sub, names, options).catch((err: Error) => {
      report(channels.redisError, () => ({ operation: 'subscribe' }))
      sub.fail(unavailable(`subscribe failed: ${err.message}`), lead())
    })
    report(channels.hubSeen, () => meter)
    return sub
  }

  async function join (sub: Subscriber, names: string[], options: SubscribeOptions): Promise<void> {
    const [mode, cursorEpoch, cursorSeq] = cursorOf(options.lastEventId)
    const history = options.resetTo === 'live' ? '0' : '1'
    const reply = await joinScript.run(redis, [...base, ...names.map(streamKey)],
      [newEpoch(), mode, cursorEpoch, cursorSeq, history, ...names]) as [string, number, string, ...StreamEntry[][]]
    const [e, counter, reason] = reply
    noteEpoch(e, sub)
    if (sub.ended) return
    // Start reading new topics after everything the reader handed over so far, so its deliveries
    // stay in seq order; what lies between this subscriber's cut and that point is fetched below.
    const gaps: Array<[string, number]> = []
    for (const name of names) {
      const topic = topics.get(name)
      if (topic === undefined) continue
      if (topic.watch === undefined) {
        topic.start = Math.max(delivered, counter)
        topic.watch = reader.watch(streamKey(name), `${topic.start}-0`, (entries) => onEntries(name, entries))
      }
      if (topic.start > counter) gaps.push([name, topic.start])
    }
    const replay: HubEntry[] = []
    names.forEach((name, i) => { for (const entry of reply[3 + i] as StreamEntry[]) replay.push(toEntry(name, entry)) })
    if (names.length > 1) replay.sort((a, b) => a.seq - b.seq)
    const extra: HubEntry[] = []
    if (gaps.length > 0) {
      const pipeline = redis.pipeline()
      for (const [name, until] of gaps) pipeline.xrange(streamKey(name), `(${counter}-0`, `${until}-0`)
      const results = await pipeline.exec() ?? []
      if (sub.ended) return
      results.forEach(([err, entries], i) => {
        if (err !== null) throw err
        for (const entry of entries as StreamEntry[]) extra.push(toEntry(gaps[i][0], entry))
      })
    }
    if (reason !== '') report(channels.hubReset, () => ({ hub: meter, reason }))
    else if (replay.length > 0) report(channels.hubReplay, () => ({ hub: meter, entries: replay.length }))
    let head = ''
    if (reason !== '') {
      head = options.resetTo === 'live'
        ? encode({ event: 'reset', id: formatId(e, counter), data: { reason } })
        : encode({ event: 'reset', data: { reason } })
    }
    sub.release(head, replay, counter, extra)
  }

  function stats (): HubStats {
    return hubStats(closed ? 'closed' : redis.status === 'ready' && reader.connected ? 'up' : 'down',
      epoch, lastId, { topics: topics.size, subscribers: subscriberCount, published }, fanout.flushes, counters)
  }

  async function last (topic: string): Promise<HubRecord | undefined> {
    if (closed) throw unavailable('the hub is closed')
    if (redis.status !== 'ready') throw unavailable(`Redis is ${redis.status}`)
    let reply: [string | null, Array<string | null>]
    try {
      reply = await Promise.all([redis.get(base[0]), redis.hmget(base[2], 'last:' + topic, 'msg:' + topic)])
    } catch (err) {
      throw unavailable(`last failed: ${(err as Error).message}`)
    }
    const [e, [seq, json]] = reply
    if (e === null || seq === null || json === null) return undefined
    return { id: formatId(e, Number(seq)), message: JSON.parse(json) as HubMessage }
  }

  return {
    publish,
    subscribe,
    last,
    stats,
    close: async () => {
      if (closed) return
      closed = true
      drain()
      fanout.flush()
      for (const sub of allSubscribers(topics.values())) sub.end()
      topics.clear()
      redis.off('ready', loadScripts)
      await reader.close()
    }
  }
}
