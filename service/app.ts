// The service around the plugin: `buildApp(config)` wires Swagger (OpenAPI 3.2, so stream routes
// can carry `itemSchema`), Swagger UI at /docs, the demo page from static/, the plugin and the
// routes. service/server.ts listens; tests call buildApp() with their own config.
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fastifyStatic from '@fastify/static'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import sse from '../lib/index.js'
import { publicError } from '../lib/sse/public-error.js'
import { isLoopback, type AppConfig } from './config.js'
import { breakSwaggerUiRedirectLoop, refuseLargeBodiesEarly } from './hardening.js'
import { packageRoot } from './package-root.js'
import { SSE_ERR_UPSTREAM_UNREACHABLE } from '../routes/events/errors.js'
import { createHub } from '../lib/hub/hub.js'
import { createRedisHub } from '../lib/redis/hub.js'
import { createRedisGenerations } from '../lib/redis/generations.js'
import { createRedisLock } from '../lib/redis/lock.js'
import { connectRedis, probeRedis } from '../lib/redis/connect.js'
import health from '../routes/health/index.js'
import { createLogStream, logRedaction } from '../routes/logs/log-stream.js'
import events from '../routes/events/index.js'
import demoModel, { DEMO_MODEL } from '../routes/demo-model/index.js'
import ticker from '../routes/ticker/index.js'
import logs from '../routes/logs/index.js'
import metrics from './metrics.js'
import pageConfig from './page-config.js'
import { registerCors } from './cors.js'
import { describeEventStreams } from './swagger-sse.js'

const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string, description: string }

/** Where this app listens, as the `/v1` base URL the SDK uses to reach the built-in demo model. */
export function selfBaseURL (app: FastifyInstance): string {
  const address = app.server.address()
  if (address === null || typeof address === 'string') {
    throw new SSE_ERR_UPSTREAM_UNREACHABLE()
  }
  // A wildcard address is not a destination; the loopback of the same family is.
  let host = address.address
  if (host === '0.0.0.0') host = '127.0.0.1'
  else if (host === '::') host = '::1'
  if (address.family === 'IPv6' || host.includes(':')) host = `[${host}]`
  return `http://${host}:${address.port}/v1`
}

/** Trust the nearest `hops` proxies in X-Forwarded-For (proxy-addr's hop-count rule as a function). */
function hopsOf (hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops
}

