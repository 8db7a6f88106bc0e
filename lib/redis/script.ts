// A Lua script run by its SHA1 (EVALSHA), sent in full only when Redis does not know it yet: after
// a restart, or on first use. Nothing is added to the caller's connection object.
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'

export class RedisScript {
  readonly sha: string
  constructor (readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex')
  }

  async run (redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err
      return await redis.eval(this.lua, keys.length, ...keys, ...args)
    }
  }
}
