// `fastify-sse-stream/client`: what `EventSource` is to a browser, for scripts. Any method, body
// and headers over plain `fetch`; events parsed by eventsource-parser; reconnection with
// `Last-Event-ID` and the server's `retry:` (WHATWG HTML §9.2.3); 204 stops it; breaking out of
// the loop or aborting the signal closes the socket at once. Nothing here may import Fastify or a
// `node:` module: the same file runs in Node 20+, browsers, Deno and Bun (test/e2e proves it).
import { createParser } from 'eventsource-parser'
import { splitEventId } from '../internal/event-id.js'
import { sleep } from '../internal/sleep.js'

/** One parsed event. `data` is a string unless the `json` option decodes it. */
export interface SseEvent<E extends string = string, D = string> {
  /** The event type; `message` when the server sent none (as in browsers). */
  event: E
  data: D
  /**
   * This event's own `id:` field (`''` for an empty one, which resets the cursor); `undefined` when
   * it has none. The client remembers the latest one and sends it as `Last-Event-ID`.
   */
  id: string | undefined
  /** The `retry:` value (ms) received with, or just before, this event. */
  retry: number | undefined
}

/**
 * The union of typed events of an event map (event name → type of its `data`, e.g.
 * `{ message: string, done: Done }`), so `if (ev.event === 'done')` narrows `ev.data`.
 * List every event the stream sends: a name missing from the map is not typed.
 */
export type EventOf<M extends object> = { [K in keyof M & string]: SseEvent<K, M[K]> }[keyof M & string]

export interface StreamEventsOptions {
  /** @default 'POST' when there is a body, else 'GET' */
  method?: string
  /** Sent on every request, reconnections included. */
  headers?: RequestInit['headers']
  /**
   * The request body, sent again on every reconnection. A plain object or array is sent as JSON
   * (with `content-type: application/json` unless given); a string, `Blob`, `FormData`,
   * `URLSearchParams` or buffer as is. A one-shot `ReadableStream` cannot be sent twice: avoid it.
   * @default undefined
   */
  body?: RequestInit['body'] | Record<string, unknown> | unknown[]
  /**
   * Sent as `Last-Event-ID` on the first request, to resume where an earlier stream stopped.
   * @default undefined
   */
  lastEventId?: string
  /** Aborting it closes the connection at once; the loop then throws `signal.reason`. */
  signal?: AbortSignal
  /**
   * Reconnect after a network error or when the server ends the stream, as `EventSource` does.
   * @default true
   */
  reconnect?: boolean
  /**
   * Give up (throwing `SseConnectionError`) after this many reconnections in a row that brought
   * no event. Any event resets the count. The first connection is never retried.
   * @default 10
   */
  maxRetries?: number
  /**
   * First reconnection delay (ms) when the server sent no `retry:`; it doubles on each failed
   * attempt up to `maxRetryMs`, with jitter (a random 50–100 % of it).
   * @default 1000
   */
  retryMs?: number
  /** @default 30000 */
  maxRetryMs?: number
  /**
   * Decode `data` as JSON: `true` for every event, or a list of event names. Invalid JSON throws
   * `SseProtocolError`.
   * @default false
   */
  json?: boolean | readonly string[]
  /**
   * The longest event (in characters) the client buffers; a longer one throws `SseProtocolError`,
   * so a broken server cannot exhaust memory.
   * @default 16 MiB
   */
  maxEventSize?: number
  /** Called before each reconnection wait, e.g. to log it. */
  onReconnect?: (info: ReconnectInfo) => void
  /** The `fetch` to use (a mock, or one with a custom dispatcher). @default globalThis.fetch */
  fetch?: typeof fetch
}

export interface ReconnectInfo {
  /** 1 for the first reconnection since the last event, then 2, 3... */
  attempt: number
  delayMs: number
  /** What will be sent as `Last-Event-ID`. */
  lastEventId: string | undefined
  /** The network error that ended the stream; `undefined` when the server ended it. */
  error: unknown
}

