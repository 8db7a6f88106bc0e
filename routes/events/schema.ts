// JSON schemas of /events (routes/events/index.ts): input validation, and the OpenAPI 3.2 description of
// the stream, one `itemSchema` branch per event type (OpenAPI 3.2.0 §4.14 "Special Considerations
// for Server-Sent Events": each item is an event after parsing, `data` a string, JSON described by
// `contentMediaType` + `contentSchema`).
import { jsonData, jsonError } from '../../lib/sse/openapi-parts.js'

const ROLES = ['system', 'developer', 'user', 'assistant']
const MAX_MESSAGES = 100

const model = { type: 'string', minLength: 1, maxLength: 200, description: 'Model name; default `LLM_MODEL`, else the first the server lists, else `demo-markov`.' }
const temperature = { type: 'number', minimum: 0, maximum: 2 }
const maxTokens = { type: 'integer', minimum: 1, maximum: 131072, description: 'Upper bound on generated tokens (the upstream\'s own limit may be lower).' }
const format = {
  type: 'string',
  enum: ['text', 'json'],
  default: 'text',
  description: '`text`: token events carry the raw token (CR and CRLF arrive as LF, as every SSE parser normalises them). ' +
    '`json`: each token as a JSON string, exact to the byte.'
}

export function querystring (maxChars: number): object {
  return {
    type: 'object',
    required: ['prompt'],
    properties: {
      prompt: { type: 'string', minLength: 1, maxLength: maxChars, description: 'The user\'s message.', examples: ['Explain server-sent events in a few sentences.'] },
      system: { type: 'string', maxLength: maxChars, description: 'An optional system prompt.' },
      model,
      temperature,
      max_tokens: maxTokens,
      format,
      lastEventId: { type: 'string', maxLength: 256, description: 'For clients that cannot send `Last-Event-ID`.' }
    }
  }
}

export function postBody (maxChars: number): object {
  return {
    type: 'object',
    required: ['messages'],
    additionalProperties: false,
    // What Swagger UI's "Try it out" starts from: a user message, the server's model, its limits.
    examples: [{ messages: [{ role: 'user', content: 'Explain server-sent events in a few sentences.' }] }],
    properties: {
      messages: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_MESSAGES,
        items: {
          type: 'object',
          required: ['role', 'content'],
          additionalProperties: false,
          properties: {
            role: { type: 'string', enum: ROLES },
            content: { type: 'string', maxLength: maxChars }
          }
        }
      },
      model,
      temperature,
      max_tokens: maxTokens,
      format
    }
  }
}

const usage = {
  type: ['object', 'null'],
  description: 'As the upstream reported it (`stream_options.include_usage`); `null` when it did not.',
  properties: {
    prompt_tokens: { type: 'integer' },
    completion_tokens: { type: 'integer' },
    total_tokens: { type: 'integer' }
  }
}

const eventId = { type: 'string', pattern: '^[A-Za-z0-9_-]{22}:[0-9]+$', description: '`<generation>:<seq>`, seq counting from 1.' }

export const tokenEvent = {
  title: 'token',
  description: 'A default `message` event: one token of the answer.',
  type: 'object',
  required: ['data', 'id'],
  not: { required: ['event'] },
  properties: {
    data: { type: 'string', description: 'The token text as is (`format=json`: a JSON string).' },
    id: eventId
  }
}

export const doneEvent = {
  title: 'done',
  description: 'The answer is complete; the stream ends after it.',
  type: 'object',
  required: ['event', 'data', 'id'],
  properties: {
    event: { const: 'done' },
    id: eventId,
    data: jsonData({
      type: 'object',
      required: ['finish_reason', 'usage', 'model', 'demo'],
      properties: {
        finish_reason: { type: 'string', description: '`stop`, `length`, `content_filter`, `stopped` (by the stop endpoint), …' },
        usage,
        model: { type: 'string', description: 'The model that answered, as the upstream named it.' },
        demo: { type: 'boolean', description: 'True when the built-in demo model answered.' }
      }
    })
  }
}

export const errorEvent = {
  title: 'error',
  description: 'The upstream failed after the stream started; the stream ends after it.',
  type: 'object',
  required: ['event', 'data'],
  properties: {
    event: { const: 'error' },
    data: jsonData({
      type: 'object',
      required: ['code', 'message', 'statusCode'],
      properties: {
        code: { type: 'string', description: 'An `SSE_ERR_*` code, e.g. `SSE_ERR_UPSTREAM_FAILED` or `SSE_ERR_UPSTREAM_TIMEOUT`.' },
        message: { type: 'string' },
        statusCode: { type: 'integer', description: 'The HTTP status this would have been before the stream started.' }
      }
    })
  }
}

export const eventsResponses = {
  200: {
    description: 'The answer as a `text/event-stream`: token events, then `done` (or `error`).',
    content: {
      'text/event-stream': {
        schema: { type: 'string' },
        itemSchema: { oneOf: [tokenEvent, doneEvent, errorEvent] }
      }
    }
  },
  204: { description: 'A reconnect with one of our event ids to a generation that is finished, unknown or expired: do not reconnect.', type: 'null' },
  404: jsonError('A POST asking to resume a generation that is unknown, expired or another client\'s (`SSE_ERR_GENERATION_NOT_FOUND`).'),
  400: jsonError('A missing or oversized prompt, a bad number, an unknown role: the message names the field.'),
  429: jsonError('Rate limited, by this server (`SSE_ERR_RATE_LIMITED`) or by the upstream (`SSE_ERR_UPSTREAM_RATE_LIMITED`); see `retry-after`.'),
  502: jsonError('The upstream is unreachable, rejected our credentials or the request, or failed (`SSE_ERR_UPSTREAM_*`).'),
  504: jsonError('No first token within `LLM_FIRST_TOKEN_TIMEOUT_MS` (`SSE_ERR_UPSTREAM_TIMEOUT`).')
}

/** The stop endpoints' responses. */
export const stopResponses = {
  204: { description: 'Stopped.', type: 'null' },
  400: jsonError('Not a generation id.'),
  404: jsonError('No such generation for this client (`SSE_ERR_GENERATION_NOT_FOUND`).')
}
