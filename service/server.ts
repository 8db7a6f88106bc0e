// `npm start`: configuration from the environment, the service on HOST:PORT, and a graceful close
// on SIGINT/SIGTERM (close-with-grace: open streams end, the upstream requests behind them are
// aborted, then the process exits; a second signal or 10 s later it exits regardless).
import closeWithGrace from 'close-with-grace'
import { buildApp, selfBaseURL } from './app.js'
import { loadConfig, type AppConfig } from './config.js'

/** `SSE_ERR_INVALID_CONFIG: LOG_LEVEL …`: the code first, so it can be searched for in the docs. */
function describeStartError (err: unknown): string {
  const { code, message } = err as { code?: unknown, message?: unknown }
  const text = String(message ?? err)
  return typeof code === 'string' && code.startsWith('SSE_ERR_') && !text.startsWith(code) ? `${code}: ${text}` : text
}

let config: AppConfig
try {
  config = loadConfig()
} catch (err) {
  // Before the logger exists; one plain line says what to fix, with the code the docs list.
  console.error(describeStartError(err))
  process.exit(1)
}

let app: Awaited<ReturnType<typeof buildApp>>
try {
  app = await buildApp(config)
} catch (err) {
  // Redis unreachable (SSE_ERR_HUB_UNAVAILABLE naming REDIS_URL), say: one plain line, no stack.
  console.error(describeStartError(err))
  process.exit(1)
}

closeWithGrace({ delay: 10_000, logger: { error: (msg: unknown) => app.log.error(msg) } }, async ({ err, signal }) => {
  if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
  else app.log.info(`${signal ?? 'close'} received, closing`)
  await app.close()
})

try {
  await app.listen({ host: config.host, port: config.port })
} catch (err: any) {
  const hint = err?.code === 'EADDRINUSE'
    ? `port ${config.port} on ${config.host} is already in use: stop the other server or set PORT`
    : err?.code === 'EADDRNOTAVAIL' || err?.code === 'ENOTFOUND'
      ? `cannot listen on HOST=${config.host}: use an address of this machine, e.g. 127.0.0.1 or 0.0.0.0`
      : String(err?.message ?? err)
  app.log.error({ err }, hint)
  console.error(hint)
  process.exit(1)
}

const home = selfBaseURL(app).replace(/\/v1$/, '/')
const llm = config.llm.baseURL === undefined
  ? 'the built-in demo model (set LLM_BASE_URL to use a real one)'
  : `${config.llm.baseURL}${config.llm.model !== undefined ? ` (model ${config.llm.model})` : ''}`
app.log.info(`Open ${home} for the demo page, ${home}docs for the API; /events answers with ${llm}`)
