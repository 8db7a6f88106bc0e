// Errors of the /events route plugin: the upstream LLM failing in each way a client should be
// able to tell apart, resumable generations, the route's budgets, and its configuration.
// Messages reach clients, so they never name the upstream's URL (an internal address): the coded
// error carries it as `upstream` for the server's log instead (routes/events/llm-errors.ts).
import createError from '@fastify/error'

/** Nothing answers at the upstream's address (refused, DNS, TLS). */
export const SSE_ERR_UPSTREAM_UNREACHABLE = createError<'SSE_ERR_UPSTREAM_UNREACHABLE', 502, []>(
  'SSE_ERR_UPSTREAM_UNREACHABLE', 'The LLM server cannot be reached: check LLM_BASE_URL and that the server is running', 502)

/** The upstream rejected our credentials: the server's configuration, not the caller's fault. */
export const SSE_ERR_UPSTREAM_AUTH = createError<'SSE_ERR_UPSTREAM_AUTH', 502, [number]>(
  'SSE_ERR_UPSTREAM_AUTH', 'The LLM server rejected this server\'s credentials (HTTP %d): check LLM_API_KEY', 502)

/** The upstream is rate limiting us; passed on with its `retry-after`. */
export const SSE_ERR_UPSTREAM_RATE_LIMITED = createError<'SSE_ERR_UPSTREAM_RATE_LIMITED', 429, []>(
  'SSE_ERR_UPSTREAM_RATE_LIMITED', 'The LLM server is rate limiting requests; retry later', 429)

/** The upstream refused the request itself (unknown model, context too long...). */
export const SSE_ERR_UPSTREAM_REJECTED = createError<'SSE_ERR_UPSTREAM_REJECTED', 502, [number, string]>(
  'SSE_ERR_UPSTREAM_REJECTED', 'The LLM server refused the request (HTTP %d): %s', 502)

/** The upstream failed: 5xx, an error object mid-stream, a reset, a malformed or dropped stream. */
export const SSE_ERR_UPSTREAM_FAILED = createError<'SSE_ERR_UPSTREAM_FAILED', 502, [string]>(
  'SSE_ERR_UPSTREAM_FAILED', 'The LLM server failed: %s', 502)

/** No first token (or no next token) arrived in time. */
export const SSE_ERR_UPSTREAM_TIMEOUT = createError<'SSE_ERR_UPSTREAM_TIMEOUT', 504, [number]>(
  'SSE_ERR_UPSTREAM_TIMEOUT', 'The LLM server sent no token within %d ms', 504)

/** A resumable generation that does not exist, has expired, or belongs to another client. */
export const SSE_ERR_GENERATION_NOT_FOUND = createError<'SSE_ERR_GENERATION_NOT_FOUND', 404, []>(
  'SSE_ERR_GENERATION_NOT_FOUND', 'Generation not found or expired', 404)

/** A client sent more requests than the route's rate limit allows (`@fastify/rate-limit`); the reply carries `retry-after`. */
export const SSE_ERR_RATE_LIMITED = createError<'SSE_ERR_RATE_LIMITED', 429, [string]>(
  'SSE_ERR_RATE_LIMITED', 'Too many requests from this client; retry in %s', 429)

/** Too many generations running at once, for this client or this instance; the reply carries `retry-after`. */
export const SSE_ERR_TOO_MANY_GENERATIONS = createError<'SSE_ERR_TOO_MANY_GENERATIONS', 429, [string]>(
  'SSE_ERR_TOO_MANY_GENERATIONS', 'Too many answers are being generated %s; retry when one has finished', 429)

/** The request asked for a model this server does not offer. */
export const SSE_ERR_MODEL_NOT_ALLOWED = createError<'SSE_ERR_MODEL_NOT_ALLOWED', 400, [string]>(
  'SSE_ERR_MODEL_NOT_ALLOWED', 'The model "%s" is not offered here; leave `model` out to use the default', 400)

/** Text that is not well-formed Unicode (a lone surrogate) cannot be sent upstream as JSON. */
export const SSE_ERR_INVALID_TEXT = createError<'SSE_ERR_INVALID_TEXT', 400, [string]>(
  'SSE_ERR_INVALID_TEXT', '%s is not well-formed Unicode (it contains a lone surrogate)', 400)
