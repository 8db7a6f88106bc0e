// Every error this project raises, one constructor per code; the constant's name is its code, and
// test/errors.test.ts checks that each one is listed in the README's error table.
import createError from '@fastify/error'

// ── The plugin: programming errors in a route (500) and bad input from the client (4xx) ──

/** `event` or `id` holds a character that would forge another field (WHATWG HTML §9.2.6). */
export const SSE_ERR_INVALID_FIELD = createError<'SSE_ERR_INVALID_FIELD', 500, [string, string]>(
  'SSE_ERR_INVALID_FIELD', 'SSE field "%s" must not contain %s', 500, TypeError)

/** `retry` must be a non-negative integer: the parser ignores anything but ASCII digits. */
export const SSE_ERR_INVALID_RETRY = createError<'SSE_ERR_INVALID_RETRY', 500, [string]>(
  'SSE_ERR_INVALID_RETRY', 'SSE retry must be a non-negative safe integer, got %s', 500, TypeError)

/** `serialize` returned something that is not a string, or the text is not well-formed unicode. */
export const SSE_ERR_INVALID_DATA = createError<'SSE_ERR_INVALID_DATA', 500, [string, { cause: unknown }?]>(
  'SSE_ERR_INVALID_DATA', 'SSE data is invalid: %s', 500, TypeError)

/** A message that is neither a string nor an object. */
export const SSE_ERR_INVALID_MESSAGE = createError<'SSE_ERR_INVALID_MESSAGE', 500, [string]>(
  'SSE_ERR_INVALID_MESSAGE', 'SSE message must be a string or an object, got %s', 500, TypeError)

/** `reply.sse()` was given something that is not an iterable or a function returning one. */
export const SSE_ERR_INVALID_SOURCE = createError<'SSE_ERR_INVALID_SOURCE', 500, [string]>(
  'SSE_ERR_INVALID_SOURCE', 'reply.sse() source must be an (async) iterable or a function returning one, got %s', 500, TypeError)

/** A plugin or per-call option is out of range; registration fails with this. */
export const SSE_ERR_INVALID_OPTION = createError<'SSE_ERR_INVALID_OPTION', 500, [string, string]>(
  'SSE_ERR_INVALID_OPTION', 'Invalid option "%s": %s', 500, TypeError)

/** `reply.sse()` was called after the reply was already sent. */
export const SSE_ERR_REPLY_SENT = createError<'SSE_ERR_REPLY_SENT', 500, []>(
  'SSE_ERR_REPLY_SENT', 'reply.sse() called on a reply that was already sent', 500)

/** The `Last-Event-ID` header or `lastEventId` query parameter is too long or has control characters. */
export const SSE_ERR_INVALID_LAST_EVENT_ID = createError<'SSE_ERR_INVALID_LAST_EVENT_ID', 400, [string]>(
  'SSE_ERR_INVALID_LAST_EVENT_ID', 'Invalid Last-Event-ID: %s', 400)

/** The server is at its cap of open streams; the reply carries `retry-after`. */
export const SSE_ERR_TOO_MANY_STREAMS = createError<'SSE_ERR_TOO_MANY_STREAMS', 503, [number]>(
  'SSE_ERR_TOO_MANY_STREAMS', 'Too many open streams (limit %d); retry later', 503)

// ── Upstream LLM (routes/events.ts, lib/llm.ts) ──

/** The OpenAI-compatible server cannot be reached. */
export const SSE_ERR_UPSTREAM_UNREACHABLE = createError<'SSE_ERR_UPSTREAM_UNREACHABLE', 502, [string]>(
  'SSE_ERR_UPSTREAM_UNREACHABLE', 'The LLM server at %s cannot be reached: check LLM_BASE_URL and that the server is running', 502)

/** The upstream rejected our credentials: the server's configuration, not the caller's fault. */
export const SSE_ERR_UPSTREAM_AUTH = createError<'SSE_ERR_UPSTREAM_AUTH', 502, [string, number]>(
  'SSE_ERR_UPSTREAM_AUTH', 'The LLM server at %s rejected this server\'s credentials (HTTP %d): check LLM_API_KEY', 502)

/** The upstream is rate limiting us; passed on with its `retry-after`. */
export const SSE_ERR_UPSTREAM_RATE_LIMITED = createError<'SSE_ERR_UPSTREAM_RATE_LIMITED', 429, [string]>(
  'SSE_ERR_UPSTREAM_RATE_LIMITED', 'The LLM server at %s is rate limiting requests; retry later', 429)

/** The upstream refused the request itself (unknown model, context too long...). */
export const SSE_ERR_UPSTREAM_REJECTED = createError<'SSE_ERR_UPSTREAM_REJECTED', 502, [string, number, string]>(
  'SSE_ERR_UPSTREAM_REJECTED', 'The LLM server at %s refused the request (HTTP %d): %s', 502)

/** The upstream failed: 5xx, an error object mid-stream, a malformed or dropped stream. */
export const SSE_ERR_UPSTREAM_FAILED = createError<'SSE_ERR_UPSTREAM_FAILED', 502, [string, string]>(
  'SSE_ERR_UPSTREAM_FAILED', 'The LLM server at %s failed: %s', 502)

/** No first token (or no next token) arrived in time. */
export const SSE_ERR_UPSTREAM_TIMEOUT = createError<'SSE_ERR_UPSTREAM_TIMEOUT', 504, [string, number]>(
  'SSE_ERR_UPSTREAM_TIMEOUT', 'The LLM server at %s sent no token within %d ms', 504)

// ── Service (lib/app.ts, lib/server.ts, routes/) ──

/** An environment variable or `buildApp()` option has a bad value; the server does not start. */
export const SSE_ERR_INVALID_CONFIG = createError<'SSE_ERR_INVALID_CONFIG', 500, [string, string]>(
  'SSE_ERR_INVALID_CONFIG', 'Invalid configuration %s: %s', 500)

/** A ticker symbol that the feed does not know. */
export const SSE_ERR_UNKNOWN_SYMBOL = createError<'SSE_ERR_UNKNOWN_SYMBOL', 400, [string]>(
  'SSE_ERR_UNKNOWN_SYMBOL', 'Unknown symbol: %s', 400)

/** A protected route was called without the right bearer token. */
export const SSE_ERR_UNAUTHORIZED = createError<'SSE_ERR_UNAUTHORIZED', 401, [string]>(
  'SSE_ERR_UNAUTHORIZED', 'Unauthorized: %s', 401)

/** A resumable generation that does not exist, has expired, or belongs to another client. */
export const SSE_ERR_GENERATION_NOT_FOUND = createError<'SSE_ERR_GENERATION_NOT_FOUND', 404, []>(
  'SSE_ERR_GENERATION_NOT_FOUND', 'Generation not found or expired', 404)

/** The hub's backing store (Redis) is unavailable; subscribers should reconnect. */
export const SSE_ERR_HUB_UNAVAILABLE = createError<'SSE_ERR_HUB_UNAVAILABLE', 503, [string]>(
  'SSE_ERR_HUB_UNAVAILABLE', 'The event hub is unavailable: %s', 503)

/** A client sent more requests than the route's rate limit allows (`@fastify/rate-limit`); the reply carries `retry-after`. */
export const SSE_ERR_RATE_LIMITED = createError<'SSE_ERR_RATE_LIMITED', 429, [string]>(
  'SSE_ERR_RATE_LIMITED', 'Too many requests from this client; retry in %s', 429)
