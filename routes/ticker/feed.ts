// Runs a quote feed while someone is watching and publishes each quote into the hub, one topic per
// symbol (`ticker:<SYMBOL>`), so a subscriber to two symbols costs nothing for the other ten. The
// feed starts with the first subscriber and is aborted after the last one leaves: no timer, no
// upstream connection, no hub traffic while nobody looks.
import type { Hub } from '../../lib/hub/hub.js'
import type { Exclusive } from '../../lib/redis/lock.js'
import { simulatedQuotes, SIMULATED_SYMBOLS, type Quote, type QuoteFeed } from './simulated-quotes.js'

export type { Quote, QuoteFeed } from './simulated-quotes.js'

export interface TickerFeedOptions {
  /** Where quotes are published. */
  hub: Hub
  /**
   * The symbols the feed serves: a map to opening prices (the snapshot before the first quote),
   * or just the names for a real feed. Quotes for other symbols are ignored.
   * @default SIMULATED_SYMBOLS
   */
  symbols?: Readonly<Record<string, number>> | readonly string[]
  /**
   * A real price source. Given the signal that aborts when the last subscriber leaves.
   * @default a simulated random walk over `symbols`
   */
  feed?: QuoteFeed
  /** Tick of the simulated walk. @default 500 */
  intervalMs?: number
  /** Called when the feed throws; a subscriber arriving afterwards starts it again. @default ignore */
  onError?: (err: unknown) => void
  /**
   * For many instances on one shared hub: runs the feed only while this instance holds a lock
   * (`createRedisLock(...).exclusive`), so one instance publishes and every instance shows the
   * same quotes; the others keep their snapshot current from the hub.
   * @default undefined (the feed runs here whenever someone watches)
   */
  exclusive?: Exclusive
}

export interface TickerFeed {
  /** The symbols served, upper case. */
  readonly symbols: readonly string[]
  topic: (symbol: string) => string
  /**
   * The latest quote of each of `symbols`, in the order asked: the hub's last message of each
   * topic (whichever instance published it), else the opening price.
   */
  snapshot: (symbols: readonly string[]) => Promise<Quote[]>
  /** Counts a subscriber in (starting the feed for the first); call the returned function when it leaves. */
  acquire: () => () => void
  /** Stops the feed whoever is watching. */
  close: () => Promise<void>
}

export function createTickerFeed (opts: TickerFeedOptions): TickerFeed {
  const { hub } = opts
  const given = opts.symbols ?? SIMULATED_SYMBOLS
  const names = Array.isArray(given) ? given as readonly string[] : Object.keys(given)
  const open: Record<string, number> = Array.isArray(given) ? {} : given as Record<string, number>
  const symbols = names.map((s) => s.toUpperCase())
  const known = new Set(symbols)
  const feed = opts.feed ?? simulatedQuotes({ symbols: open, intervalMs: opts.intervalMs })
  const onError = opts.onError ?? (() => {})
  // Before the first quote of a symbol, its snapshot is the opening price.
  const opening = new Map<string, Quote>()
  const openedAt = Date.now()
  for (const [symbol, price] of Object.entries(open)) {
    opening.set(symbol.toUpperCase(), { symbol: symbol.toUpperCase(), price, change: 0, ts: openedAt, ...(opts.feed === undefined ? { simulated: true } : {}) })
  }
  const loops = new Set<Promise<void>>()
  let controller: AbortController | undefined
  let watchers = 0
  let closed = false

  const topic = (symbol: string): string => 'ticker:' + symbol

  async function pump (signal: AbortSignal): Promise<void> {
    try {
      for await (const quote of feed(signal)) {
        if (signal.aborted) break
        const symbol = String(quote.symbol).toUpperCase()
        if (!known.has(symbol)) continue
        const q = symbol === quote.symbol ? quote : { ...quote, symbol }
        await hub.publish(topic(symbol), { event: 'quote', data: q })
      }
    } catch (err) {
      if (!signal.aborted) onError(err)
    }
  }

  function start (): void {
    const ac = new AbortController()
    controller = ac
    // With `exclusive`, the instances that do not hold the lock publish nothing: their snapshots
    // come from the hub, which has the quotes of the one that does.
    const work = opts.exclusive === undefined ? pump(ac.signal) : opts.exclusive(ac.signal, pump)
    const loop = work.finally(() => {
      loops.delete(loop)
      if (controller === ac) controller = undefined
    })
    loops.add(loop)
  }

  function stop (): void {
    controller?.abort()
    controller = undefined
  }

  async function snapshot (wanted: readonly string[]): Promise<Quote[]> {
    const last = await Promise.all(wanted.map((s) => hub.last(topic(s)).catch(() => undefined)))
    return wanted.flatMap((s, i) => (last[i]?.message.data as Quote | undefined) ?? opening.get(s) ?? [])
  }

  return {
    symbols,
    topic,
    snapshot,
    acquire () {
      if (closed) return () => {}
      if (++watchers === 1 || controller === undefined) start()
      let released = false
      return () => {
        if (released) return
        released = true
        if (--watchers === 0) stop()
      }
    },
    close: async () => {
      closed = true
      watchers = 0
      stop()
      while (loops.size > 0) await Promise.all(loops)
    }
  }
}
