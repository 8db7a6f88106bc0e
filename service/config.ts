// The service's configuration, read once from the environment and validated before anything
// listens: a bad value stops `npm start` with SSE_ERR_INVALID_CONFIG naming the variable, instead
// of surfacing later as a confusing runtime failure.
import { SSE_ERR_INVALID_CONFIG } from './errors.js'
import { corsFromEnv, type CorsConfig } from './cors.js'

export interface LlmConfig {
  /**
   * The OpenAI-compatible server (`LLM_BASE_URL`, else `OPENAI_BASE_URL`), e.g.
   * `http://localhost:1234/v1`. `undefined` means the built-in demo model, reached over HTTP at
   * this app's own address.
   */
  baseURL: string | undefined
  /** `LLM_API_KEY`, else `OPENAI_API_KEY`. Local servers need none; the SDK gets a placeholder. */
  apiKey: string | undefined
  /**
   * `LLM_MODEL`. Unset with an upstream: the first model the server lists (`GET /models`);
   * unset without one: `demo-markov`.
   */
  model: string | undefined
  /**
   * `LLM_MODELS`: other models a request may name with `model`, comma-separated, or `*` for any.
   * @default [] (only the configured one)
   */
  models: string[] | '*'
  /** `LLM_FIRST_TOKEN_TIMEOUT_MS`: 504 when no token arrives this long after the request. @default 60000 */
  firstTokenTimeoutMs: number
  /** `LLM_IDLE_TIMEOUT_MS`: an `error` event when no token arrives this long after the last one. @default 30000 */
  idleTimeoutMs: number
  /**
   * `LLM_MAX_RETRIES`: SDK retries of a failed request before its first byte. A relay passes a 429
   * on at once rather than sit out the upstream's `retry-after` while the client waits.
   * @default 0
   */
  maxRetries: number
}

