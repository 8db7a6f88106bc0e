// Upstream failures -> our coded errors. The status tells the caller whose fault it is: 502 for the
// upstream or our configuration of it (a caller cannot fix a bad LLM_API_KEY), 429 passed on with
// the upstream's `retry-after`, 504 for silence. Messages say what went wrong and the fix; the
// upstream's URL and the SDK's error go to the server's log only (`upstream`, `cause`), and none of
// them carries the API key, even when the upstream echoes it back.
import type OpenAI from 'openai'
import {
  SSE_ERR_UPSTREAM_AUTH,
  SSE_ERR_UPSTREAM_FAILED,
  SSE_ERR_UPSTREAM_RATE_LIMITED,
  SSE_ERR_UPSTREAM_REJECTED,
  SSE_ERR_UPSTREAM_TIMEOUT,
  SSE_ERR_UPSTREAM_UNREACHABLE
} from './errors.js'
import { redactSecrets } from '../logs/redact.js'

/** A coded upstream error; `retryAfter` is set for SSE_ERR_UPSTREAM_RATE_LIMITED when the upstream said. */
export interface UpstreamError extends Error {
  code: string
  statusCode: number
  retryAfter?: string
  /** The upstream's base URL: for the server's log, never sent to a client. */
  upstream?: string
}

/** The SDK's error classes, taken from the client in use (the user's copy of `openai`, whichever it is). */
export type SdkErrors = Pick<typeof OpenAI, 'APIError' | 'APIConnectionError'>

const MAX_UPSTREAM_MESSAGE = 300
// Network codes that mean nothing answers at that address (as opposed to a peer that hung up).
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'])
const RESET = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED'])

/** The upstream's own words, bounded, on one line, with anything key-shaped masked. */
export function upstreamMessage (raw: unknown, apiKey: string | undefined): string {
  let text = typeof raw === 'string' ? raw : ''
  text = redactSecrets(text, apiKey === undefined ? [] : [apiKey])
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

/** A copy of an error chain fit for a log line: names, codes and messages, secrets masked. */
function logSafe (err: unknown, apiKey: string | undefined, depth = 0): Error | undefined {
  if (!(err instanceof Error) || depth > 3) return undefined
  const copy = new Error(redactSecrets(err.message, apiKey === undefined ? [] : [apiKey]))
  copy.name = err.name
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' || typeof code === 'number') Object.assign(copy, { code })
  const cause = logSafe(err.cause, apiKey, depth + 1)
  if (cause !== undefined) Object.defineProperty(copy, 'cause', { value: cause, enumerable: false, configurable: true })
  copy.stack = undefined
  return copy
}

function annotate<E extends Error> (err: E, where: string, cause: unknown, apiKey: string | undefined): E & UpstreamError {
  const out = err as E & UpstreamError
  // For the server's log only: error handlers and `error` frames send code and message.
  out.upstream = where
  const safe = logSafe(cause, apiKey)
  if (safe !== undefined) Object.defineProperty(out, 'cause', { value: safe, enumerable: false, configurable: true })
  return out
}

/** The first `code` along an error's cause chain (undici hides the socket's under `cause.cause`). */
function networkCode (err: unknown): string | undefined {
  for (let e = err, i = 0; e instanceof Error && i < 5; e = e.cause, i++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
  }
  return undefined
}

/** The timeout error: `ms` is the limit that expired. */
export function timeoutError (where: string, ms: number): UpstreamError {
  return annotate(new SSE_ERR_UPSTREAM_TIMEOUT(ms), where, undefined, undefined)
}

/** An upstream failure we detected ourselves (not thrown by the SDK). */
export function failedError (where: string, detail: string): UpstreamError {
  return annotate(new SSE_ERR_UPSTREAM_FAILED(detail), where, undefined, undefined)
}

/** fetch with `redirect: 'error'` (llm.ts) met a redirect: `TypeError('fetch failed')` caused by it. */
function redirected (err: unknown): boolean {
  for (let e = err as { message?: unknown, cause?: unknown } | undefined, depth = 0; e != null && depth < 3; e = e.cause as typeof e, depth++) {
    if (e.message === 'unexpected redirect') return true
  }
  return false
}

/** Drops the trailing full stop of a quoted message, so our own punctuation can follow it. */
const clause = (text: string): string => text.replace(/[.!;:,\s]+$/, '')

/**
 * Maps anything the SDK (or the body under it) throws to a coded error. `midStream` says whether
 * the response had already started, which turns a bare network error into "dropped".
 */
export function mapUpstreamError (err: unknown, sdk: SdkErrors, where: string, apiKey: string | undefined, midStream: boolean): UpstreamError {
  if ((err as any)?.code?.startsWith?.('SSE_ERR_') === true) return err as UpstreamError
  const wrap = <E extends Error>(coded: E): E & UpstreamError => annotate(coded, where, err, apiKey)
  if (err instanceof sdk.APIConnectionError) {
    if (redirected(err.cause)) {
      return wrap(new SSE_ERR_UPSTREAM_FAILED('it answered with a redirect, which is not followed; set LLM_BASE_URL to the URL it redirects to'))
    }
    const code = networkCode(err.cause)
    if (code !== undefined && RESET.has(code)) {
      return wrap(new SSE_ERR_UPSTREAM_FAILED('it closed the connection before answering (connection reset); see the LLM server\'s logs'))
    }
    if (code === undefined || UNREACHABLE.has(code) || code.startsWith('ERR_TLS') || code.includes('CERT')) {
      return wrap(new SSE_ERR_UPSTREAM_UNREACHABLE())
    }
    return wrap(new SSE_ERR_UPSTREAM_FAILED(`the request failed before a response arrived (${code})`))
  }
  if (err instanceof sdk.APIError) {
    const status = err.status
    const said = upstreamMessage((err.error as any)?.message ?? err.message, apiKey)
    if (status === undefined) {
      // An `{"error": ...}` object inside a 200 stream: the model failed while generating.
      return wrap(new SSE_ERR_UPSTREAM_FAILED(`it reported an error mid-stream (${said})`))
    }
    if (status === 401 || status === 403) return wrap(new SSE_ERR_UPSTREAM_AUTH(status))
    if (status === 429) {
      const limited = wrap(new SSE_ERR_UPSTREAM_RATE_LIMITED())
      const retryAfter = retryAfterOf(err.headers)
      if (retryAfter !== undefined) limited.retryAfter = retryAfter
      return limited
    }
    if (status >= 400 && status < 500) {
      return wrap(new SSE_ERR_UPSTREAM_REJECTED(status, `${clause(said)}; check LLM_MODEL and the request`))
    }
    return wrap(new SSE_ERR_UPSTREAM_FAILED(`HTTP ${status} (${clause(said)}); see the LLM server's logs`))
  }
  if (err instanceof SyntaxError) {
    return wrap(new SSE_ERR_UPSTREAM_FAILED(NOT_OPENAI('a chunk that is not JSON')))
  }
  const code = networkCode(err)
  const detail = midStream
    ? 'the connection dropped mid-stream'
    : code !== undefined && RESET.has(code)
      ? 'it closed the connection before answering (connection reset)'
      : 'the request failed before a response arrived'
  return wrap(new SSE_ERR_UPSTREAM_FAILED(detail))
}

/** The hint for a reply in a format we cannot read. */
export const NOT_OPENAI = (what: string): string => `it sent ${what}; is LLM_BASE_URL an OpenAI-compatible API?`
