// JSON schemas of /ticker (routes/ticker/index.ts): the query, and one OpenAPI `itemSchema` branch per
// event type.
import { hubEventId, jsonData, jsonError, lastEventIdQuery, resetEvent } from '../../lib/hub/schema.js'

/** The longest symbol list a request may ask for. */
export const MAX_SYMBOLS = 20
const SYMBOL = '[A-Za-z][A-Za-z0-9.]{0,9}'

export const tickerQuery = {
  type: 'object',
  properties: {
    symbols: {
      type: 'string',
      // The count limit lives in the pattern, so an oversized list is an ordinary validation error.
      pattern: `^${SYMBOL}(,${SYMBOL}){0,${MAX_SYMBOLS - 1}}$`,
      maxLength: MAX_SYMBOLS * 11,
      description: `Comma-separated symbols, case-insensitive, at most ${MAX_SYMBOLS}. Omitted: every symbol the feed serves.`
    },
    lastEventId: lastEventIdQuery
  }
}

const quote = {
  type: 'object',
  required: ['symbol', 'price', 'change', 'ts'],
  properties: {
    symbol: { type: 'string' },
    price: { type: 'number', description: 'Rounded to cents.' },
    change: { type: 'number', description: 'Difference from the opening price of the feed.' },
    ts: { type: 'integer', description: 'Milliseconds since the Unix epoch.' },
    simulated: { type: 'boolean', description: 'True for the built-in random walk: these are not market prices.' }
  }
}

const snapshotEvent = {
  title: 'snapshot',
  description: 'Always first, without id: the latest quote of every requested symbol.',
  type: 'object',
  required: ['event', 'data'],
  properties: {
    event: { const: 'snapshot' },
    data: jsonData({
      type: 'object',
      required: ['quotes'],
      properties: { quotes: { type: 'array', items: quote }, simulated: { type: 'boolean' } }
    })
  }
}

const quoteEvent = {
  title: 'quote',
  description: 'One price change. Replayed after `Last-Event-ID` when the connection dropped; conflated for a slow reader (the newest per symbol).',
  type: 'object',
  required: ['event', 'data', 'id'],
  properties: { event: { const: 'quote' }, id: hubEventId, data: jsonData(quote) }
}

export const tickerResponses = {
  200: {
    description: 'A `text/event-stream`: `snapshot`, then `quote` events (after a `reset` when the `Last-Event-ID` cannot be resumed).',
    content: {
      'text/event-stream': {
        schema: { type: 'string' },
        itemSchema: {
          oneOf: [snapshotEvent, quoteEvent, resetEvent('The `Last-Event-ID` cannot be resumed; the snapshot is the state, live quotes follow. Its id is the current position.')]
        }
      }
    }
  },
  400: jsonError(`An unknown symbol (\`SSE_ERR_UNKNOWN_SYMBOL\`), more than ${MAX_SYMBOLS}, or a malformed list (\`FST_ERR_VALIDATION\`).`)
}