/** Base class of every error the client throws, for one `instanceof` check. */
export class SseClientError extends Error {
  constructor (message: string, readonly url: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

/** The server answered with an HTTP error status before the stream started. */
export class SseHttpError extends SseClientError {
  constructor (url: string, readonly status: number, readonly statusText: string,
    /** The response body: parsed JSON when it is JSON, else its text (`undefined` when empty). */
    readonly body: unknown, readonly headers: Headers) {
    const detail = typeof (body as any)?.message === 'string' ? `: ${String((body as any).message)}` : ''
    super(`HTTP ${status}${statusText === '' ? '' : ' ' + statusText} from ${url}${detail}`, url)
  }
}

/** The server could not be reached, or the connection kept failing until `maxRetries`. */
export class SseConnectionError extends SseClientError {
  /** `attempts`: the reconnections that failed in a row before giving up (0: the first connection). */
  constructor (url: string, readonly attempts: number, cause: unknown, what = 'Lost the connection to') {
    const tries = attempts === 0 ? '' : ` after ${attempts} reconnection attempt${attempts === 1 ? '' : 's'}`
    super(`${what} ${url}${tries}: ${describeError(cause)}`, url, { cause })
  }
}

/** The response is not an event stream, or an event broke a promise (bad JSON, too large). */
export class SseProtocolError extends SseClientError {}

/** The server sent `event: error` (`generate()` throws it); carries the server's code. */
export class SseEventError extends SseClientError {
  readonly code: string
  readonly statusCode: number | undefined
  constructor (url: string, readonly data: unknown) {
    const d = (typeof data === 'object' && data !== null ? data : { message: String(data) }) as Record<string, unknown>
    super(typeof d.message === 'string' ? d.message : 'The stream reported an error', url)
    this.code = typeof d.code === 'string' ? d.code : 'SSE_ERR_UNKNOWN'
    this.statusCode = typeof d.statusCode === 'number' ? d.statusCode : undefined
  }
}

function describeError (err: any): string {
  const cause = err?.cause
  const code = typeof cause?.code === 'string' ? cause.code : typeof err?.code === 'string' ? err.code : undefined
  const message = typeof cause?.message === 'string' && cause.message !== '' ? cause.message : String(err?.message ?? err)
  return code !== undefined && !message.includes(code) ? `${code} ${message}` : message
}

const MAX_ERROR_BODY = 64 * 1024

/** An error response's body, bounded, as JSON when it parses. */
async function readErrorBody (res: Response): Promise<unknown> {
  if (res.body === null) return undefined
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
      if (text.length > MAX_ERROR_BODY) { text = text.slice(0, MAX_ERROR_BODY); break }
    }
  } catch {
    // A body cut short still says something; keep what arrived.
  } finally {
    reader.cancel().catch(() => {})
  }
  if (text === '') return undefined
  try { return JSON.parse(text) } catch { return text }
}

function isPlainJson (body: unknown): body is Record<string, unknown> | unknown[] {
  if (Array.isArray(body)) return true
  if (body === null || typeof body !== 'object') return false
  const proto = Object.getPrototypeOf(body)
  return proto === Object.prototype || proto === null
}

/**
 * Opens an event stream and yields its events as they arrive, reconnecting as `EventSource` does.
 * Ends when the server answers 204, or when the stream ends and `reconnect` is false.
 *
 *   for await (const ev of streamEvents<{ tick: Tick }>(url, { json: true })) ev.data.price
 */
