// Errors of the demo service's /ticker route.
import createError from '@fastify/error'

/** A ticker symbol that the feed does not know. */
export const SSE_ERR_UNKNOWN_SYMBOL = createError<'SSE_ERR_UNKNOWN_SYMBOL', 400, [string]>(
  'SSE_ERR_UNKNOWN_SYMBOL', 'Unknown symbol: %s', 400)