export interface AppConfig {
  /** `HOST` @default '127.0.0.1' */
  host: string
  /** `PORT`; 0 picks a free port. @default 8080 */
  port: number
  /** `LOG_LEVEL`: fatal, error, warn, info, debug, trace or silent. @default 'info' */
  logLevel: string
  llm: LlmConfig
  /** `DEMO_TOKEN_DELAY_MS`: the demo model's pause between tokens. @default 30 */
  demoTokenDelayMs: number
  /** `EVENTS_MAX_PROMPT_CHARS`: the longest prompt, system prompt or message content. @default 8000 */
  maxPromptChars: number
  /**
   * `RATE_LIMIT_MAX` requests per `RATE_LIMIT_WINDOW_MS` per client address on `/events`;
   * `RATE_LIMIT_MAX=0` turns the limit off (`false`). @default { max: 30, timeWindowMs: 60000 }
   */
  rateLimit: { max: number, timeWindowMs: number } | false
  /**
   * `EVENTS_MAX_PER_CLIENT` and `EVENTS_MAX_GENERATIONS`: answers generated at once per client and
   * per instance; `0` is no cap. @default { perClient: 3, total: 100 }
   */
  maxGenerations: { perClient: number, total: number }
  /**
   * The broadcast hub behind /ticker and /logs: `HUB_HISTORY_SIZE` messages kept per topic for
   * Last-Event-ID replay; `HUB_MAX_QUEUE` messages and `HUB_MAX_QUEUE_BYTES` bytes a reader that
   * is behind may have queued before its route's overflow policy applies.
   * @default { historySize: 1000, maxQueue: 1024, maxQueueBytes: 1048576 }
   */
  hub: { historySize: number, maxQueue: number, maxQueueBytes: number }
  /** `TICKER_INTERVAL_MS`: the simulated ticker's tick. @default 500 */
  tickerIntervalMs: number
  /** `LOGS_TOKEN`: when set, /logs needs it as a bearer token (or `?token=`). @default undefined (open) */
  logsToken: string | undefined
  /** `METRICS_TOKEN`: when set, /metrics needs it as a bearer token (or `?token=`). @default undefined (open) */
  metricsToken: string | undefined
  /**
   * `LOGS_PUBLIC=1`: serve /logs without `LOGS_TOKEN` on a non-loopback `HOST` (a warning is
   * logged at start). Unset, such a server does not mount /logs at all. @default false
   */
  logsPublic: boolean
  /** `LOGS_INCLUDE_PROMPTS=1`: keep prompts and generation ids in logged request URLs. @default false */
  logsIncludePrompts: boolean
  /**
   * `HEADERS_TIMEOUT_MS`: a connection that has not sent its whole request head by then is cut;
   * `REQUEST_TIMEOUT_MS`: the same for the whole request, body included (never the response, so
   * long-lived streams are not cut). @default { headersMs: 10000, requestMs: 30000 }
   */
  timeouts: { headersMs: number, requestMs: number }
  /**
   * Resumable generations on /events (`EVENTS_RESUME=on|off`): a dropped connection continues the
   * answer. `RESUME_GRACE_MS`: how long a generation runs on with no client attached;
   * `RESUME_TTL_MS`: how long a finished one stays resumable. `false` when off.
   * @default { graceMs: 30000, ttlMs: 300000 }
   */
  resume: { graceMs: number, ttlMs: number } | false
  /**
   * `REDIS_URL` (`redis://` or `rediss://`): instances sharing it share the broadcast hub, the
   * resumable generations and one ticker feed (docs/deployment.md). Unset: all in this process.
   * @default undefined
   */
  redisUrl: string | undefined
  /**
   * `MAX_STREAMS`: event streams this instance keeps open at once; one more is answered 503 with
   * `retry-after`, so a balancer or the client tries elsewhere. `0` means no cap.
   * @default 10000
   */
  maxStreams: number
  /**
   * `REDIS_COMMAND_TIMEOUT_MS`: a Redis command unanswered this long fails, so a hung Redis is
   * reported (503, `SSE_ERR_HUB_UNAVAILABLE`) instead of holding requests. @default 2000
   */
  redisCommandTimeoutMs: number
  /**
   * `TRUST_PROXY`: behind a reverse proxy, which `X-Forwarded-For` hops to believe, so that
   * `request.ip` (the rate limit's key and a resumable generation's owner) is the client's and not
   * the proxy's: the number of proxies in front of the service (`1` for one nginx), or a
   * comma-separated list of their addresses/CIDRs. `true` is refused: it believes the left-most
   * entry, which the client writes itself.
   * @default false (the peer address is the client)
   */
  trustProxy: false | number | string[]
  /** `CORS_ORIGINS` and `CORS_CREDENTIALS` (service/cors.ts). @default undefined (no CORS) */
  cors?: CorsConfig
}

type Env = Record<string, string | undefined>

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

function text (env: Env, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

function integer (env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name)
  if (raw === undefined) return fallback
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SSE_ERR_INVALID_CONFIG(name, `expected an integer from ${min} to ${max}, got "${raw}"`)
  }
  return value
}

function redisUrl (env: Env, name: string): string | undefined {
  const raw = text(env, name)
  return raw === undefined ? undefined : checkRedisUrl(raw, name)
}

/** Checks that `url` is a redis:// or rediss:// URL; throws SSE_ERR_INVALID_CONFIG naming `name`. */
export function checkRedisUrl (url: string, name = 'REDIS_URL'): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new SSE_ERR_INVALID_CONFIG(name, 'expected a URL such as redis://127.0.0.1:6379')
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new SSE_ERR_INVALID_CONFIG(name, `expected redis:// or rediss://, got the scheme "${parsed.protocol}"`)
  }
  return url
}