export async function * streamEvents<M extends object = Record<string, string>> (
  url: string | URL, options: StreamEventsOptions = {}
): AsyncGenerator<EventOf<M>, void, undefined> {
  const href = String(url)
  const doFetch = options.fetch ?? globalThis.fetch
  const reconnect = options.reconnect ?? true
  const maxRetries = options.maxRetries ?? 10
  const retryMs = options.retryMs ?? 1000
  const maxRetryMs = options.maxRetryMs ?? 30_000
  const maxEventSize = options.maxEventSize ?? 16 * 1024 * 1024
  const json = options.json ?? false
  const decodes = (name: string): boolean => json === true || (Array.isArray(json) && json.includes(name))
  const userSignal = options.signal

  let body = options.body as RequestInit['body']
  const baseHeaders = new Headers(options.headers)
  if (isPlainJson(options.body)) {
    body = JSON.stringify(options.body)
    if (!baseHeaders.has('content-type')) baseHeaders.set('content-type', 'application/json')
  }
  if (!baseHeaders.has('accept')) baseHeaders.set('accept', 'text/event-stream')
  const method = options.method ?? (body === undefined || body === null ? 'GET' : 'POST')

  let lastEventId = options.lastEventId === '' ? undefined : options.lastEventId
  let serverRetry: number | undefined
  // Reconnections made since the last event arrived; `maxRetries` bounds it.
  let sinceEvent = 0
  let connected = false

  for (;;) {
    userSignal?.throwIfAborted()
    // One controller per connection: aborting it is how a `break` closes the socket at once.
    const controller = new AbortController()
    const onAbort = (): void => controller.abort(userSignal?.reason)
    userSignal?.addEventListener('abort', onAbort, { once: true })
    let networkError: unknown
    let gotEvent = false
    try {
      const headers = new Headers(baseHeaders)
      if (lastEventId !== undefined) headers.set('last-event-id', lastEventId)
      let res: Response | undefined
      try {
        res = await doFetch(href, { method, headers, body, signal: controller.signal })
      } catch (err) {
        if (userSignal?.aborted === true) throw userSignal.reason
        if (!connected) throw new SseConnectionError(href, 0, err, 'Cannot reach')
        networkError = err
      }
      if (res !== undefined) {
        connected = true
        // §9.2.3: 204 means "stop reconnecting".
        if (res.status === 204) { res.body?.cancel().catch(() => {}); return }
        if (res.status < 200 || res.status > 299) {
          throw new SseHttpError(href, res.status, res.statusText, await readErrorBody(res), res.headers)
        }
        const type = res.headers.get('content-type') ?? ''
        if (!/^text\/event-stream\s*(;|$)/i.test(type)) {
          res.body?.cancel().catch(() => {})
          throw new SseProtocolError(`Expected text/event-stream from ${href}, got ${type === '' ? 'no content-type' : type}`, href)
        }
        if (res.body === null) throw new SseProtocolError(`Empty response body from ${href}`, href)

        let queue: Array<EventOf<M>> = []
        let pendingRetry: number | undefined
        let parseError: SseProtocolError | undefined
        const parser = createParser({
          maxBufferSize: maxEventSize,
          onRetry: (ms) => { serverRetry = ms; pendingRetry = ms },
          onError: (err) => {
            // Unknown fields and bad `retry:` values are ignored, as the spec says; size is not.
            if (err.type === 'max-buffer-size-exceeded') {
              parseError = new SseProtocolError(`An event from ${href} exceeds maxEventSize (${maxEventSize} characters)`, href)
            }
          },
          onEvent: (msg) => {
            if (msg.id !== undefined) lastEventId = msg.id === '' ? undefined : msg.id
            const name = msg.event === undefined || msg.event === '' ? 'message' : msg.event
            let data: unknown = msg.data
            if (decodes(name)) {
              try {
                data = JSON.parse(msg.data)
              } catch (err) {
                parseError ??= new SseProtocolError(`Event "${name}" from ${href} has data that is not JSON: ${msg.data.slice(0, 80)}`, href, { cause: err })
                return
              }
            }
            queue.push({ event: name, data, id: msg.id, retry: pendingRetry } as EventOf<M>)
            pendingRetry = undefined
          }
        })
        const reader = res.body.getReader()
        const decoder = new TextDecoder()
        try {
          for (;;) {
            const { done, value } = await reader.read()
            parser.feed(done ? decoder.decode() : decoder.decode(value, { stream: true }))
            if (queue.length > 0) {
              gotEvent = true
              const ready = queue
              queue = []
              for (const ev of ready) yield ev
            }
            if (parseError !== undefined) throw parseError
            if (done) break
          }
        } catch (err) {
          if (userSignal?.aborted === true) throw userSignal.reason
          if (err instanceof SseClientError) throw err
          networkError = err
        }
      }
    } finally {
      userSignal?.removeEventListener('abort', onAbort)
      // Closes the socket if the body is still open: after a `break`, an error, or an abort.
      controller.abort()
    }

    if (!reconnect) {
      if (networkError !== undefined) throw new SseConnectionError(href, 0, networkError, 'Connection lost to')
      return
    }
    if (gotEvent) sinceEvent = 0
    const attempt = sinceEvent + 1
    if (attempt > maxRetries) {
      if (networkError === undefined && sinceEvent === 0) return
      throw new SseConnectionError(href, sinceEvent, networkError ?? new Error('the server kept ending the stream without an event'))
    }
    sinceEvent = attempt
    // The server's `retry:` is the delay after a good stream; repeated failures back off further.
    const backoff = Math.min(maxRetryMs, retryMs * 2 ** (attempt - 1))
    const jittered = backoff / 2 + Math.random() * backoff / 2
    const delayMs = Math.round(serverRetry !== undefined && attempt === 1 ? serverRetry : Math.max(serverRetry ?? 0, jittered))
    options.onReconnect?.({ attempt, delayMs, lastEventId, error: networkError })
    if (!await sleep(delayMs, userSignal)) userSignal?.throwIfAborted()
  }
}

