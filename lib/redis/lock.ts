// A lock with expiry in Redis, for work that must run on one instance at a time (the simulated
// ticker feed): `SET key token NX PX ttl` to take it, a renewal every third of the ttl while the
// work runs, and a release that only deletes our own token (so one instance never frees another's). An instance that dies stops renewing,
// so the key expires within `ttlMs` and another instance takes over on its next try.
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { SSE_ERR_INVALID_OPTION } from '../errors.js'
import { integerOption } from '../internal/integer-option.js'
import { sleep } from '../internal/sleep.js'
import { RedisScript } from './script.js'

export interface RedisLockOptions {
  redis: Redis
  /** The lock's key; every instance that should take turns uses the same. */
  key: string
  /**
   * How long the lock outlives its holder's last renewal: the longest pause after a holder dies.
   * @default 5000
   */
  ttlMs?: number
}

/** Runs `task` only while this instance holds the lock; see `createRedisLock`. */
export type Exclusive = (signal: AbortSignal, task: (signal: AbortSignal) => Promise<void>) => Promise<void>

export interface RedisLock {
  /**
   * Until `signal` aborts: waits for the lock, runs `task` while holding it (its signal aborts if
   * the lock is lost), releases it when the task ends, and tries again.
   */
  exclusive: Exclusive
  /** True while this instance holds the lock. */
  readonly held: boolean
}

// Taken when free, or when it still holds our token (a release lost while Redis was away).
const takeScript = new RedisScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

const renewScript = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

const releaseScript = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

export function createRedisLock (opts: RedisLockOptions): RedisLock {
  const { redis, key } = opts
  const ttlMs = integerOption('ttlMs', opts.ttlMs, 5000, 30)
  if (typeof key !== 'string' || key === '') throw new SSE_ERR_INVALID_OPTION('key', 'expected a non-empty string')
  const everyMs = Math.floor(ttlMs / 3)
  let held = 0

  async function take (token: string): Promise<boolean> {
    try {
      return await takeScript.run(redis, [key], [token, ttlMs]) === 1
    } catch {
      return false // Redis away: not ours, try again later
    }
  }

  async function exclusive (signal: AbortSignal, task: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const token = randomBytes(12).toString('base64url')
    while (!signal.aborted) {
      if (!await take(token)) {
        await sleep(everyMs, signal)
        continue
      }
      held++
      const holding = new AbortController()
      const lost = (why: string): void => holding.abort(new Error(why))
      const onAbort = (): void => lost('stopped')
      signal.addEventListener('abort', onAbort, { once: true })
      const renew = setInterval(() => {
        renewScript.run(redis, [key], [token, ttlMs]).then(
          (ok) => { if (ok !== 1) lost('the lock expired') },
          () => lost('could not renew the lock'))
      }, everyMs)
      try {
        await task(holding.signal)
      } catch {
        // The task reports its own errors; the lock is released and taken again below.
      } finally {
        clearInterval(renew)
        signal.removeEventListener('abort', onAbort)
        held--
        await releaseScript.run(redis, [key], [token]).catch(() => {})
      }
      await sleep(everyMs, signal)
    }
  }

  return { exclusive, get held () { return held > 0 } }
}
