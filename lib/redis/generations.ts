// Resumable generations across instances: the `Generations` interface of lib/generations/store.ts with a
// generation's frames in a Redis stream, so a reconnect that lands on any instance replays and
// follows the same answer while the instance that started it keeps generating.
//
// Keys under the prefix, for a generation <g>:
//   <prefix><g>        hash: `owner` (an HMAC of it keyed by <prefix>salt, not the owner itself),
//                      `n` frames so far, `end` ('' while running, else `done` or the error as JSON), `stop`
//   <prefix><g>:log    stream: entry `<seq>-0` holds frame seq (field `f`); one entry past the last
//                      frame marks the end (field `x`, as `end`), so a follower reads it in order
//   <prefix><g>:hb     set by every attached follower, on any instance, with an expiry of the grace
//                      period: when it is gone, nobody has been attached for that long
//   <prefix><g>:alive  refreshed by the instance running the generation while it runs, with an
//                      expiry of `outageMs`: a Redis blip shorter than that does not make it look dead
//   <prefix>stop       pub/sub channel: a stop received by any instance reaches the runner at once
//   <prefix>salt       random, made once per dataset: owners' addresses cannot be read back from
//                      the hashes by hashing every IPv4 address, unless the salt is taken too
// Running keys expire `ttlMs + graceMs` after the last write; finished ones `ttlMs` after the end.
//
// Redis away for a moment (a restart with AOF, a failover, a stopped process) is survived: the
// runner retries its writes for `outageMs`, and every script is safe to run twice, because a
// command that timed out may still have been applied.
import { createHmac, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { SseFrame } from '../sse/encoder.js'
import { errorFrame } from '../sse/stream.js'
import { SSE_ERR_GENERATION_INTERRUPTED, SSE_ERR_HUB_UNAVAILABLE, SSE_ERR_INVALID_OPTION } from '../errors.js'
import { integerOption } from '../internal/integer-option.js'
import { encodeWithId, eventsOf, parseEventId, retryLead, type GenerationStoreOptions, type Generations, type Lookup, type Producer } from '../generations/store.js'
import { backoff, backplaneOptions } from './connect.js'
import { RedisScript } from './script.js'
import { StreamReader, type StreamEntry, type StreamWatch } from './stream-reader.js'
import { channels, report } from '../metrics/channels.js'

export interface RedisGenerationsOptions extends GenerationStoreOptions {
  /** A connected ioredis client; a reader and a pub/sub connection are duplicated from it. */
  redis: Redis
  /** @default 'sse:gen:' */
  prefix?: string
  /**
   * How long Redis may be unreachable or silent before a running generation gives up: its writes
   * are retried this long, and its liveness key outlives a blip this long. A runner that really
   * died is noticed by followers within about this time.
   * @default 10000
   */
  outageMs?: number
}

// Both scripts return -1 when the generation is gone from Redis (expired, or Redis lost its data),
// 0 when there is nothing to do (a retry of a write that was applied), 1 when they wrote.

// KEYS: meta, log. ARGV: the first frame's seq, expiry ms, then the frames, in order. A batch is
// applied whole or not at all (a script is atomic), and frames Redis already has (a retry of a write
// that timed out but was applied) are skipped, so a retried batch neither loses nor repeats one.
const appendScript = new RedisScript(`
local n = redis.call('HGET', KEYS[1], 'n')
if not n then return -1 end
n = tonumber(n)
local first = tonumber(ARGV[1])
local last = first + #ARGV - 3
if n >= last then return 0 end
for seq = math.max(n + 1, first), last do
  redis.call('XADD', KEYS[2], seq .. '-0', 'f', ARGV[seq - first + 3])
end
redis.call('HSET', KEYS[1], 'n', last)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)

// The most frames one write carries, and how many a producer may get ahead of Redis: past it, the
// producer (and so the upstream) waits for the write in flight.
const MAX_BATCH = 1024

// KEYS: meta, log, alive. ARGV: end, ttl ms, '1' to write it only if the runner is not alive.
// The end marker is entry n+1, right after the last frame.
const endScript = new RedisScript(`
local n = redis.call('HGET', KEYS[1], 'n')
local e = redis.call('HGET', KEYS[1], 'end')
if not n then return -1 end
if e ~= '' then return 0 end
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('XADD', KEYS[2], (tonumber(n) + 1) .. '-0', 'x', ARGV[1])
redis.call('HSET', KEYS[1], 'end', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
return 1
`)

// KEYS: salt. ARGV: a new random salt, used if there is none yet.
const saltScript = new RedisScript(`
local s = redis.call('GET', KEYS[1])
if s then return s end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`)

/** The error a generation ended with, as stored: enough for the same `event: error` anywhere. */
function serializeError (err: any): string {
  return JSON.stringify({
    code: typeof err?.code === 'string' ? err.code : undefined,
    message: String(err?.message ?? err),
    statusCode: typeof err?.statusCode === 'number' ? err.statusCode : undefined
  })
}

function reviveError (text: string): Error {
  const { code, message, statusCode } = JSON.parse(text) as { code?: string, message: string, statusCode?: number }
  return Object.assign(new Error(message), { code, statusCode })
}

interface Follow { fail: (err: Error) => void }

/**
 * A follower on the instance that runs its generation: the runner hands it each batch once Redis
 * has it, instead of the blocking reader (an XREAD round trip, and one more key in every read).
 */
interface LocalFollower {
  entries: (entries: StreamEntry[]) => void
  /** The runner is done; anything it did not hand over (its end marker, if it could not write it) is read from Redis. */
  gone: () => void
}

export function createRedisGenerations (opts: RedisGenerationsOptions): Generations {
  const { redis } = opts
  if (redis === null || typeof redis !== 'object' || typeof redis.duplicate !== 'function') {
    throw new SSE_ERR_INVALID_OPTION('redis', 'expected an ioredis client')
  }
  const graceMs = integerOption('graceMs', opts.graceMs, 30_000, 0)
  const ttlMs = integerOption('ttlMs', opts.ttlMs, 300_000, 0)
  const maxEvents = integerOption('maxEvents', opts.maxEvents, 100_000, 0)
  const outageMs = integerOption('outageMs', opts.outageMs, 10_000, 0)
  const prefix = opts.prefix ?? 'sse:gen:'
  // How often a runner checks for a stop and for attached followers, and followers say they are.
  const tickMs = Math.max(20, Math.min(1000, Math.floor(graceMs / 3)))
  const keys = (id: string): { meta: string, log: string, hb: string, alive: string } =>
    ({ meta: prefix + id, log: prefix + id + ':log', hb: prefix + id + ':hb', alive: prefix + id + ':alive' })
  const stopChannel = prefix + 'stop'

  const running = new Map<string, AbortController>()
  const locals = new Map<string, Set<LocalFollower>>()
  const runs = new Set<Promise<void>>()
  const follows = new Set<Follow>()
  let closed = false

  // retry-after: a script's client (and a balancer) comes back once a Redis blip is likely over.
  const unavailable = (why: string): Error => Object.assign(new SSE_ERR_HUB_UNAVAILABLE(why), { retryAfter: '2' })
  /** A Redis command's failure (a timeout, a dropped connection) as the coded error clients get. */
  const redisFailed = (err: unknown): Error =>
    (err as { code?: unknown })?.code === 'SSE_ERR_HUB_UNAVAILABLE' ? err as Error : unavailable(`Redis failed: ${(err as Error)?.message ?? String(err)}`)
  async function guarded<T> (command: Promise<T>): Promise<T> {
    try {
      return await command
    } catch (err) {
      throw redisFailed(err)
    }
  }

  // The per-dataset salt of owner hashes, read (or made) once per connection: after a reconnect
  // Redis may be a new, empty dataset with a new salt.
  let salt: Promise<string> | undefined
  redis.on('close', () => { salt = undefined })
  async function digest (owner: string): Promise<string> {
    salt ??= saltScript.run(redis, [prefix + 'salt'], [randomBytes(32).toString('base64url')]).then(String)
    const key = await guarded(salt).catch((err) => { salt = undefined; throw err })
    return createHmac('sha256', key).update(owner).digest('hex')
  }
  const reader = new StreamReader({
    redis,
    commands: redis,
    connectionName: 'fastify-sse-stream:generations-reader',
    onDown: (err) => { for (const f of [...follows]) f.fail(unavailable(`lost the connection to Redis (${err.message})`)) }
  })
  const subscriber = redis.duplicate({ ...backplaneOptions, retryStrategy: redis.options.retryStrategy, lazyConnect: false, connectionName: 'fastify-sse-stream:generations-stop' })
  subscriber.on('error', () => {})
  subscriber.on('message', (_channel: string, id: string) => running.get(id)?.abort(new Error('stopped')))
  // Subscribed on every (re)connect: commands sent before the connection is ready fail at once.
  subscriber.on('ready', () => { subscriber.subscribe(stopChannel).catch(() => {}) })

  function ready (): void {
    if (closed) throw unavailable('the generation store is closed')
    if (redis.status !== 'ready') throw unavailable(`Redis is ${redis.status}`)
  }

  /**
   * Runs a write, retrying it while Redis is away, for up to `outageMs`: a blip must not cost the
   * answer. Once the store is closing, one attempt only. Resolves to the script's result.
   */
  async function persist (write: () => Promise<unknown>): Promise<number> {
    const deadline = Date.now() + outageMs
    for (let attempt = 1; ; attempt++) {
      try {
        return Number(await write())
      } catch (err) {
        const left = deadline - Date.now()
        if (left <= 0 || closed || redis.status === 'end') throw redisFailed(err)
        await new Promise((resolve) => setTimeout(resolve, Math.min(backoff(attempt), left)))
      }
    }
  }

  // The abort reason when the store closes: the generation is then interrupted, not done.
  const closing = new Error('server is closing')

  async function run (id: string, controller: AbortController, produce: Producer): Promise<void> {
    const k = keys(id)
    const expiry = ttlMs + graceMs
    let n = 0
    let end = 'done'
    // Frames yielded but not yet in Redis: frame `written + i + 1` is `pending[i]`. One write is in
    // flight at a time and carries everything pending when it starts, so what a producer yields
    // within one turn of the event loop (or while the last write was out) is one script call, in
    // order; a follower, here or elsewhere, sees a frame only once Redis has it.
    let pending: string[] = []
    let written = 0
    const followers = new Set<LocalFollower>()
    locals.set(id, followers)
    const handOver = (entries: StreamEntry[]): void => { for (const f of followers) f.entries(entries) }
    let writing: Promise<void> | undefined
    let failure: { err: unknown } | undefined
    const write = async (): Promise<void> => {
      while (pending.length > 0 && failure === undefined) {
        const frames = pending
        pending = []
        const applied = await persist(() => appendScript.run(redis, [k.meta, k.log], [written + 1, expiry, ...frames]))
        if (applied === -1) throw new SSE_ERR_GENERATION_INTERRUPTED('it is gone from Redis')
        if (followers.size > 0) handOver(frames.map((frame, i): StreamEntry => [`${written + i + 1}-0`, ['f', frame]]))
        written += frames.length
      }
    }
    const flush = (): Promise<void> => {
      writing ??= write().catch((err) => {
        // The producer stops; its error (not the abort) is how the generation ends.
        failure = { err }
        controller.abort(err)
      }).finally(() => { writing = undefined })
      return writing
    }
    let scheduled = false
    const flushSoon = (): void => { scheduled = false; void flush() }
    // Stops, and nobody attached for the grace period, are noticed here (and stops at once by pub/sub).
    const tick = setInterval(() => {
      redis.pipeline().set(k.alive, '1', 'PX', outageMs).hget(k.meta, 'stop').exists(k.hb).exec().then((results) => {
        if (results?.[1][1] === '1') controller.abort(new Error('stopped'))
        else if (results?.[2][1] === 0 && !controller.signal.aborted) {
          report(channels.generationStop, () => ({ reason: 'abandoned' }))
          controller.abort(new Error('abandoned: no client came back within the grace period'))
        }
      }, () => {})
    }, tickMs)
    try {
      for await (const item of produce(controller.signal)) {
        // Shutting down: what the producer says now (a `done: stopped`) is not the answer's end.
        if (controller.signal.reason === closing || failure !== undefined) break
        for (const event of eventsOf(item)) {
          if (n >= maxEvents) throw new Error(`generation exceeded ${maxEvents} events`)
          pending.push(encodeWithId(event, `${id}:${n + 1}`))
          n++
        }
        // An array is what came together already: written at once. Single events are written on
        // the next turn, so that the rest of this turn's joins them.
        if (Array.isArray(item)) void flush()
        else if (writing === undefined && !scheduled) {
          scheduled = true
          setImmediate(flushSoon)
        }
        // Redis is behind: hold the producer rather than buffer without bound.
        while (pending.length >= MAX_BATCH && failure === undefined) await flush()
      }
    } catch (err) {
      if (!controller.signal.aborted) end = serializeError(err)
      controller.abort(err)
    } finally {
      clearInterval(tick)
      running.delete(id)
      // Everything yielded goes to Redis before the end marker, which must follow the last frame.
      while ((writing !== undefined || pending.length > 0) && failure === undefined) await flush()
      if (failure !== undefined) end = serializeError(failure.err)
      // A rolling restart: followers, here or after reconnecting elsewhere, learn that the answer
      // is cut short instead of seeing it end as if complete.
      if (controller.signal.reason === closing) end = serializeError(new SSE_ERR_GENERATION_INTERRUPTED('the server running it shut down'))
      const ended = await persist(() => endScript.run(redis, [k.meta, k.log, k.alive], [end, ttlMs, ''])).catch(() => 0)
      // The end marker is entry written+1, right after the last frame Redis has.
      if (ended === 1) handOver([[`${written + 1}-0`, ['x', end]]])
      locals.delete(id)
      for (const f of followers) f.gone()
    }
  }

  async function start (owner: string, produce: Producer): Promise<string> {
    ready()
    const id = randomBytes(16).toString('base64url')
    const k = keys(id)
    await guarded(redis.multi()
      .hset(k.meta, 'owner', await digest(owner), 'n', '0', 'end', '', 'stop', '')
      .pexpire(k.meta, ttlMs + graceMs)
      // The starting request attaches at once; until then the grace period runs as if it had left.
      .set(k.hb, '1', 'PX', graceMs + tickMs)
      .set(k.alive, '1', 'PX', outageMs)
      .exec())
    const controller = new AbortController()
    running.set(id, controller)
    const done = run(id, controller, produce).finally(() => runs.delete(done))
    runs.add(done)
    return id
  }

  async function lookup (lastEventId: string | undefined, owner: string): Promise<Lookup> {
    const parsed = parseEventId(lastEventId)
    if (parsed === undefined) return { status: 'unknown' }
    ready()
    const [owned, [who, n, end]] = await Promise.all([digest(owner), guarded(redis.hmget(keys(parsed.generation).meta, 'owner', 'n', 'end'))])
    if (who !== owned || n === null) return { status: 'unknown' }
    const frames = Number(n)
    // A generation that failed has one more event, its error (id n+1), which a client must get.
    const failed = end !== null && end !== '' && end !== 'done'
    if (parsed.seq > frames + (failed ? 1 : 0)) return { status: 'unknown' }
    if (failed ? parsed.seq === frames + 1 : end !== null && end !== '' && parsed.seq === frames) return { status: 'finished' }
    report(channels.generationResume, () => ({}))
    return { status: 'resumable', id: parsed.generation, after: parsed.seq }
  }

  async function * follow (id: string, after: number, signal: AbortSignal): AsyncGenerator<SseFrame> {
    let sent = false
    try {
      for await (const frame of frames(id, after, signal)) {
        sent = true
        yield frame
      }
    } catch (err) {
      // Redis away before anything was sent: still a 200 stream, saying when to come back, since
      // an HTTP 503 would make an EventSource give up for good.
      if (!sent && (err as { code?: unknown }).code === 'SSE_ERR_HUB_UNAVAILABLE') yield new SseFrame(retryLead())
      throw err
    }
  }

  async function * frames (id: string, after: number, signal: AbortSignal): AsyncGenerator<SseFrame> {
    ready()
    const k = keys(id)
    let queue: StreamEntry[] = []
    let failure: Error | undefined
    let wake: (() => void) | undefined
    let sent = false
    const poke = (): void => { const w = wake; wake = undefined; w?.() }
    const state: Follow = { fail: (err) => { failure = err; poke() } }
    follows.add(state)
    signal.addEventListener('abort', poke, { once: true })
    // Attached: keeps the runner's grace period from running out, wherever the runner is.
    const beat = (): void => { redis.set(k.hb, '1', 'PX', graceMs + tickMs).catch(() => {}) }
    beat()
    const heartbeat = setInterval(beat, tickMs)
    let watch: StreamWatch | undefined
    // The runner is here: it hands over what it writes. Attached before the replay is read, so
    // nothing written in between is missed; what both give is dropped below by its seq.
    let local: LocalFollower | undefined = locals.has(id)
      ? { entries: (entries) => { queue.push(...entries); poke() }, gone: () => { local = undefined; poke() } }
      : undefined
    if (local !== undefined) locals.get(id)?.add(local)
    try {
      let cursor = after
      queue = [...await guarded(redis.xrange(k.log, `(${after}-0`, '+')) as StreamEntry[], ...queue]
      if (queue.length === 0 && await guarded(redis.exists(k.meta)) === 0) return
      while (!signal.aborted) {
        if (failure !== undefined) throw failure
        if (queue.length > 0) {
          let text = ''
          let end: string | undefined
          for (const [entryId, fields] of queue.splice(0)) {
            const seq = Number(entryId.slice(0, entryId.indexOf('-')))
            if (seq <= cursor) continue
            cursor = seq
            if (fields[0] === 'f') text += fields[1]
            else end = fields[1]
          }
          if (end !== undefined && end !== 'done') {
            const err = reviveError(end)
            // A fresh request that got nothing yet: an HTTP error with its status (a 429 keeps its
            // meaning). Anyone else: an `error` event with the id of the end, so that an
            // EventSource reconnecting after it is told (204) that there is nothing more.
            if (after === 0 && !sent && text === '') throw err
            text += errorFrame(err, `${id}:${cursor}`)
          }
          if (text !== '') {
            sent = true
            yield new SseFrame(text)
          }
          if (end !== undefined) return
          continue
        }
        if (local === undefined) watch ??= reader.watch(k.log, `${cursor}-0`, (entries) => { queue.push(...entries); poke() })
        let timer: NodeJS.Timeout | undefined
        const idle = await new Promise<boolean>((resolve) => {
          wake = () => resolve(false)
          timer = setTimeout(() => resolve(true), tickMs * 3)
        })
        clearTimeout(timer)
        wake = undefined
        // Nothing for a while: is anyone still producing this generation?
        if (idle && queue.length === 0 && failure === undefined && !signal.aborted) {
          const [alive, end] = await guarded(Promise.all([redis.exists(k.alive), redis.hget(k.meta, 'end')]))
          if (end === null) throw new SSE_ERR_GENERATION_INTERRUPTED('it is gone from Redis')
          if (alive === 0 && end === '') {
            // Its runner has not said it is alive for `outageMs`: it died. Its end is written
            // here, once for every follower, and arrives through the watch like any other.
            const gone = serializeError(new SSE_ERR_GENERATION_INTERRUPTED('the instance running it is gone'))
            await guarded(endScript.run(redis, [k.meta, k.log, k.alive], [gone, ttlMs, '1']))
          }
        }
      }
    } finally {
      clearInterval(heartbeat)
      watch?.close()
      if (local !== undefined) locals.get(id)?.delete(local)
      follows.delete(state)
      signal.removeEventListener('abort', poke)
    }
  }

  async function stop (id: string, owner: string): Promise<boolean> {
    if (!/^[A-Za-z0-9_-]{22}$/.test(id)) return false
    ready()
    const k = keys(id)
    const [who, owned] = await Promise.all([guarded(redis.hget(k.meta, 'owner')), digest(owner)])
    if (who !== owned) return false
    report(channels.generationStop, () => ({ reason: 'stop' }))
    running.get(id)?.abort(new Error('stopped'))
    await guarded(redis.multi().hset(k.meta, 'stop', '1').publish(stopChannel, id).exec())
    return true
  }

  async function close (): Promise<void> {
    if (closed) return
    closed = true
    for (const controller of running.values()) controller.abort(closing)
    // Runners write their end marker; bounded, so a Redis that is away cannot hold the close.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(runs), new Promise((resolve) => { timer = setTimeout(resolve, 1000) })])
    clearTimeout(timer)
    for (const f of [...follows]) f.fail(unavailable('the server is closing'))
    subscriber.disconnect()
    await reader.close()
  }

  return { start, lookup, follow, stop, close }
}