function url (env: Env, name: string): string | undefined {
  const raw = text(env, name)
  if (raw === undefined) return undefined
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new SSE_ERR_INVALID_CONFIG(name, `expected an http(s) URL such as http://localhost:1234/v1, got "${raw}"`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new SSE_ERR_INVALID_CONFIG(name, `expected an http(s) URL, got the scheme "${parsed.protocol}"`)
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new SSE_ERR_INVALID_CONFIG(name, 'must not carry credentials: put the key in LLM_API_KEY')
  }
  // The SDK appends `/chat/completions` itself; a trailing slash would double it.
  return raw.replace(/\/+$/, '')
}

/** Reads and validates the configuration; throws SSE_ERR_INVALID_CONFIG naming the variable. */
export function loadConfig (env: Env = process.env): AppConfig {
  const host = text(env, 'HOST') ?? '127.0.0.1'
  if (/\s|\//.test(host)) throw new SSE_ERR_INVALID_CONFIG('HOST', `expected a host name or address, got "${host}"`)
  const logLevel = text(env, 'LOG_LEVEL') ?? 'info'
  if (!LOG_LEVELS.has(logLevel)) {
    throw new SSE_ERR_INVALID_CONFIG('LOG_LEVEL', `expected one of ${[...LOG_LEVELS].join(', ')}, got "${logLevel}"`)
  }
  const baseName = text(env, 'LLM_BASE_URL') !== undefined ? 'LLM_BASE_URL' : 'OPENAI_BASE_URL'
  const rateMax = integer(env, 'RATE_LIMIT_MAX', 30, 0, 1_000_000)
  const rateWindow = integer(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 1, 86_400_000)
  return {
    host,
    port: integer(env, 'PORT', 8080, 0, 65535),
    logLevel,
    llm: {
      baseURL: url(env, baseName),
      apiKey: text(env, 'LLM_API_KEY') ?? text(env, 'OPENAI_API_KEY'),
      model: text(env, 'LLM_MODEL'),
      models: modelList(env, 'LLM_MODELS'),
      firstTokenTimeoutMs: integer(env, 'LLM_FIRST_TOKEN_TIMEOUT_MS', 60_000, 1, 3_600_000),
      idleTimeoutMs: integer(env, 'LLM_IDLE_TIMEOUT_MS', 30_000, 1, 3_600_000),
      maxRetries: integer(env, 'LLM_MAX_RETRIES', 0, 0, 10)
    },
    demoTokenDelayMs: integer(env, 'DEMO_TOKEN_DELAY_MS', 30, 0, 60_000),
    maxPromptChars: integer(env, 'EVENTS_MAX_PROMPT_CHARS', 8000, 1, 1_000_000),
    rateLimit: rateMax === 0 ? false : { max: rateMax, timeWindowMs: rateWindow },
    hub: {
      historySize: integer(env, 'HUB_HISTORY_SIZE', 1000, 0, 1_000_000),
      maxQueue: integer(env, 'HUB_MAX_QUEUE', 1024, 1, 1_000_000),
      maxQueueBytes: integer(env, 'HUB_MAX_QUEUE_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024)
    },
    maxGenerations: {
      perClient: integer(env, 'EVENTS_MAX_PER_CLIENT', 3, 0, 1_000_000),
      total: integer(env, 'EVENTS_MAX_GENERATIONS', 100, 0, 10_000_000)
    },
    tickerIntervalMs: integer(env, 'TICKER_INTERVAL_MS', 500, 10, 3_600_000),
    logsToken: logsToken(env, 'LOGS_TOKEN'),
    metricsToken: text(env, 'METRICS_TOKEN'),
    logsPublic: onOff(env, 'LOGS_PUBLIC', false),
    logsIncludePrompts: onOff(env, 'LOGS_INCLUDE_PROMPTS', false),
    timeouts: timeouts(env),
    trustProxy: trustProxy(env, 'TRUST_PROXY'),
    resume: onOff(env, 'EVENTS_RESUME', true)
      ? { graceMs: integer(env, 'RESUME_GRACE_MS', 30_000, 0, 86_400_000), ttlMs: integer(env, 'RESUME_TTL_MS', 300_000, 0, 86_400_000) }
      : false,
    redisUrl: redisUrl(env, 'REDIS_URL'),
    redisCommandTimeoutMs: integer(env, 'REDIS_COMMAND_TIMEOUT_MS', 2000, 10, 600_000),
    maxStreams: integer(env, 'MAX_STREAMS', 10_000, 0, 10_000_000),
    cors: corsFromEnv(env)
  }
}

function trustProxy (env: Env, name: string): false | number | string[] {
  const value = text(env, name)
  if (value === undefined || value === 'false') return false
  // Fastify's `trustProxy: true` takes the left-most X-Forwarded-For entry. A proxy such as nginx
  // appends the address it saw to whatever the client sent, so that entry is the client's own
  // choice: anyone could pick the address that owns another's generation, or a fresh one per
  // request to dodge the rate limit. Only entries added by proxies we know of can be believed.
  if (value.toLowerCase() === 'true') {
    throw new SSE_ERR_INVALID_CONFIG(name, '"true" believes the left-most X-Forwarded-For entry, which clients write themselves ' +
      '(they could pose as any address): set the number of proxies in front of the service (1 for one nginx) or their addresses')
  }
  if (/^\d+$/.test(value)) return integer(env, name, 0, 0, 10)
  const list = value.split(',').map((a) => a.trim()).filter((a) => a !== '')
  if (list.length === 0 || list.some((a) => !/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(a))) {
    throw new SSE_ERR_INVALID_CONFIG(name, `expected a number of proxy hops, or proxy addresses such as 127.0.0.1,10.0.0.0/8, got "${value}"`)
  }
  return list
}

/** The shortest LOGS_TOKEN accepted: guessable tokens make /logs public with extra steps. */
export const MIN_LOGS_TOKEN = 16

function logsToken (env: Env, name: string): string | undefined {
  const value = text(env, name)
  if (value !== undefined && value.length < MIN_LOGS_TOKEN) {
    throw new SSE_ERR_INVALID_CONFIG(name, `expected at least ${MIN_LOGS_TOKEN} characters (e.g. openssl rand -hex 16), got ${value.length}`)
  }
  if (value !== undefined && /[\s\p{Cc}]/u.test(value)) throw new SSE_ERR_INVALID_CONFIG(name, 'must not contain spaces or control characters')
  return value
}

function timeouts (env: Env): { headersMs: number, requestMs: number } {
  const headersMs = integer(env, 'HEADERS_TIMEOUT_MS', 10_000, 100, 600_000)
  const requestMs = integer(env, 'REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000)
  // Node refuses a headers timeout longer than the request timeout.
  if (headersMs > requestMs) throw new SSE_ERR_INVALID_CONFIG('HEADERS_TIMEOUT_MS', `must not exceed REQUEST_TIMEOUT_MS (${requestMs})`)
  return { headersMs, requestMs }
}

/** True for an address only this machine can reach (`localhost`, 127.0.0.0/8, ::1). */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === '[::1]'
}

function modelList (env: Env, name: string): string[] | '*' {
  const value = text(env, name)
  if (value === undefined) return []
  if (value === '*') return '*'
  const list = value.split(',').map((m) => m.trim()).filter((m) => m !== '')
  if (list.some((m) => m.length > 200 || /\p{Cc}/u.test(m))) {
    throw new SSE_ERR_INVALID_CONFIG(name, 'expected model names separated by commas, or *')
  }
  return list
}

function onOff (env: Env, name: string, fallback: boolean): boolean {
  const value = text(env, name)?.toLowerCase()
  if (value === undefined) return fallback
  if (value === 'on' || value === 'true' || value === '1') return true
  if (value === 'off' || value === 'false' || value === '0') return false
  throw new SSE_ERR_INVALID_CONFIG(name, `expected on or off, got "${value}"`)
}
