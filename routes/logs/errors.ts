// Errors of the /logs route plugin.
import createError from '@fastify/error'

/** A protected route was called without the right bearer token. */
export const SSE_ERR_UNAUTHORIZED = createError<'SSE_ERR_UNAUTHORIZED', 401, [string]>(
  'SSE_ERR_UNAUTHORIZED', 'Unauthorized: %s', 401)
