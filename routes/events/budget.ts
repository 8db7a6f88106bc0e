// How many answers may be generated at once, per client and for the whole instance. Checked before
// anything is asked upstream, and held by the generation itself (not the connection): with resuming,
// an answer keeps running, and costing, after its client went away.
import { SSE_ERR_TOO_MANY_GENERATIONS } from './errors.js'

export interface GenerationLimits {
  /** Generations one client may have running at once; 0: no cap. @default 3 */
  perClient?: number
  /** Generations this instance runs at once, for everyone; 0: no cap. @default 100 */
  total?: number
  /** `retry-after` (seconds) of the 429 past a cap. @default 5 */
  retryAfterS?: number
}

export interface Budget {
  /** Takes a slot for `client`, or throws a 429 (with `retryAfter`) past either cap. */
  take: (client: string) => () => void
  readonly running: number
}

export function createBudget (limits: Required<GenerationLimits>): Budget {
  const byClient = new Map<string, number>()
  let running = 0
  return {
    get running () { return running },
    take (client) {
      const mine = byClient.get(client) ?? 0
      const over = limits.perClient !== 0 && mine >= limits.perClient
        ? `for this client (at most ${limits.perClient})`
        : limits.total !== 0 && running >= limits.total ? `on this server (at most ${limits.total})` : undefined
      if (over !== undefined) {
        throw Object.assign(new SSE_ERR_TOO_MANY_GENERATIONS(over), { retryAfter: String(limits.retryAfterS) })
      }
      byClient.set(client, mine + 1)
      running++
      let released = false
      return () => {
        if (released) return
        released = true
        running--
        const left = (byClient.get(client) ?? 1) - 1
        if (left === 0) byClient.delete(client)
        else byClient.set(client, left)
      }
    }
  }
}
