// Errors of the /events route plugin: the upstream LLM failing in each way a client should be
// able to tell apart, resumable generations, and the route's rate limit.
import createError from '@fastify/error'

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

/** A resumable generation that does not exist, has expired, or belongs to another client. */
export const SSE_ERR_GENERATION_NOT_FOUND = createError<'SSE_ERR_GENERATION_NOT_FOUND', 404, []>(
  'SSE_ERR_GENERATION_NOT_FOUND', 'Generation not found or expired', 404)

/** A client sent more requests than the route's rate limit allows (`@fastify/rate-limit`); the reply carries `retry-after`. */
export const SSE_ERR_RATE_LIMITED = createError<'SSE_ERR_RATE_LIMITED', 429, [string]>(
  'SSE_ERR_RATE_LIMITED', 'Too many requests from this client; retry in %s', 429)
