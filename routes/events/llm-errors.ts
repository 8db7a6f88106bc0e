// Upstream failures -> our coded errors. The status tells the caller whose fault it is: 502 for the
// upstream or our configuration of it (a caller cannot fix a bad LLM_API_KEY), 429 passed on with
// the upstream's `retry-after`, 504 for silence. Messages name the upstream URL and the fix, and
// never carry the API key, even when the upstream echoes it back.
import OpenAI from 'openai'
import {
  SSE_ERR_UPSTREAM_AUTH,
  SSE_ERR_UPSTREAM_FAILED,
  SSE_ERR_UPSTREAM_RATE_LIMITED,
  SSE_ERR_UPSTREAM_REJECTED,
  SSE_ERR_UPSTREAM_TIMEOUT,
  SSE_ERR_UPSTREAM_UNREACHABLE
} from './errors.js'

/** A coded upstream error; `retryAfter` is set for SSE_ERR_UPSTREAM_RATE_LIMITED when the upstream said. */
export interface UpstreamError extends Error {
  code: string
  statusCode: number
  retryAfter?: string
}

const MAX_UPSTREAM_MESSAGE = 300

/** The upstream's own words, bounded, on one line, with the key masked should it appear. */
export function upstreamMessage (raw: unknown, apiKey: string | undefined): string {
  let text = typeof raw === 'string' ? raw : ''
  if (apiKey !== undefined && apiKey.length >= 4) text = text.split(apiKey).join('[redacted]')
  text = text.replace(/\s+/g, ' ').trim()
  if (text.length > MAX_UPSTREAM_MESSAGE) text = text.slice(0, MAX_UPSTREAM_MESSAGE) + '…'
  return text === '' ? 'no details given' : text
}

/**
 * `retry-after` as the upstream sent it (seconds or an HTTP date), else OpenAI's `retry-after-ms`
 * rounded up to seconds; `undefined` when neither is usable.
 */
export function retryAfterOf (headers: Headers | undefined): string | undefined {
  const seconds = headers?.get('retry-after')?.trim()
  if (seconds !== undefined && seconds !== '' && (/^\d+$/.test(seconds) || !Number.isNaN(Date.parse(seconds)))) return seconds
  const ms = Number(headers?.get('retry-after-ms'))
  if (Number.isFinite(ms) && ms >= 0) return String(Math.ceil(ms / 1000))
  return undefined
}

function withCause<E extends Error> (err: E, cause: unknown): E {
  // Kept for the server log only: the error handler and the `error` frame send code and message.
  Object.defineProperty(err, 'cause', { value: cause, enumerable: false, configurable: true })
  return err
}

/** The timeout error: `ms` is the limit that expired. */
export function timeoutError (where: string, ms: number): UpstreamError {
  return new SSE_ERR_UPSTREAM_TIMEOUT(where, ms) as UpstreamError
}

/**
 * Maps anything the SDK (or the body under it) throws to a coded error. `midStream` says whether
 * the response had already started, which turns a bare network error into "dropped".
 */
export function mapUpstreamError (err: unknown, where: string, apiKey: string | undefined, midStream: boolean): UpstreamError {
  if ((err as any)?.code?.startsWith?.('SSE_ERR_') === true) return err as UpstreamError
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return withCause(new SSE_ERR_UPSTREAM_UNREACHABLE(where) as UpstreamError, err)
  }
  if (err instanceof OpenAI.APIConnectionError) {
    return withCause(new SSE_ERR_UPSTREAM_UNREACHABLE(where) as UpstreamError, err)
  }
  if (err instanceof OpenAI.APIError) {
    const status = err.status
    const said = upstreamMessage((err.error as any)?.message ?? err.message, apiKey)
    if (status === undefined) {
      // An `{"error": ...}` object inside a 200 stream: the model failed while generating.
      return withCause(new SSE_ERR_UPSTREAM_FAILED(where, `it reported an error mid-stream (${said})`) as UpstreamError, err)
    }
    if (status === 401 || status === 403) return withCause(new SSE_ERR_UPSTREAM_AUTH(where, status) as UpstreamError, err)
    if (status === 429) {
      const limited = withCause(new SSE_ERR_UPSTREAM_RATE_LIMITED(where) as UpstreamError, err)
      const retryAfter = retryAfterOf(err.headers)
      if (retryAfter !== undefined) limited.retryAfter = retryAfter
      return limited
    }
    if (status >= 400 && status < 500) {
      return withCause(new SSE_ERR_UPSTREAM_REJECTED(where, status, `${said}; check LLM_MODEL and the request`) as UpstreamError, err)
    }
    return withCause(new SSE_ERR_UPSTREAM_FAILED(where, `HTTP ${status} (${said}); see the LLM server's logs`) as UpstreamError, err)
  }
  if (err instanceof SyntaxError) {
    return withCause(new SSE_ERR_UPSTREAM_FAILED(where, 'it sent a malformed stream (a chunk that is not JSON); is LLM_BASE_URL an OpenAI-compatible API?') as UpstreamError, err)
  }
  const detail = midStream
    ? 'the connection dropped mid-stream'
    : 'the request failed before a response arrived'
  return withCause(new SSE_ERR_UPSTREAM_FAILED(where, detail) as UpstreamError, err)
}