// ── generate(): tokens from this project's /events route ──

export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant'
  content: string
}

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
}

/** The `done` event of `/events`. */
export interface Done {
  finish_reason: string | null
  usage?: Usage | null
  /** The model that answered. */
  model?: string
  /** True when the built-in demo model answered (no LLM configured on the server). */
  demo?: boolean
}

/** The `error` event of `/events` (and of any `reply.sse()` stream). */
export interface StreamErrorData {
  code: string
  message: string
  statusCode?: number
}

/** The events `/events` sends. */
export interface GenerationEvents {
  message: string
  done: Done
  error: StreamErrorData
}

export interface GenerateOptions extends Omit<StreamEventsOptions, 'method' | 'body' | 'json'> {
  /** A single user message; use `messages` for a conversation. */
  prompt?: string
  messages?: ChatMessage[]
  /** A system message put first. */
  system?: string
  /** @default the server's model */
  model?: string
  temperature?: number
  max_tokens?: number
  /**
   * The route, relative to `baseUrl`.
   * @default 'events'
   */
  path?: string
}

/** Tokens as they arrive (`for await`), then `done`: finish reason, usage, model. Consumable once. */
export interface Generation extends AsyncIterable<string> {
  /** Resolves with the `done` event once the iteration has seen it; rejects if the stream failed. */
  readonly done: Promise<Done>
}

// How long a stop request may take before the client gives up on it (it never blocks for longer).
const STOP_TIMEOUT_MS = 5000

// Ids from /events are `<generation>:<seq>`.
function splitId (id: string | undefined): [string, number] | undefined {
  const parsed = splitEventId(id)
  return parsed === undefined ? undefined : [parsed.prefix, parsed.seq]
}

/**
 * Streams an answer from `/events`: `for await (const token of generate(base, { prompt }))`.
 * A dropped connection is resumed with `Last-Event-ID`; tokens the server sends again are skipped.
 * A server that cannot resume starts a new generation instead: that throws `SseProtocolError`
 * rather than splice two different answers together. An `error` event throws `SseEventError`.
 * Leaving on purpose — `break`, `return`, or aborting `signal` — stops the generation on the
 * server (`DELETE <path>/<generation>`), so its upstream request ends too; a dropped connection
 * does not, and is resumed.
 */
