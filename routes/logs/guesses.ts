// Wrong LOGS_TOKEN guesses per client, in a fixed window: past the limit a client is refused
// before its token is even compared, until the window ends. Bounded memory: at most `maxClients`
// entries, the oldest dropped first (a flood of addresses forgets, it does not grow).

export interface GuessLimit {
  /** Wrong tokens allowed per client per window. @default 10 */
  max?: number
  /** @default 60000 */
  windowMs?: number
}

export interface Guesses {
  /** Seconds until `client` may guess again, or 0 when it may now. */
  blockedFor: (client: string) => number
  /** Counts one wrong token. */
  miss: (client: string) => void
}

export function createGuesses (limit: Required<GuessLimit>, maxClients = 10_000): Guesses {
  const misses = new Map<string, { count: number, until: number }>()
  return {
    blockedFor (client) {
      const entry = misses.get(client)
      if (entry === undefined) return 0
      const left = entry.until - Date.now()
      if (left <= 0) {
        misses.delete(client)
        return 0
      }
      return entry.count >= limit.max ? Math.ceil(left / 1000) : 0
    },
    miss (client) {
      const now = Date.now()
      let entry = misses.get(client)
      if (entry === undefined || entry.until <= now) {
        if (misses.size >= maxClients) misses.delete(misses.keys().next().value as string)
        entry = { count: 0, until: now + limit.windowMs }
        misses.set(client, entry)
      }
      entry.count++
    }
  }
}
