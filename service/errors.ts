// Errors of the demo service itself.
import createError from '@fastify/error'

/** An environment variable or `buildApp()` option has a bad value; the server does not start. */
export const SSE_ERR_INVALID_CONFIG = createError<'SSE_ERR_INVALID_CONFIG', 500, [string, string]>(
  'SSE_ERR_INVALID_CONFIG', 'Invalid configuration %s: %s', 500)