export function generate (baseUrl: string | URL, options: GenerateOptions): Generation {
  const { prompt, messages, system, model, temperature, max_tokens: maxTokens, path, ...rest } = options
  if ((prompt === undefined) === (messages === undefined)) throw new TypeError('generate() needs either prompt or messages')
  const chat: ChatMessage[] = []
  if (system !== undefined) chat.push({ role: 'system', content: system })
  if (messages !== undefined) chat.push(...messages)
  else chat.push({ role: 'user', content: prompt as string })
  const base = String(baseUrl)
  const url = new URL(path ?? 'events', base.endsWith('/') ? base : base + '/')
  // `format: 'json'` sends each token as a JSON string: exact even for a `\r`, which the SSE
  // parser would otherwise turn into `\n` (§9.2.6 treats CR, LF and CRLF alike).
  const body: Record<string, unknown> = { messages: chat, format: 'json' }
  if (model !== undefined) body.model = model
  if (temperature !== undefined) body.temperature = temperature
  if (maxTokens !== undefined) body.max_tokens = maxTokens

  const stopHeaders = new Headers(rest.headers)
  stopHeaders.delete('content-type')
  stopHeaders.delete('accept')
  const doFetch = rest.fetch ?? globalThis.fetch

  /**
   * Leaving on purpose (a `break`, a `return`, an aborted signal) is not a dropped connection: a
   * server that keeps generations resumable would run this one on for its grace period, upstream
   * request and all, waiting for a reconnect that never comes. Tell it to stop. Bounded, and never
   * throws: a server without resuming answers 404, one that is gone cannot be told anything.
   */
  async function stop (generation: string): Promise<void> {
    const stopUrl = new URL(`${url.pathname.replace(/\/?$/, '/')}${encodeURIComponent(generation)}`, url)
    try {
      const res = await doFetch(stopUrl, { method: 'DELETE', headers: stopHeaders, signal: AbortSignal.timeout(STOP_TIMEOUT_MS) })
      await res.body?.cancel()
    } catch {}
  }

  let settle!: { resolve: (d: Done) => void, reject: (e: unknown) => void }
  const done = new Promise<Done>((resolve, reject) => { settle = { resolve, reject } })
  // Nobody has to await `done`; an unobserved rejection must not crash the process.
  done.catch(() => {})
  let started = false

  async function * tokens (): AsyncGenerator<string, void, undefined> {
    let generation: string | undefined
    let lastSeq = -Infinity
    let count = 0
    // Set once `done` or `error` arrives: the server's generation is over, nothing to stop.
    let finished = false
    try {
      for await (const ev of streamEvents<GenerationEvents>(url, { ...rest, method: 'POST', body, json: true })) {
        const parts = splitId(ev.id)
        if (parts !== undefined) {
          const [gen, seq] = parts
          if (generation !== undefined && gen !== generation) {
            throw new SseProtocolError(`${url.href} started a new generation instead of resuming ${generation} ` +
              `after ${count} tokens: this server cannot resume generations`, url.href)
          }
          generation = gen
          if (seq <= lastSeq) continue
          lastSeq = seq
        }
        if (ev.event === 'message') { count++; yield ev.data } else if (ev.event === 'done') {
          finished = true
          settle.resolve(ev.data)
          return
        } else if (ev.event === 'error') {
          finished = true
          throw new SseEventError(url.href, ev.data)
        }
      }
      throw new SseProtocolError(`${url.href} ended the stream without a done event`, url.href)
    } catch (err) {
      settle.reject(err)
      throw err
    } finally {
      settle.reject(new SseProtocolError('The iteration stopped before the done event', url.href))
      // Awaited, so that when the loop is left the server has been told (a CLI may exit next).
      if (!finished && generation !== undefined) await stop(generation)
    }
  }

  return {
    done,
    [Symbol.asyncIterator] () {
      if (started) throw new TypeError('A Generation can be iterated only once')
      started = true
      return tokens()
    }
  }
}
