// Resumable generations across instances: the `Generations` interface of lib/generations/store.ts with a
// generation's frames in a Redis stream, so a reconnect that lands on any instance replays and
// follows the same answer while the instance that started it keeps generating.
//
// Keys under the prefix, for a generation <g>:
//   <prefix><g>        hash: `owner` (a SHA-256 of it, not the owner itself), `n` frames so far,
//                      `end` ('' while running, else `done` or the error as JSON), `stop`
//   <prefix><g>:log    stream: entry `<seq>-0` holds frame seq (field `f`); one entry past the last
//                      frame marks the end (field `x`, as `end`), so a follower reads it in order
//   <prefix><g>:hb     set by every attached follower, on any instance, with an expiry of the grace
//                      period: when it is gone, nobody has been attached for that long
//   <prefix><g>:alive  refreshed by the instance running the generation while it runs
//   <prefix>stop       pub/sub channel: a stop received by any instance reaches the runner at once
// Running keys expire `ttlMs + graceMs` after the last write; finished ones `ttlMs` after the end.
import { createHash, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { encode, SseFrame } from '../sse/encoder.js'
import { SSE_ERR_HUB_UNAVAILABLE, SSE_ERR_INVALID_OPTION } from '../errors.js'
import { integerOption } from '../internal/integer-option.js'
import { parseEventId, type GenerationStoreOptions, type Generations, type Lookup, type Producer } from '../generations/store.js'
import { backplaneOptions } from './connect.js'
import { RedisScript } from './script.js'
import { StreamReader, type StreamEntry, type StreamWatch } from './stream-reader.js'
import { channels, report } from '../metrics/channels.js'

export interface RedisGenerationsOptions extends GenerationStoreOptions {
  /** A connected ioredis client; a reader and a pub/sub connection are duplicated from it. */
  redis: Redis
  /** @default 'sse:gen:' */
  prefix?: string
}

// KEYS: meta, log. ARGV: seq, frame, expiry ms.
const appendScript = new RedisScript(`
redis.call('XADD', KEYS[2], ARGV[1] .. '-0', 'f', ARGV[2])
redis.call('HSET', KEYS[1], 'n', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
`)

// KEYS: meta, log, alive. ARGV: seq of the end marker, end, ttl ms.
const endScript = new RedisScript(`
redis.call('XADD', KEYS[2], ARGV[1] .. '-0', 'x', ARGV[2])
redis.call('HSET', KEYS[1], 'end', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('DEL', KEYS[3])
`)

const digest = (owner: string): string => createHash('sha256').update(owner).digest('hex')

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

export function createRedisGenerations (opts: RedisGenerationsOptions): Generations {
  const { redis } = opts
  if (redis === null || typeof redis !== 'object' || typeof redis.duplicate !== 'function') {
    throw new SSE_ERR_INVALID_OPTION('redis', 'expected an ioredis client')
  }
  const graceMs = integerOption('graceMs', opts.graceMs, 30_000, 0)
  const ttlMs = integerOption('ttlMs', opts.ttlMs, 300_000, 0)
  const maxEvents = integerOption('maxEvents', opts.maxEvents, 100_000, 0)
  const prefix = opts.prefix ?? 'sse:gen:'
  // How often a runner checks for a stop and for attached followers, and followers say they are.
  const tickMs = Math.max(20, Math.min(1000, Math.floor(graceMs / 3)))
  const keys = (id: string): { meta: string, log: string, hb: string, alive: string } =>
    ({ meta: prefix + id, log: prefix + id + ':log', hb: prefix + id + ':hb', alive: prefix + id + ':alive' })
  const stopChannel = prefix + 'stop'

  const running = new Map<string, AbortController>()
  const runs = new Set<Promise<void>>()
  const follows = new Set<Follow>()
  let closed = false

  const unavailable = (why: string): Error => new SSE_ERR_HUB_UNAVAILABLE(why)
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

  async function run (id: string, controller: AbortController, produce: Producer): Promise<void> {
    const k = keys(id)
    const expiry = ttlMs + graceMs
    let n = 0
    let end = 'done'
    // Stops, and nobody attached for the grace period, are noticed here (and stops at once by pub/sub).
    const tick = setInterval(() => {
      redis.pipeline().set(k.alive, '1', 'PX', tickMs * 3).hget(k.meta, 'stop').exists(k.hb).exec().then((results) => {
        if (results?.[1][1] === '1') controller.abort(new Error('stopped'))
        else if (results?.[2][1] === 0 && !controller.signal.aborted) {
          report(channels.generationStop, () => ({ reason: 'abandoned' }))
          controller.abort(new Error('abandoned: no client came back within the grace period'))
        }
      }, () => {})
    }, tickMs)
    try {
      for await (const event of produce(controller.signal)) {
        if (n >= maxEvents) throw new Error(`generation exceeded ${maxEvents} events`)
        const frame = encode({ ...event, id: `${id}:${n + 1}` })
        await appendScript.run(redis, [k.meta, k.log], [n + 1, frame, expiry])
        n++
      }
    } catch (err) {
      if (!controller.signal.aborted) end = serializeError(err)
      controller.abort(err)
    } finally {
      clearInterval(tick)
      running.delete(id)
      await endScript.run(redis, [k.meta, k.log, k.alive], [n + 1, end, ttlMs]).catch(() => {})
    }
  }

  async function start (owner: string, produce: Producer): Promise<string> {
    ready()
    const id = randomBytes(16).toString('base64url')
    const k = keys(id)
    await redis.multi()
      .hset(k.meta, 'owner', digest(owner), 'n', '0', 'end', '', 'stop', '')
      .pexpire(k.meta, ttlMs + graceMs)
      // The starting request attaches at once; until then the grace period runs as if it had left.
      .set(k.hb, '1', 'PX', graceMs + tickMs)
      .set(k.alive, '1', 'PX', tickMs * 3)
      .exec()
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
    const [who, n, end] = await redis.hmget(keys(parsed.generation).meta, 'owner', 'n', 'end')
    if (who !== digest(owner) || n === null || parsed.seq > Number(n)) return { status: 'unknown' }
    if (end !== null && end !== '' && parsed.seq === Number(n)) return { status: 'finished' }
    report(channels.generationResume, () => ({}))
    return { status: 'resumable', id: parsed.generation, after: parsed.seq }
  }

  async function * follow (id: string, after: number, signal: AbortSignal): AsyncGenerator<SseFrame> {
    ready()
    const k = keys(id)
    let queue: StreamEntry[] = []
    let failure: Error | undefined
    let wake: (() => void) | undefined
    const poke = (): void => { const w = wake; wake = undefined; w?.() }
    const state: Follow = { fail: (err) => { failure = err; poke() } }
    follows.add(state)
    signal.addEventListener('abort', poke, { once: true })
    // Attached: keeps the runner's grace period from running out, wherever the runner is.
    const beat = (): void => { redis.set(k.hb, '1', 'PX', graceMs + tickMs).catch(() => {}) }
    beat()
    const heartbeat = setInterval(beat, tickMs)
    let watch: StreamWatch | undefined
    try {
      let cursor = after
      queue = await redis.xrange(k.log, `(${after}-0`, '+') as StreamEntry[]
      if (queue.length === 0 && await redis.exists(k.meta) === 0) return
      while (!signal.aborted) {
        if (failure !== undefined) throw failure
        if (queue.length > 0) {
          let text = ''
          let end: string | undefined
          for (const [entryId, fields] of queue.splice(0)) {
            cursor = Number(entryId.slice(0, entryId.indexOf('-')))
            if (fields[0] === 'f') text += fields[1]
            else end = fields[1]
          }
          if (text !== '') yield new SseFrame(text)
          if (end !== undefined) {
            if (end !== 'done') throw reviveError(end)
            return
          }
          continue
        }
        watch ??= reader.watch(k.log, `${cursor}-0`, (entries) => { queue.push(...entries); poke() })
        let timer: NodeJS.Timeout | undefined
        const idle = await new Promise<boolean>((resolve) => {
          wake = () => resolve(false)
          timer = setTimeout(() => resolve(true), tickMs * 3)
        })
        clearTimeout(timer)
        wake = undefined
        // Nothing for a while: is anyone still producing this generation?
        if (idle && queue.length === 0 && failure === undefined && !signal.aborted) {
          const [alive, end] = await Promise.all([redis.exists(k.alive), redis.hget(k.meta, 'end')])
          if (alive === 0 && (end === null || end === '') && queue.length === 0) {
            throw unavailable('the instance running this generation is gone')
          }
        }
      }
    } finally {
      clearInterval(heartbeat)
      watch?.close()
      follows.delete(state)
      signal.removeEventListener('abort', poke)
    }
  }

  async function stop (id: string, owner: string): Promise<boolean> {
    if (!/^[A-Za-z0-9_-]{22}$/.test(id)) return false
    ready()
    const k = keys(id)
    if (await redis.hget(k.meta, 'owner') !== digest(owner)) return false
    report(channels.generationStop, () => ({ reason: 'stop' }))
    running.get(id)?.abort(new Error('stopped'))
    await redis.multi().hset(k.meta, 'stop', '1').publish(stopChannel, id).exec()
    return true
  }

  async function close (): Promise<void> {
    if (closed) return
    closed = true
    for (const controller of running.values()) controller.abort(new Error('server is closing'))
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
