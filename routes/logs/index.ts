// GET /logs: the server's own pino records, live, from the hub the log stream publishes into
// (routes/logs/log-stream.ts). Filtered by minimum level, replayable by Last-Event-ID; a reader that falls
// behind loses its oldest queued records and is told how many with `event: gap`
// (docs/hub.md, "Slow subscribers") instead of holding the server's memory.
import type { FastifyPluginAsync } from 'fastify'
import type { Hub } from '../../lib/hub/hub.js'
import sse from '../../lib/index.js'
import { hubSource } from '../../lib/hub/source.js'
import { logTopicsFrom, type LogLevelName } from './log-stream.js'
import { logsQuery, logsResponses } from './schema.js'
import { bearerToken } from './bearer-token.js'
import type { GuessLimit } from './guesses.js'

export interface LogsRouteOptions {
  /** The hub `createLogStream` publishes into. */
  hub: Hub
  /**
   * `LOGS_TOKEN`: when set, a request must carry `Authorization: Bearer <token>` or `?token=`.
   * @default undefined (open)
   */
  token?: string
  /** Wrong tokens one client may try per window before a 429. @default { max: 10, windowMs: 60000 } */
  guesses?: GuessLimit
}

interface LogsQuery { level: LogLevelName, token?: string }

const DESCRIPTION = `The server's own log records as Server-Sent Events, credentials redacted.

- \`log\`: one pino record (JSON), id \`<epoch>:<seq>\`; reconnecting with \`Last-Event-ID\` replays what was missed.
- \`gap\`: \`{ count }\` records were dropped because this reader fell behind.
- \`reset\`: the \`Last-Event-ID\` cannot be resumed; the history follows.

When the server has \`LOGS_TOKEN\`, send \`Authorization: Bearer <token>\` (or \`?token=\` from a browser).`

const logs: FastifyPluginAsync<LogsRouteOptions> = async (app, opts) => {
  const { hub } = opts
  // `reply.sse` comes from the core plugin; mounted alone, the route brings it.
  if (!app.hasReplyDecorator('sse')) await app.register(sse)
  const authorize = bearerToken(opts.token, 'logs', 'LOGS_TOKEN', opts.guesses)

  app.get<{ Querystring: LogsQuery }>('/logs', {
    onRequest: authorize,
    schema: {
      tags: ['streams'],
      summary: 'The server\'s own logs as Server-Sent Events',
      description: DESCRIPTION,
      querystring: logsQuery,
      response: logsResponses
    }
  }, (request, reply) => {
    const { level } = request.query
    const source = hubSource(hub, { topics: logTopicsFrom(level), overflow: 'drop' })
    return reply.sse(async function * (ctx) {
      const records = source(ctx)
      // Sent at once, so the client sees the stream open (EventSource \`open\`) before the next record.
      yield { comment: `logs at level ${level} and above` }
      yield * records
    })
  })
}

export default logs

export { createLogStream, logRedaction, LOG_LEVELS, type LogStreamOptions, type LogLevelName } from './log-stream.js'
export type { UrlRedaction } from './redact.js'
export type { GuessLimit } from './guesses.js'
