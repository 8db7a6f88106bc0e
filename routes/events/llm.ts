// An OpenAI-compatible chat stream (LM Studio, Ollama, vLLM, llama.cpp, OpenAI, or our own demo
// model) as an async iterable of tokens and a final `done`, through the `openai` SDK 6.x (7.x needs
// Node 22). The caller's AbortSignal reaches the SDK's fetch, so a client that goes away cancels
// the upstream HTTP request at once, even while we still wait for its first byte.
// `openai` is an optional peer: types only here; a client is built (routes/events/upstream.ts) only
// when the user did not pass one, and then the package is loaded on demand.
import type OpenAI from 'openai'
import { failedError, mapUpstreamError, NOT_OPENAI, timeoutError, type SdkErrors } from './llm-errors.js'
import { SSE_ERR_UPSTREAM_REJECTED } from './errors.js'
import { loadPeer } from '../../lib/peer.js'
import { TextRepair } from './text-repair.js'
import { gathered } from './gather.js'
import { readChunks } from './chunks.js'

export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant'
  content: string
}

export interface ChatRequest {
  model: string
  messages: ChatMessage[]
  temperature?: number
  max_tokens?: number
}

export interface ChatUsage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
}

/** A piece of the answer, or the end of it. */
export type ChatEvent =
  | { type: 'token', text: string }
  | { type: 'done', finish_reason: string, usage: ChatUsage | null, model: string }

export interface StreamChatOptions {
  /** Aborting it cancels the upstream request; the iteration then ends quietly. */
  signal?: AbortSignal
  /** SSE_ERR_UPSTREAM_TIMEOUT when no token has arrived this long after the request. @default 60000 */
  firstTokenTimeoutMs?: number
  /** SSE_ERR_UPSTREAM_TIMEOUT when the upstream is silent this long between tokens. @default 30000 */
  idleTimeoutMs?: number
  /** Masked out of upstream messages that end up in our errors. */
  apiKey?: string
}

export interface LlmClientOptions {
  baseURL: string
  apiKey?: string
  /**
   * SDK retries (connection errors, 408, 409, 429, 5xx) before the first byte. 0 by default: the
   * SDK would wait out a 429's `retry-after` while our client stares at nothing; passing the 429 on
   * lets the client decide.
   * @default 0
   */
  maxRetries?: number
}

/**
 * An SDK client for one upstream, `openai` loaded on demand. Local servers need no key; the SDK
 * insists on one, so it gets a placeholder.
 */
export async function createLlmClient (opts: LlmClientOptions): Promise<OpenAI> {
  const sdk = await loadPeer('fastify-sse-stream/events', 'openai', async () => await import('openai'))
  return new sdk.OpenAI({
    baseURL: opts.baseURL,
    apiKey: opts.apiKey ?? 'not-needed',
    maxRetries: opts.maxRetries ?? 0,
    // The SDK logs malformed chunks to the console itself; we report them as coded errors instead.
    logLevel: 'off',
    // A redirect is an error rather than followed: to be able to follow one, fetch keeps a copy of
    // every request's body for the life of the answer (8 KB per open generation; bench: relay),
    // and an API base URL that redirects is one to correct (llm-errors.ts says so).
    fetchOptions: { redirect: 'error', window: null }
  })
}

/** The SDK's error classes of this client's own copy of `openai`. */
function errorsOf (client: OpenAI): SdkErrors {
  return client.constructor as unknown as SdkErrors
}

/** The first model the upstream lists (`GET /models`): what LM Studio or Ollama has loaded. */
export async function firstModel (client: OpenAI, signal?: AbortSignal, apiKey?: string): Promise<string> {
  try {
    for await (const model of client.models.list({ signal })) return model.id
  } catch (err) {
    throw mapUpstreamError(err, errorsOf(client), client.baseURL, apiKey, false)
  }
  throw Object.assign(new SSE_ERR_UPSTREAM_REJECTED(404, 'it lists no models; load one or set LLM_MODEL'), { upstream: client.baseURL })
}

/** Where `relayChat` hands each event, as it comes; a promise it returns holds the upstream until it settles. */
export type ChatSink = (event: ChatEvent) => void | Promise<void>

/**
 * Streams one chat completion. Yields `{ type: 'token' }` for every non-empty content delta, then one
 * `{ type: 'done' }` with the finish reason and usage (`stream_options.include_usage`). Throws coded
 * errors (routes/events/llm-errors.ts); returns quietly, without `done`, when `signal` aborts. For
 * callers that pull event by event; the route takes them from `relayChat` as they come.
 */
