// Redis connections for the backplane (REDIS_URL), set up so that nothing waits or piles up while
// Redis is away: a command sent while disconnected fails at once instead of joining an unbounded
// offline queue, a command in flight when the connection drops fails instead of being re-sent
// (a re-sent publish could publish twice), and ioredis reconnects by itself with a capped backoff.
// A Redis that hangs (stopped, swapping, a network path that drops packets silently) keeps its TCP
// connection open, so none of that notices it: every command also gets a timeout.
import type { Redis, RedisOptions } from 'ioredis'
import { SSE_ERR_HUB_UNAVAILABLE, SSE_ERR_INVALID_OPTION } from '../errors.js'
import { loadPeer } from '../peer.js'

/** ioredis, or SSE_ERR_MISSING_PEER when it is not installed (it is an optional peer). */
export const loadIoredis = async (): Promise<{ Redis: typeof Redis }> =>
  await loadPeer('fastify-sse-stream/redis', 'ioredis', async () => await import('ioredis'))

/** Reconnect delays: 50 ms doubling to 2 s, plus up to 20% jitter so instances do not stampede. */
export function backoff (attempt: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(attempt - 1, 6))
  return Math.round(base * (1 + Math.random() * 0.2))
}

/** ioredis options for every backplane connection (`duplicate()` keeps them). */
export const backplaneOptions: RedisOptions = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  retryStrategy: backoff,
  connectTimeout: 5000
}

/** `redis://user:secret@host:6379/0` as `redis://user:***@host:6379/0`, for messages and logs. */
export function redactRedisUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparseable URL)'
  }
}

function checkUrl (url: string, variable: string): void {
  let protocol: string
  try {
    protocol = new URL(url).protocol
  } catch {
    throw new SSE_ERR_INVALID_OPTION(variable, 'expected a URL such as redis://127.0.0.1:6379')
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') {
    throw new SSE_ERR_INVALID_OPTION(variable, `expected redis:// or rediss://, got the scheme "${protocol}"`)
  }
}

export interface ConnectRedisOptions {
  /**
   * The client's name in Redis' `CLIENT LIST`.
   * @default 'fastify-sse-stream'
   */
  name?: string
  /**
   * What the URL is called in error messages (the service passes the environment variable).
   * @default 'REDIS_URL'
   */
  variable?: string
  /**
   * How long a command may go unanswered before it fails (ioredis `commandTimeout`), so a hung
   * Redis is reported instead of holding requests. Duplicated connections keep it.
   * @default 2000
   */
  commandTimeoutMs?: number
}

/** How long a command may go unanswered before it fails (ioredis `commandTimeout`). */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2000

/**
 * Whether `redis` answers a PING within `timeoutMs`: the reason it does not, or undefined when it
 * does. A connection that is up but whose server does not answer (SIGSTOP, a hung host) is not up.
 */
export async function probeRedis (redis: Redis, timeoutMs: number): Promise<string | undefined> {
  if (redis.status !== 'ready') return `Redis is ${redis.status}`
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<string>((resolve) => { timer = setTimeout(resolve, timeoutMs, `Redis did not answer a PING within ${timeoutMs} ms`) })
  try {
    return await Promise.race([redis.ping().then(() => undefined, (err: Error) => `PING failed: ${err.message}`), late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Connects to the Redis at `url` (redis:// or rediss://) with the backplane's settings and
 * resolves once it answers. Redis unreachable: rejects with SSE_ERR_HUB_UNAVAILABLE naming the
 * variable and the address (without its password), so a server does not start half-working.
 * Later outages are survived: the client reconnects.
 */
export async function connectRedis (url: string, opts: ConnectRedisOptions = {}): Promise<Redis> {
  const variable = opts.variable ?? 'REDIS_URL'
  checkUrl(url, variable)
  const { Redis } = await loadIoredis()
  const redis = new Redis(url, {
    ...backplaneOptions,
    lazyConnect: true,
    // No retries until the first connection works: a wrong address should fail now, not hang.
    retryStrategy: () => null,
    // Kept by `duplicate()`; blocking readers add their block time to it (stream-reader.ts).
    commandTimeout: opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectionName: opts.name ?? 'fastify-sse-stream'
  })
  let lastError: unknown
  // Without a listener, ioredis prints every connection error; the owner logs what matters.
  redis.on('error', (err) => { lastError = err })
  try {
    await redis.connect()
    await redis.ping()
  } catch (err) {
    redis.disconnect()
    const cause = (lastError ?? err) as Error
    throw new SSE_ERR_HUB_UNAVAILABLE(`cannot reach Redis at ${variable}=${redactRedisUrl(url)} (${cause.message}): ` +
      `start Redis there or fix ${variable}`)
  }
  // From now on outages are survived; and duplicates of this client connect by themselves.
  redis.options.retryStrategy = backoff
  redis.options.lazyConnect = false
  return redis
}
