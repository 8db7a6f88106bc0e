// GET /ticker: live quotes through the hub. First an `event: snapshot` with the latest quote of
// each requested symbol, then `event: quote` frames; a reconnect with Last-Event-ID is replayed
// the quotes it missed. Slow readers are conflated to the newest quote per symbol
// (docs/hub.md, "Slow subscribers"), so they never hold memory or slow the others.
import type { FastifyPluginAsync } from 'fastify'
import { createHub, type Hub } from '../../lib/hub/hub.js'
import { createTickerFeed, type TickerFeedOptions } from './feed.js'
import { tickerQuery, tickerResponses } from './schema.js'
import { SSE_ERR_UNKNOWN_SYMBOL } from './errors.js'

export interface TickerRouteOptions extends Omit<TickerFeedOptions, 'hub' | 'onError'> {
  /**
   * The hub quotes go through; pass the app's to share it (and, later, a Redis one).
   * @default a hub of this route's own, closed with the app
   */
  hub?: Hub
}

const DESCRIPTION = `Live quotes as Server-Sent Events. The default feed is a **simulated random walk** over
fictional symbols (\`"simulated": true\` in every quote), not market data.

- \`snapshot\` (first, no id): \`{ quotes: [{ symbol, price, change, ts, simulated }] }\`.
- \`quote\`: \`{ symbol, price, change, ts, simulated }\`, id \`<epoch>:<seq>\`. Reconnecting with
  \`Last-Event-ID\` replays the quotes missed; a slow reader gets the newest quote per symbol.
- \`reset\`: the \`Last-Event-ID\` cannot be resumed (server restarted, or history too short).`

const ticker: FastifyPluginAsync<TickerRouteOptions> = async (app, opts) => {
  const ownHub = opts.hub === undefined
  const hub = opts.hub ?? createHub({ historySize: 200 })
  const feed = createTickerFeed({ ...opts, hub, onError: (err) => app.log.error({ err }, 'ticker feed failed') })
  const served = new Set(feed.symbols)
  const simulated = opts.feed === undefined

  app.addHook('onClose', async () => {
    await feed.close()
    if (ownHub) await hub.close()
  })

  app.get<{ Querystring: { symbols?: string } }>('/ticker', {
    schema: {
      tags: ['streams'],
      summary: 'Live quotes as Server-Sent Events (simulated by default)',
      description: DESCRIPTION,
      querystring: tickerQuery,
      response: tickerResponses
    }
  }, (request, reply) => {
    const asked = request.query.symbols
    const symbols = asked === undefined ? feed.symbols : [...new Set(asked.split(',').map((s) => s.toUpperCase()))]
    for (const symbol of symbols) if (!served.has(symbol)) throw new SSE_ERR_UNKNOWN_SYMBOL(symbol)
    return reply.sse(async function * ({ signal, lastEventId }) {
      const release = feed.acquire()
      try {
        // Subscribed before the snapshot is read: every later quote is in the subscription (on
        // Redis, the subscribe script runs before the read; a quote may then be in both).
        const quotes = hub.subscribe({
          topics: symbols.map(feed.topic),
          lastEventId,
          signal,
          overflow: 'conflate',
          // The snapshot carries the state, so a stale id needs no history replay.
          resetTo: 'live'
        })
        yield { event: 'snapshot', data: { quotes: await feed.snapshot(symbols), simulated } }
        yield * quotes
      } finally {
        release()
      }
    })
  })
}

export default ticker
