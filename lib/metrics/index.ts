// `fastify-sse-stream/metrics`: Prometheus metrics for streams, the hub and the LLM relay, in a
// `prom-client` registry. It subscribes to the library's diagnostics channels (./channels.ts), so
// a user who does not import this subpath loads neither it nor prom-client, and pays nothing.
//
// Names follow Prometheus' conventions: `_total` counters, `_seconds` and `_bytes` in base units,
// and only bounded labels: a route's URL pattern (never the URL), a backplane, a reason or a code
// from a fixed set. Never a topic, a user, a model name or anything else a client chooses.
import type { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { loadPeer } from '../peer.js'
import { bytesOf, channels, type HubMeter, type LlmMeter, type StreamEndReason, type StreamMeter } from './channels.js'

export interface SseMetricsOptions {
  /**
   * Where the metrics are registered; serve it with `registry.metrics()`.
   * @default prom-client's global `register`
   */
  registry?: Registry
  /**
   * Put before every metric name.
   * @default 'fastify_sse_stream_'
   */
  prefix?: string
}

export interface SseMetrics {
  readonly registry: Registry
  /** Stops collecting and removes the metrics from the registry. */
  close: () => void
}

// Seconds for time to first token: from a local model's tens of milliseconds to a queued minute.
const TTFT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60]
const TOKENS_PER_SECOND_BUCKETS = [1, 5, 10, 20, 50, 100, 200, 500, 1000]
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]

interface Reported { events: number, bytes: number, waits: number, blockedMs: number }

/**
 * Starts collecting: from now on, streams, hubs and generations report into `registry`. Throws
 * SSE_ERR_MISSING_PEER when `prom-client` is not installed.
 */
