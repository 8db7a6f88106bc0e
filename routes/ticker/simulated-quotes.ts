// The ticker's default price source: a random walk over fictional symbols. It is a demo, and says
// so in every quote (`simulated: true`); a real market feed has the same shape (`QuoteFeed`).
import { setTimeout as sleep } from 'node:timers/promises'

/** One price change. `change` is measured from the feed's opening price for the symbol. */
export interface Quote {
  symbol: string
  price: number
  change: number
  /** Milliseconds since the Unix epoch. */
  ts: number
  /** True for made-up prices. */
  simulated?: boolean
}

/** A source of quotes, started when the first subscriber arrives; it must end when `signal` aborts. */
export type QuoteFeed = (signal: AbortSignal) => AsyncIterable<Quote>

/** Fictional companies and their opening prices. */
export const SIMULATED_SYMBOLS: Readonly<Record<string, number>> = Object.freeze({
  ACME: 120,
  GLOBEX: 85.5,
  INITECH: 42.1,
  UMBRELLA: 310,
  HOOLI: 1520,
  STARK: 640
})

export interface SimulatedQuotesOptions {
  /** Symbols and opening prices. @default SIMULATED_SYMBOLS */
  symbols?: Readonly<Record<string, number>>
  /** Time between ticks; on each tick about half of the symbols move. @default 500 */
  intervalMs?: number
  /** Uniform random numbers in [0, 1); inject a seeded one for reproducible walks. @default Math.random */
  random?: () => number
  /** Largest relative move per tick. @default 0.004 */
  volatility?: number
}

const cents = (n: number): number => Math.round(n * 100) / 100

export function simulatedQuotes (opts: SimulatedQuotesOptions = {}): QuoteFeed {
  const open = opts.symbols ?? SIMULATED_SYMBOLS
  const intervalMs = opts.intervalMs ?? 500
  const random = opts.random ?? Math.random
  const volatility = opts.volatility ?? 0.004
  return async function * walk (signal) {
    const prices = new Map(Object.entries(open))
    while (!signal.aborted) {
      try {
        await sleep(intervalMs, undefined, { signal })
      } catch {
        return // aborted: the timer is already cleared
      }
      const ts = Date.now()
      for (const [symbol, price] of prices) {
        if (random() < 0.5) continue
        const next = Math.max(0.01, cents(price * (1 + (random() * 2 - 1) * volatility)))
        if (next === price) continue
        prices.set(symbol, next)
        yield { symbol, price: next, change: cents(next - open[symbol]), ts, simulated: true }
      }
    }
  }
}
