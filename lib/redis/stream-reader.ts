// One blocking reader per instance: a dedicated connection that runs `XREAD BLOCK` over every
// stream someone on this instance watches, each from its own cursor, and hands new entries to the
// watchers. Adding a stream interrupts the blocked read (`CLIENT UNBLOCK`) so it is read at once.
// When the connection drops, the owner is told (`onDown`) and the reader waits for ioredis to
// reconnect, then goes on from each watch's cursor: the last id it handed over.
import type { Redis } from 'ioredis'
import { backplaneOptions } from './connect.js'
import { channels, report } from '../metrics/channels.js'

/** One entry of a stream: its id and its field/value list, as ioredis returns them. */
export type StreamEntry = [id: string, fields: string[]]

export interface StreamWatch {
  readonly key: string
  /** The id of the last entry handed over (or the starting point): the next read is after it. */
  cursor: string
  /** Stops watching; the stream is dropped from the next read. */
  close: () => void
}

export interface StreamReaderOptions {
  /** A connection to duplicate for the blocking reads; its settings are kept, ours are added. */
  redis: Redis
  /** A connection for `CLIENT UNBLOCK` (not the reader's own). */
  commands: Redis
  /** Longest single block, ms: a bound on how long a lost wake-up can delay a new stream. @default 5000 */
  blockMs?: number
  /** Entries per read per stream. @default 1000 */
  count?: number
  /** Called when a read fails because the connection is lost (and once per outage). */
  onDown?: (err: Error) => void
  connectionName?: string
}

/** Compares two stream ids `ms-seq`. */
export function compareIds (a: string, b: string): number {
  const [am, as] = splitId(a)
  const [bm, bs] = splitId(b)
  return am !== bm ? am - bm : as - bs
}

function splitId (id: string): [number, number] {
  const dash = id.indexOf('-')
  return dash === -1 ? [Number(id), 0] : [Number(id.slice(0, dash)), Number(id.slice(dash + 1))]
}

interface Watch extends StreamWatch {
  onEntries: (entries: StreamEntry[]) => void
  closed: boolean
}

export class StreamReader {
  readonly #opts: StreamReaderOptions
  readonly #conn: Redis
  readonly #watches = new Map<string, Set<Watch>>()
  #clientId: number | undefined
  #reading = false
  // Bumped by every new watch; a read issued before the bump does not cover it.
  #version = 0
  #readVersion = 0
  #wake: (() => void) | undefined
  #closed = false
  #down = false
  #loop: Promise<void>

  constructor (opts: StreamReaderOptions) {
    this.#opts = opts
    this.#conn = opts.redis.duplicate({
      ...backplaneOptions,
      retryStrategy: opts.redis.options.retryStrategy ?? backplaneOptions.retryStrategy,
      // A blocked XREAD legitimately waits `blockMs`; past that plus the command timeout, Redis
      // is hung, and the failed read reports it (onDown) like a dropped connection.
      commandTimeout: opts.redis.options.commandTimeout === undefined ? undefined : opts.redis.options.commandTimeout + (opts.blockMs ?? 5000),
      lazyConnect: false,
      connectionName: opts.connectionName ?? 'fastify-sse-stream:reader'
    })
    this.#conn.on('error', () => {}) // reported through failed reads
    this.#conn.on('close', () => { this.#clientId = undefined })
    this.#conn.on('ready', () => { this.#everReady = true; this.#wake?.() })
    this.#loop = this.#run()
  }

  /** True while the reader's connection is up (or still making its first connection). */
  get connected (): boolean {
    const status = this.#conn.status
    return status === 'ready' || (!this.#everReady && (status === 'wait' || status === 'connecting' || status === 'connect'))
  }

  #everReady = false

  /** Watches `key` for entries after `cursor`; `onEntries` gets them in order, without repeats. */
  watch (key: string, cursor: string, onEntries: (entries: StreamEntry[]) => void): StreamWatch {
    const watch: Watch = {
      key,
      cursor,
      onEntries,
      closed: false,
      close: () => {
        if (watch.closed) return
        watch.closed = true
        const set = this.#watches.get(key)
        set?.delete(watch)
        if (set?.size === 0) this.#watches.delete(key)
      }
    }
    let set = this.#watches.get(key)
    if (set === undefined) this.#watches.set(key, set = new Set())
    set.add(watch)
    this.#version++
    this.#interrupt()
    return watch
  }

  /** Number of streams being read. */
  get streams (): number { return this.#watches.size }

  async close (): Promise<void> {
    this.#closed = true
    this.#wake?.()
    this.#conn.disconnect()
    await this.#loop
  }

  async #run (): Promise<void> {
    const { count = 1000, blockMs = 5000 } = this.#opts
    while (!this.#closed) {
      if (this.#watches.size === 0 || this.#conn.status !== 'ready') {
        await new Promise<void>((resolve) => { this.#wake = resolve })
        this.#wake = undefined
        continue
      }
      try {
        if (this.#clientId === undefined) this.#clientId = await this.#conn.client('ID') as number
        // From here to the XREAD nothing awaits: a watch added later bumps #version and unblocks it.
        const keys: string[] = []
        const ids: string[] = []
        for (const [key, set] of this.#watches) {
          let min: string | undefined
          for (const w of set) if (min === undefined || compareIds(w.cursor, min) < 0) min = w.cursor
          keys.push(key)
          ids.push(min as string)
        }
        if (keys.length === 0) continue
        this.#readVersion = this.#version
        this.#reading = true
        const reply = await this.#conn.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids) as Array<[string, StreamEntry[]]> | null
        this.#reading = false
        this.#down = false
        if (reply !== null) this.#deliver(reply)
      } catch (err) {
        this.#reading = false
        if (this.#closed) break
        report(channels.redisError, () => ({ operation: 'read' }))
        if (!this.#down) {
          this.#down = true
          this.#opts.onDown?.(err as Error)
        }
        // ioredis reconnects with its backoff; the loop sleeps until 'ready' (or a new watch).
        if (this.#conn.status === 'ready') await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
  }

  #deliver (reply: Array<[string, StreamEntry[]]>): void {
    for (const [key, entries] of reply) {
      const set = this.#watches.get(key)
      if (set === undefined || entries.length === 0) continue
      const last = entries[entries.length - 1][0]
      for (const w of [...set]) {
        if (w.closed || compareIds(w.cursor, last) >= 0) continue
        const fresh = compareIds(w.cursor, entries[0][0]) < 0 ? entries : entries.filter((e) => compareIds(e[0], w.cursor) > 0)
        w.cursor = last
        w.onEntries(fresh)
      }
    }
  }

  /** Makes a blocked read return so the next one covers the new watch. */
  #interrupt (): void {
    this.#wake?.()
    if (!this.#reading || this.#interrupting) return
    this.#interrupting = true
    void this.#unblock().finally(() => { this.#interrupting = false })
  }

  #interrupting = false

  async #unblock (): Promise<void> {
    // The read may not have reached Redis yet, in which case CLIENT UNBLOCK finds nothing to
    // unblock: try again shortly, until the read in flight is one issued after the new watch.
    for (let attempt = 0; attempt < 50 && this.#reading && this.#readVersion < this.#version && !this.#closed; attempt++) {
      const id = this.#clientId
      if (id === undefined || this.#opts.commands.status !== 'ready') return
      try {
        if (await this.#opts.commands.client('UNBLOCK', id) === 1) return
      } catch {
        return
      }
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  }
}
