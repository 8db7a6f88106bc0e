// Errors of the /logs route plugin.
import createError from '@fastify/error'

/** A protected route was called without the right bearer token. */
export const SSE_ERR_UNAUTHORIZED = createError<'SSE_ERR_UNAUTHORIZED', 401, [string]>(
  'SSE_ERR_UNAUTHORIZED', 'Unauthorized: %s', 401)

/** Too many wrong tokens from one client: guessing is slowed down; the reply carries `retry-after`. */
export const SSE_ERR_TOO_MANY_ATTEMPTS = createError<'SSE_ERR_TOO_MANY_ATTEMPTS', 429, [number]>(
  'SSE_ERR_TOO_MANY_ATTEMPTS', 'Too many wrong tokens from this client; retry in %d seconds', 429)

/** The token was given more than once, or not as text. */
export const SSE_ERR_INVALID_TOKEN = createError<'SSE_ERR_INVALID_TOKEN', 400, [string]>(
  'SSE_ERR_INVALID_TOKEN', 'Invalid token: %s', 400)
