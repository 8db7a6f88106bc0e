// The options of the /events route plugin: what a user passes to `app.register(events, opts)`,
// checked at registration with a coded error (SSE_ERR_INVALID_OPTION) and read into plain values.
import type OpenAI from 'openai'
import type { FastifyRequest } from 'fastify'
import { SSE_ERR_INVALID_OPTION } from '../../lib/errors.js'
import { integerOption } from '../../lib/internal/integer-option.js'
import { createGenerations, type Generations } from '../../lib/generations/store.js'
import { isClient, type OpenAIConfig } from './upstream.js'
import type { GenerationLimits } from './budget.js'

export interface EventsResumeOptions {
  /** Where generations live: the in-memory store by default; `createRedisGenerations` for many instances. */
  generations?: Generations
  /** With the built-in store: how long a generation runs on with no client attached. @default 30000 */
  graceMs?: number
  /** With the built-in store: how long a finished generation stays resumable. @default 300000 */
  ttlMs?: number
  /** `retry:` sent to clients: how soon a dropped EventSource comes back (browsers wait ~3 s). @default 1000 */
  retryMs?: number
}

export interface EventsOptions {
  /**
   * The OpenAI-compatible upstream: your own `OpenAI` client, or `{ baseURL, apiKey, maxRetries }`
   * to build one (this needs the `openai` package installed).
   */
  openai: OpenAI | OpenAIConfig
  /** The model asked for. Unset: the first model the upstream lists (`GET /models`, asked once). */
  model?: string
  /** Other values of `model` a request may name; `'*'` allows any. @default [] (only `model`) */
  models?: readonly string[] | '*'
  /** `done` events say `demo: true` (the built-in demo model answers). @default false */
  demo?: boolean
  /** 504 (or an `error` event once streaming) when no first token arrives in time. @default 60000 */
  firstTokenTimeoutMs?: number
  /** An `error` event when the upstream goes silent between tokens this long. @default 30000 */
  idleTimeoutMs?: number
  /** The longest prompt, system prompt or message content, in characters. @default 8000 */
  maxPromptChars?: number
  /**
   * Requests per window per client, across every method of the route (GET, HEAD, POST);
   * `false` turns it off. @default { max: 30, timeWindowMs: 60000 }
   */
  rateLimit?: { max: number, timeWindowMs: number } | false
  /** Concurrent generations per client and per instance (429 with `retry-after` past them). */
  maxGenerations?: GenerationLimits
  /**
   * Who the client is: the key of the rate limit and the per-client cap, and the owner of its
   * generations (only the owner may resume or stop one). @default request.ip
   */
  client?: (request: FastifyRequest) => string
  /**
   * Resumable generations: the answer runs decoupled from the connection, and a reconnect with
   * Last-Event-ID continues it. `false`: a disconnect aborts the upstream at once. `true` or an
   * object without `generations`: an in-memory store made (and closed) by the route.
   * @default true
   */
  resume?: boolean | EventsResumeOptions
}

export interface ResolvedEvents {
  firstTokenTimeoutMs: number
  idleTimeoutMs: number
  maxPromptChars: number
  rateLimit: { max: number, timeWindowMs: number } | false
  limits: Required<GenerationLimits>
  client: (request: FastifyRequest) => string
  resume: { generations: Generations, retryMs: number, owned: boolean } | undefined
}

const DAY_MS = 86_400_000

export function resolveEventsOptions (opts: EventsOptions): ResolvedEvents {
  const o = opts ?? {}
  if (o.openai === undefined || o.openai === null || typeof o.openai !== 'object') {
    throw new SSE_ERR_INVALID_OPTION('openai', 'expected an OpenAI client or { baseURL, apiKey }')
  }
  if (!isClient(o.openai)) {
    const base = (o.openai as OpenAIConfig).baseURL
    if (typeof base !== 'string' && typeof base !== 'function') throw new SSE_ERR_INVALID_OPTION('openai.baseURL', 'expected a URL string or a function returning one')
  }
  if (o.model !== undefined && (typeof o.model !== 'string' || o.model === '')) throw new SSE_ERR_INVALID_OPTION('model', 'expected a model name')
  if (o.models !== undefined && o.models !== '*' && !(Array.isArray(o.models) && o.models.every((m) => typeof m === 'string'))) {
    throw new SSE_ERR_INVALID_OPTION('models', 'expected an array of model names or \'*\'')
  }
  if (o.client !== undefined && typeof o.client !== 'function') throw new SSE_ERR_INVALID_OPTION('client', 'expected a function of the request')
  let rateLimit: ResolvedEvents['rateLimit'] = false
  if (o.rateLimit !== false) {
    rateLimit = {
      max: integerOption('rateLimit.max', o.rateLimit?.max, 30, 1, Number.MAX_SAFE_INTEGER),
      timeWindowMs: integerOption('rateLimit.timeWindowMs', o.rateLimit?.timeWindowMs, 60_000, 1, DAY_MS)
    }
  }
  const limits = {
    perClient: integerOption('maxGenerations.perClient', o.maxGenerations?.perClient, 3, 0, Number.MAX_SAFE_INTEGER),
    total: integerOption('maxGenerations.total', o.maxGenerations?.total, 100, 0, Number.MAX_SAFE_INTEGER),
    retryAfterS: integerOption('maxGenerations.retryAfterS', o.maxGenerations?.retryAfterS, 5, 0, 86_400)
  }
  let resume: ResolvedEvents['resume']
  if (o.resume !== false) {
    const r: EventsResumeOptions = o.resume === true || o.resume === undefined ? {} : o.resume
    const retryMs = integerOption('resume.retryMs', r.retryMs, 1000, 0, DAY_MS)
    resume = r.generations !== undefined
      ? { generations: r.generations, retryMs, owned: false }
      : { generations: createGenerations({ graceMs: r.graceMs, ttlMs: r.ttlMs }), retryMs, owned: true }
  }
  return {
    firstTokenTimeoutMs: integerOption('firstTokenTimeoutMs', o.firstTokenTimeoutMs, 60_000, 1, DAY_MS),
    idleTimeoutMs: integerOption('idleTimeoutMs', o.idleTimeoutMs, 30_000, 1, DAY_MS),
    maxPromptChars: integerOption('maxPromptChars', o.maxPromptChars, 8000, 1, 10_000_000),
    rateLimit,
    limits,
    client: o.client ?? ((request) => request.ip),
    resume
  }
}
