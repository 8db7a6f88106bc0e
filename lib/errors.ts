// The library's errors (the plugin, the hub and the Redis backplane), one constructor per code; the
// constant's name is its code, and test/errors.test.ts checks that each one is listed in the README's
// error table. Route plugins and the demo service keep their own codes beside them (routes/*/errors.ts,
// service/errors.ts), so importing the library loads none of theirs.
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

/** `hubRoute()` served a request on an instance where the plugin is not registered. */
export const SSE_ERR_NOT_REGISTERED = createError<'SSE_ERR_NOT_REGISTERED', 500, [string]>(
  'SSE_ERR_NOT_REGISTERED', '%s needs the fastify-sse-stream plugin registered on this instance: app.register(sse)', 500)

/** The `Last-Event-ID` header or `lastEventId` query parameter is too long or has control characters. */
export const SSE_ERR_INVALID_LAST_EVENT_ID = createError<'SSE_ERR_INVALID_LAST_EVENT_ID', 400, [string]>(
  'SSE_ERR_INVALID_LAST_EVENT_ID', 'Invalid Last-Event-ID: %s', 400)

/** The server is at its cap of open streams; the reply carries `retry-after`. */
export const SSE_ERR_TOO_MANY_STREAMS = createError<'SSE_ERR_TOO_MANY_STREAMS', 503, [number]>(
  'SSE_ERR_TOO_MANY_STREAMS', 'Too many open streams (limit %d); retry later', 503)

/**
 * A subpath was imported (or a feature used) whose optional peer dependency is not installed; the
 * message names the package to install.
 */
export const SSE_ERR_MISSING_PEER = createError<'SSE_ERR_MISSING_PEER', 500, [string, string, string]>(
  'SSE_ERR_MISSING_PEER', '%s needs the optional peer dependency %s: npm i %s', 500)

// ── The hub and its Redis backplane ──

/** The hub's backing store (Redis) is unavailable; subscribers should reconnect. */
export const SSE_ERR_HUB_UNAVAILABLE = createError<'SSE_ERR_HUB_UNAVAILABLE', 503, [string]>(
  'SSE_ERR_HUB_UNAVAILABLE', 'The event hub is unavailable: %s', 503)

/**
 * A resumable generation ended before its answer was complete, and will not go on: the instance
 * running it shut down or died. A reconnect gets this as an `error` event, not a silent end.
 */
export const SSE_ERR_GENERATION_INTERRUPTED = createError<'SSE_ERR_GENERATION_INTERRUPTED', 503, [string]>(
  'SSE_ERR_GENERATION_INTERRUPTED', 'The generation was interrupted: %s; ask again', 503)
