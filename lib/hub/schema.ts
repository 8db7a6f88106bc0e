// OpenAPI pieces shared by the hub's stream routes (/ticker, /logs): the id format, the `reset` and
// `gap` events the hub itself sends, and the JSON error body of a refused request. Each event is
// described as it arrives after SSE parsing (OpenAPI 3.2.0, "Special Considerations for
// Server-Sent Events"): `data` a string, its JSON in `contentSchema`.
import { jsonData } from '../sse/openapi-parts.js'

export { jsonData, jsonError } from '../sse/openapi-parts.js'

export const hubEventId = {
  type: 'string',
  pattern: '^[0-9a-z]+:[0-9]+$',
  description: '`<epoch>:<seq>`: the epoch names the hub (the server process, or the Redis dataset with `REDIS_URL`), seq counts its publishes. Send it back as `Last-Event-ID` to resume.'
}

export const lastEventIdQuery = {
  type: 'string',
  maxLength: 256,
  description: 'Where to resume, for clients that cannot send `Last-Event-ID` (a first `EventSource` request).'
}

export function resetEvent (description: string): object {
  return {
    title: 'reset',
    description,
    type: 'object',
    required: ['event', 'data'],
    properties: {
      event: { const: 'reset' },
      id: hubEventId,
      data: jsonData({
        type: 'object',
        required: ['reason'],
        properties: {
          reason: {
            type: 'string',
            enum: ['epoch', 'expired', 'invalid'],
            description: '`epoch`: the id is from before a server restart; `expired`: older than the history; `invalid`: not an id this server gave out.'
          }
        }
      })
    }
  }
}

export const gapEvent = {
  title: 'gap',
  description: 'This reader fell behind and `count` messages were dropped for it; what follows is live again.',
  type: 'object',
  required: ['event', 'data'],
  properties: {
    event: { const: 'gap' },
    data: jsonData({ type: 'object', required: ['count'], properties: { count: { type: 'integer', minimum: 1 } } })
  }
}