/** Builds the whole service; call `listen()` on the result. */
export async function buildApp (config: AppConfig): Promise<FastifyInstance> {
  // One hub for the broadcast routes; the logger tees its records into it for /logs, with
  // credentials redacted before they reach stdout or the hub.
  const hub = createHub(config.hub)
  // With REDIS_URL, what clients may resume on another instance goes through Redis: the ticker's
  // hub and the generations. /logs stays per instance: a log stream must not depend on the thing
  // whose failure it may have to report. Redis unreachable here stops the start, naming REDIS_URL.
  const redis = config.redisUrl === undefined ? undefined : await connectRedis(config.redisUrl, { commandTimeoutMs: config.redisCommandTimeoutMs })
  const broadcast = redis === undefined ? hub : createRedisHub({ redis, ...config.hub })
  const app = Fastify({
    logger: {
      level: config.logLevel,
      stream: createLogStream({ hub, secrets: config.llm.apiKey === undefined ? [] : [config.llm.apiKey] }),
      ...logRedaction({ includePrompts: config.logsIncludePrompts })
    },
    // A connection that sends its request head (or body) slowly is cut in seconds, not minutes;
    // the request timeout ends once the request is received, so streams run as long as they like.
    requestTimeout: config.timeouts.requestMs,
    http: { headersTimeout: config.timeouts.headersMs, connectionsCheckingInterval: Math.min(1000, config.timeouts.headersMs) },
    // Idle keep-alive sockets (ours too: the demo model is reached over HTTP) must not hold close().
    forceCloseConnections: true,
    // Behind a proxy, request.ip must be the client's: it keys the rate limit and owns generations.
    trustProxy: typeof config.trustProxy === 'number'
      ? hopsOf(config.trustProxy)
      : config.trustProxy
  })

  // Never a stack, never the text of an unexpected 5xx: our coded errors and 4xx keep their message.
  app.setErrorHandler((err: FastifyError & { retryAfter?: string, upstream?: string }, request, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    const ours = typeof err.code === 'string' && err.code.startsWith('SSE_ERR_')
    if (ours && status >= 500) {
      // An upstream that is down or misconfigured is an operational condition, not a bug: one
      // line with the cause, no stack.
      const cause = (err.cause as Error | undefined)?.message
      // `upstream` (the LLM server's address) is for the operator only: never in the reply.
      request.log.warn({ code: err.code, upstream: err.upstream, cause }, err.message)
    } else if (status >= 500) {
      request.log.error({ err }, 'request failed')
    } else {
      request.log.info({ err }, 'request rejected')
    }
    if (err.retryAfter !== undefined) reply.header('retry-after', err.retryAfter)
    const { statusCode, code, message } = publicError(err)
    return reply.code(statusCode).send({ statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message })
  })

  // Before the routes, so their preflights and headers are answered too.
  if (config.cors !== undefined) await registerCors(app, config.cors)

  // Before the routes: it collects them in an onRoute hook.
  await app.register(swagger, {
    // Swagger UI renders no `itemSchema`: list each stream's events where it looks (service/swagger-sse.ts).
    transformObject: (doc) => describeEventStreams(doc as { openapiObject: Record<string, any> }),
    openapi: {
      openapi: '3.2.0',
      info: { title: 'fastify-sse-stream demo service', description: pkg.description, version: pkg.version },
      tags: [
        { name: 'streams', description: 'Server-Sent Events routes (text/event-stream)' },
        { name: 'demo model', description: 'The built-in OpenAI-compatible model used when no LLM is configured' },
        { name: 'service', description: 'Operating the service: health' }
      ]
    }
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // Swagger UI's Execute buffers a response whole; static/swagger/sse-try-it-out.js shows an SSE
    // response's events as they arrive, with a Stop. The interceptor is serialized into the UI's
    // initializer and runs in the browser, where the theme script has defined the function.
    theme: { js: [{ filename: 'sse-try-it-out.js', content: readFileSync(join(packageRoot, 'static', 'swagger', 'sse-try-it-out.js'), 'utf8') }] },
    uiConfig: { requestInterceptor: (request) => (globalThis as unknown as { sseTryItOut: (r: typeof request) => typeof request }).sseTryItOut(request) }
  })
  breakSwaggerUiRedirectLoop(app, '/docs')
  refuseLargeBodiesEarly(app)
  // Browsers wait about 3 s before reconnecting a dropped EventSource; resuming within 1 s feels live.
  await app.register(sse, { retryMs: 1000, maxStreams: config.maxStreams })

  await app.register(fastifyStatic, { root: join(packageRoot, 'static'), prefix: '/' })
  await app.register(pageConfig, { llm: config.llm })

  // /events mounted as any user would mount it. With no LLM configured, the built-in demo model
  // answers, reached over HTTP at this server's own address (known once it listens, hence a function).
  const demo = config.llm.baseURL === undefined
  const redisGenerations = config.resume === false || redis === undefined ? undefined : createRedisGenerations({ redis, ...config.resume })
  await app.register(events, {
    openai: { baseURL: config.llm.baseURL ?? (() => selfBaseURL(app)), apiKey: config.llm.apiKey, maxRetries: config.llm.maxRetries },
    model: config.llm.model ?? (demo ? DEMO_MODEL : undefined),
    models: config.llm.models,
    demo,
    resume: config.resume === false ? false : redisGenerations !== undefined ? { generations: redisGenerations } : config.resume,
    firstTokenTimeoutMs: config.llm.firstTokenTimeoutMs,
    idleTimeoutMs: config.llm.idleTimeoutMs,
    maxPromptChars: config.maxPromptChars,
    rateLimit: config.rateLimit,
    maxGenerations: config.maxGenerations
  })
  // The demo model is served only when it is the upstream: otherwise it is a free, unmetered
  // endpoint nobody needs.
  if (demo) await app.register(demoModel, { tokenDelayMs: config.demoTokenDelayMs })

  // One instance runs the simulated feed; the lock passes on within 5 s when its holder dies.
  const lock = redis === undefined ? undefined : createRedisLock({ redis, key: 'sse:lock:ticker-feed' })
  await app.register(ticker, { hub: broadcast, intervalMs: config.tickerIntervalMs, exclusive: lock?.exclusive })
  // /logs carries every user's address and every error: private unless the operator says otherwise.
  const reachable = !isLoopback(config.host)
  if (config.logsToken !== undefined || !reachable) {
    await app.register(logs, { hub, token: config.logsToken })
  } else if (config.logsPublic) {
    await app.register(logs, { hub })
    app.log.warn(`/logs is PUBLIC: HOST=${config.host} is reachable from other machines and LOGS_PUBLIC is on without LOGS_TOKEN; anyone who can reach this server reads its logs`)
  } else {
    app.log.warn(`/logs is off: HOST=${config.host} is reachable from other machines and LOGS_TOKEN is unset (set LOGS_TOKEN, or LOGS_PUBLIC=1 to serve it to anyone)`)
  }
  await app.register(metrics, { token: config.metricsToken })
  await app.register(health, {
    hub: broadcast,
    backplane: redis === undefined ? 'memory' : 'redis',
    openStreams: () => app.sseOpenStreams,
    maxStreams: config.maxStreams,
    feeds: lock === undefined ? undefined : () => ({ ticker: lock.held }),
    // A hung Redis keeps its connection open: only a command that gets no answer shows it.
    probe: redis === undefined ? undefined : async () => await probeRedis(redis, config.redisCommandTimeoutMs)
  })
  app.addHook('onClose', async () => {
    // onClose hooks run last-added first: this one runs before any added above it, so whatever
    // needs Redis to close cleanly is closed here, before the connection is. Generations write
    // their end (interrupted) so that a client reconnecting to another instance is told.
    await redisGenerations?.close()
    await hub.close()
    if (broadcast !== hub) await broadcast.close()
    // After the routes' own onClose hooks (the ticker releases its lock, generations end).
    if (redis !== undefined) await redis.quit().catch(() => redis.disconnect())
  })

  return app
}