export async function * streamChat (client: OpenAI, request: ChatRequest, opts: StreamChatOptions = {}): AsyncGenerator<ChatEvent> {
  for await (const batch of gathered<ChatEvent>(opts.signal ?? new AbortController().signal, async (push, signal) => {
    await relayChat(client, request, { ...opts, signal }, push)
  }, 1)) yield * batch
}

/**
 * `streamChat` pushing to `sink`: each event is handed over synchronously inside the SDK's loop,
 * with no async step of ours per token. Resolves when the answer is over (or `signal` aborted).
 */
export async function relayChat (client: OpenAI, request: ChatRequest, opts: StreamChatOptions, sink: ChatSink): Promise<void> {
  const where = client.baseURL
  const firstMs = opts.firstTokenTimeoutMs ?? 60_000
  const idleMs = opts.idleTimeoutMs ?? 30_000
  const outer = opts.signal
  const controller = new AbortController()
  const onAbort = (): void => controller.abort(outer?.reason)
  // A function, not a narrowed property: the signal changes under our awaits.
  const gone = (): boolean => outer?.aborted === true
  if (gone()) return
  outer?.addEventListener('abort', onAbort, { once: true })

  // One timer, re-armed only when it fires: it measures silence from the upstream, and the time we
  // spend waiting for the sink (a slow client) counts as activity, not as upstream silence.
  let expired: number | undefined
  let gotToken = false
  let last = performance.now()
  let timer: NodeJS.Timeout | undefined
  let waiting = true
  const check = (): void => {
    const limit = gotToken ? idleMs : firstMs
    const silent = performance.now() - last
    if (!waiting) {
      // Waiting for the sink: the consumer is slow, the upstream is not silent.
      timer = setTimeout(check, limit)
    } else if (silent >= limit - 1) {
      expired = limit
      controller.abort(timeoutError(where, limit))
    } else {
      timer = setTimeout(check, limit - silent)
    }
  }
  timer = setTimeout(check, firstMs)

  let midStream = false
  try {
    const response = await client.chat.completions.create(
      { ...request, stream: true, stream_options: { include_usage: true } },
      { signal: controller.signal }).asResponse()
    midStream = true
    const contentType = response.headers.get('content-type') ?? ''
    // An emoji split across two chunks arrives as lone surrogates: held back until whole.
    const text = new TextRepair()
    let finishReason: string | undefined
    let usage: ChatUsage | null = null
    let model = request.model
    const chunks = await readChunks(response, errorsOf(client), (chunk) => {
      if (typeof chunk.model === 'string' && chunk.model !== '') model = chunk.model
      if (chunk.usage != null) usage = chunk.usage
      const choice = chunk.choices?.[0]
      if (choice === undefined) return
      if (choice.finish_reason != null) finishReason = choice.finish_reason
      const piece = text.push(choice.delta?.content)
      if (piece === '') return
      if (!gotToken) {
        // From now on the idle limit applies; re-arm once so a shorter one is not missed.
        gotToken = true
        clearTimeout(timer)
        timer = setTimeout(check, idleMs)
      }
      const held = sink({ type: 'token', text: piece })
      if (held === undefined) return
      // The consumer is behind: time spent waiting for it is not upstream silence.
      waiting = false
      return held.then(() => {
        waiting = true
        last = performance.now()
      })
    }, () => { last = performance.now() })
    if (expired !== undefined) throw timeoutError(where, expired)
    if (gone()) return
    const rest = text.end()
    if (rest !== '') await sink({ type: 'token', text: rest })
    if (finishReason === undefined) {
      // A 200 whose body is not an event stream (a JSON answer, an HTML page) parses as no chunk at all.
      if (chunks === 0 && !contentType.includes('text/event-stream')) {
        throw failedError(where, NOT_OPENAI(`a 200 reply that is not an event stream (content-type "${contentType.slice(0, 100)}")`))
      }
      throw failedError(where, 'the stream ended before the model finished (no finish_reason); see the LLM server\'s logs')
    }
    await sink({ type: 'done', finish_reason: finishReason, usage, model })
  } catch (err) {
    if (expired !== undefined) throw timeoutError(where, expired)
    if (gone()) return
    throw mapUpstreamError(err, errorsOf(client), where, opts.apiKey, midStream)
  } finally {
    clearTimeout(timer)
    outer?.removeEventListener('abort', onAbort)
    // Ends the upstream request if the consumer stopped early (its signal aborted after a disconnect).
    controller.abort()
  }
}
