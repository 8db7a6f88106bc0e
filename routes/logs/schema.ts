// JSON schemas of /logs (routes/logs/index.ts): the query, and one OpenAPI `itemSchema` branch per event.
import { gapEvent, hubEventId, jsonData, jsonError, lastEventIdQuery, resetEvent } from '../../lib/hub/schema.js'
import { LOG_LEVELS } from './log-stream.js'

export const logsQuery = {
  type: 'object',
  properties: {
    level: { type: 'string', enum: Object.keys(LOG_LEVELS), default: 'info', description: 'The lowest level sent.' },
    token: { type: 'string', maxLength: 1024, description: 'The `LOGS_TOKEN`, for `EventSource`, which cannot send `Authorization`.' },
    lastEventId: lastEventIdQuery
  }
}

const logEvent = {
  title: 'log',
  description: 'One pino record as the logger wrote it, credentials redacted.',
  type: 'object',
  required: ['event', 'data', 'id'],
  properties: {
    event: { const: 'log' },
    id: hubEventId,
    data: jsonData({
      type: 'object',
      required: ['level', 'time'],
      properties: {
        level: { type: 'integer', description: '10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.' },
        time: { type: 'integer', description: 'Milliseconds since the Unix epoch.' },
        msg: { type: 'string' },
        reqId: { type: 'string' },
        req: { type: 'object', description: '`{ method, url, host, remoteAddress, remotePort }`' },
        res: { type: 'object', description: '`{ statusCode }`' },
        responseTime: { type: 'number' }
      }
    })
  }
}

export const logsResponses = {
  200: {
    description: 'A `text/event-stream` of `log` events; `gap` when this reader fell behind; `reset` then the history when its `Last-Event-ID` cannot be resumed.',
    content: {
      'text/event-stream': {
        schema: { type: 'string' },
        itemSchema: { oneOf: [logEvent, gapEvent, resetEvent('The `Last-Event-ID` cannot be resumed; the whole history at this level follows, then live records.')] }
      }
    }
  },
  400: jsonError('A level that does not exist, or a malformed `Last-Event-ID`.'),
  401: jsonError('`LOGS_TOKEN` is set and the request carries no bearer token, or the wrong one (`SSE_ERR_UNAUTHORIZED`).')
}