export async function sseMetrics (options: SseMetricsOptions = {}): Promise<SseMetrics> {
  const client = await loadPeer('fastify-sse-stream/metrics', 'prom-client', async () => await import('prom-client'))
  const registry = options.registry ?? client.register
  const prefix = options.prefix ?? 'fastify_sse_stream_'
  const registers = [registry]
  const names: string[] = []
  const counter = <L extends string>(name: string, help: string, labelNames: L[], collect?: () => void): Counter<L> => {
    names.push(prefix + name)
    return new client.Counter({ name: prefix + name, help, labelNames, registers, ...(collect === undefined ? {} : { collect }) })
  }
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], collect?: (g: Gauge<L>) => void): Gauge<L> => {
    names.push(prefix + name)
    return new client.Gauge({ name: prefix + name, help, labelNames, registers, ...(collect === undefined ? {} : { collect () { collect(this) } }) })
  }
  const histogram = <L extends string>(name: string, help: string, labelNames: L[], buckets: number[]): Histogram<L> => {
    names.push(prefix + name)
    return new client.Histogram({ name: prefix + name, help, labelNames, buckets, registers })
  }

  // ── Streams ── what each open stream wrote since the last scrape is read from its meter, summed
  // by route first, so a scrape of thousands of streams costs a few `inc()` per route.
  const open = new Map<StreamMeter, Reported>()
  // Each of the four counters calls this from its collect(), in the same turn of one scrape: the
  // first call does the work (reading a socket's `bytesWritten` is not free), the others skip it.
  let synced = false
  const sync = (): void => {
    if (synced) return
    synced = true
    queueMicrotask(() => { synced = false })
    const byRoute = new Map<string, Reported>()
    for (const [meter, reported] of open) {
      let sum = byRoute.get(meter.route)
      if (sum === undefined) byRoute.set(meter.route, sum = { events: 0, bytes: 0, waits: 0, blockedMs: 0 })
      take(meter, reported, sum)
    }
    for (const [route, sum] of byRoute) add(route, sum)
  }
  const streamsOpen = gauge('streams_open', 'Event streams open now, by route.', ['route'])
  const started = counter('streams_started_total', 'Event streams started, by route.', ['route'])
  const ended = counter('streams_ended_total', 'Event streams ended, by route and reason: done (the source ended), client (it went away), error, shutdown, overflow (a slow hub subscriber was disconnected).', ['route', 'reason'])
  const events = counter('events_written_total', 'Events and comments written to streams, by route.', ['route'], sync)
  const bytes = counter('bytes_written_total', 'Bytes written to event streams, by route (HTTP/1.1: the connection\'s bytes, headers and chunk framing included; HTTP/2: the UTF-8 event text).', ['route'], sync)
  const waits = counter('backpressure_waits_total', 'Writes a socket did not take at once, pausing the stream\'s source until it drained, by route.', ['route'], sync)
  const blockedSeconds = counter('backpressure_seconds_total', 'Time streams spent paused on backpressure, by route.', ['route'], sync)

  /** Adds what `meter` counted since `reported` to `sum`, and moves `reported` up to it. */
  function take (meter: StreamMeter, reported: Reported, sum: Reported): void {
    const blockedMs = meter.blockedMs + (meter.blockedAt === 0 ? 0 : performance.now() - meter.blockedAt)
    sum.events += meter.events - reported.events
    const written = bytesOf(meter)
    sum.bytes += written - reported.bytes
    sum.waits += meter.waits - reported.waits
    sum.blockedMs += Math.max(0, blockedMs - reported.blockedMs)
    reported.events = meter.events
    reported.bytes = written
    reported.waits = meter.waits
    reported.blockedMs = Math.max(blockedMs, reported.blockedMs)
  }

  function add (route: string, sum: Reported): void {
    const labels = { route }
    if (sum.events > 0) events.inc(labels, sum.events)
    if (sum.bytes > 0) bytes.inc(labels, sum.bytes)
    if (sum.waits > 0) waits.inc(labels, sum.waits)
    if (sum.blockedMs > 0) blockedSeconds.inc(labels, sum.blockedMs / 1000)
  }

  const onStreamStart = (message: unknown): void => {
    const meter = message as StreamMeter
    open.set(meter, { events: 0, bytes: 0, waits: 0, blockedMs: 0 })
    streamsOpen.inc({ route: meter.route })
    started.inc({ route: meter.route })
  }
  const onStreamEnd = (message: unknown): void => {
    const { meter, reason } = message as { meter: StreamMeter, reason: StreamEndReason }
    const reported = open.get(meter)
    // Started before this collector: it was never counted as open.
    if (reported === undefined) return
    const sum = { events: 0, bytes: 0, waits: 0, blockedMs: 0 }
    take(meter, reported, sum)
    add(meter.route, sum)
    open.delete(meter)
    streamsOpen.dec({ route: meter.route })
    ended.inc({ route: meter.route, reason })
  }

  // ── Hubs ── gauges are read from each hub seen since collection started, when scraped.
  const hubs = new Set<HubMeter>()
  const seen = (hub: HubMeter): void => { hubs.add(hub) }
  const hubGauge = (name: string, help: string, value: (stats: ReturnType<HubMeter['stats']>) => number): void => {
    gauge(name, help, ['backplane'], (g) => {
      g.reset()
      for (const hub of hubs) {
        const stats = hub.stats()
        if (stats.state === 'closed') hubs.delete(hub)
        else g.inc({ backplane: hub.backplane }, value(stats))
      }
    })
  }
  hubGauge('hub_subscribers', 'Hub subscribers on this instance.', (s) => s.subscribers)
  hubGauge('hub_queued_bytes', 'Bytes waiting in the queues of hub subscribers that are behind.', (s) => s.queuedBytes)
  hubGauge('hub_up', '1 while the hub can publish and deliver; 0 while its backing store (Redis) is unreachable.', (s) => s.state === 'up' ? 1 : 0)
  const published = counter('hub_published_total', 'Messages published to the hub on this instance.', ['backplane'])
  const batchSize = histogram('hub_fanout_batch_messages', 'Messages per fan-out batch (one shared frame per batch); its count is the number of batches.', ['backplane'], BATCH_BUCKETS)
  const overflows = counter('hub_overflows_total', 'Slow subscribers whose queue overflowed, by what was done: disconnect, gap (oldest messages dropped, an `event: gap` sent) or conflate.', ['backplane', 'action'])
  const dropped = counter('hub_dropped_messages_total', 'Messages a slow subscriber lost to its overflow policy (gap, conflate).', ['backplane', 'action'])
  const replays = counter('hub_replays_total', 'Subscriptions that resumed from history after a Last-Event-ID.', ['backplane'])
  const replayed = counter('hub_replayed_messages_total', 'Messages replayed from history.', ['backplane'])
  const resets = counter('hub_resets_total', 'Subscriptions whose Last-Event-ID could not be resumed (an `event: reset`), by reason: epoch, invalid, expired.', ['backplane', 'reason'])

  const onHubSeen = (message: unknown): void => { seen(message as HubMeter) }
  const onPublish = (message: unknown): void => {
    const hub = message as HubMeter
    seen(hub)
    published.inc({ backplane: hub.backplane })
  }
  const onFanout = (message: unknown): void => {
    const { hub, entries } = message as { hub: HubMeter, entries: number }
    batchSize.observe({ backplane: hub.backplane }, entries)
  }
  const onOverflow = (message: unknown): void => {
    const { hub, action, messages } = message as { hub: HubMeter, action: string, messages: number }
    overflows.inc({ backplane: hub.backplane, action })
    if (action !== 'disconnect' && messages > 0) dropped.inc({ backplane: hub.backplane, action }, messages)
  }
  const onReplay = (message: unknown): void => {
    const { hub, entries } = message as { hub: HubMeter, entries: number }
    replays.inc({ backplane: hub.backplane })
    if (entries > 0) replayed.inc({ backplane: hub.backplane }, entries)
  }
  const onReset = (message: unknown): void => {
    const { hub, reason } = message as { hub: HubMeter, reason: string }
    resets.inc({ backplane: hub.backplane, reason })
  }

  // ── Redis ──
  const lag = histogram('redis_reader_lag_seconds', 'From a publish (on any instance, by its clock) to this instance\'s reader handing the message over.', [], LAG_BUCKETS)
  const redisErrors = counter('redis_errors_total', 'Redis commands that failed, by operation: publish, subscribe, read.', ['operation'])
  const onRedisRead = (message: unknown): void => {
    const { lagMs } = message as { lagMs: number }
    if (Number.isFinite(lagMs)) lag.observe(Math.max(0, lagMs) / 1000)
  }
  const onRedisError = (message: unknown): void => { redisErrors.inc({ operation: (message as { operation: string }).operation }) }

  // ── Generations and the LLM relay ──
  const active = new Set<LlmMeter>()
  const llmActive = gauge('llm_generations_active', 'LLM generations (upstream chat completions) streaming now.', [])
  const llmStarted = counter('llm_generations_started_total', 'LLM generations started.', [])
  const ttft = histogram('llm_time_to_first_token_seconds', 'From the upstream request to its first token.', [], TTFT_BUCKETS)
  const tokensPerSecond = histogram('llm_tokens_per_second', 'Tokens per second of a completed generation, after its first token.', [], TOKENS_PER_SECOND_BUCKETS)
  const upstreamErrors = counter('llm_upstream_errors_total', 'LLM generations that failed, by error code (SSE_ERR_UPSTREAM_RATE_LIMITED, ...).', ['code'])
  const resumed = counter('generations_resumed_total', 'Resumable generations continued by a reconnect with Last-Event-ID.', [])
  const stopped = counter('generations_stopped_total', 'Resumable generations stopped early, by reason: stop (asked to), abandoned (no client came back within the grace period).', ['reason'])

  const onLlmStart = (message: unknown): void => {
    active.add(message as LlmMeter)
    llmActive.inc()
    llmStarted.inc()
  }
  const onLlmFirstToken = (message: unknown): void => {
    const meter = message as LlmMeter
    if (active.has(meter)) ttft.observe((meter.firstTokenAt - meter.startedAt) / 1000)
  }
  const onLlmEnd = (message: unknown): void => {
    const { meter, error } = message as { meter: LlmMeter, error?: { code: string } }
    if (!active.delete(meter)) return
    llmActive.dec()
    if (error !== undefined) upstreamErrors.inc({ code: error.code })
    else if (meter.tokens > 1 && meter.lastTokenAt > meter.firstTokenAt) {
      tokensPerSecond.observe((meter.tokens - 1) / ((meter.lastTokenAt - meter.firstTokenAt) / 1000))
    }
  }
  const onResume = (): void => { resumed.inc() }
  const onStop = (message: unknown): void => { stopped.inc({ reason: (message as { reason: string }).reason }) }

  const subscriptions: Array<[{ subscribe: (fn: (m: unknown) => void) => void, unsubscribe: (fn: (m: unknown) => void) => unknown }, (m: unknown) => void]> = [
    [channels.streamStart, onStreamStart],
    [channels.streamEnd, onStreamEnd],
    [channels.hubSeen, onHubSeen],
    [channels.hubPublish, onPublish],
    [channels.hubFanout, onFanout],
    [channels.hubOverflow, onOverflow],
    [channels.hubReplay, onReplay],
    [channels.hubReset, onReset],
    [channels.redisRead, onRedisRead],
    [channels.redisError, onRedisError],
    [channels.llmStart, onLlmStart],
    [channels.llmFirstToken, onLlmFirstToken],
    [channels.llmEnd, onLlmEnd],
    [channels.generationResume, onResume],
    [channels.generationStop, onStop]
  ]
  for (const [ch, fn] of subscriptions) ch.subscribe(fn)

  let closed = false
  return {
    registry,
    close () {
      if (closed) return
      closed = true
      for (const [ch, fn] of subscriptions) ch.unsubscribe(fn)
      for (const name of names) registry.removeSingleMetric(name)
      open.clear()
      hubs.clear()
      active.clear()
    }
  }
}
