// CORS for pages on other origins (`CORS_ORIGINS`), off by default: without it a browser lets no
// other origin read the streams. Only named origins, never `*`: with `CORS_CREDENTIALS=on` the
// browser sends cookies (`new EventSource(url, { withCredentials: true })`, `fetch` with
// `credentials: 'include'`), which the CORS rules allow only with the exact origin echoed back.
import type { FastifyInstance } from 'fastify'
import cors from '@fastify/cors'
import { SSE_ERR_INVALID_CONFIG } from './errors.js'

export interface CorsConfig {
  /** Origins allowed to read the responses, e.g. `https://app.example`. */
  origins: string[]
  /** Allow credentials (cookies, HTTP auth) on those requests. @default false */
  credentials: boolean
}

/**
 * `CORS_ORIGINS=https://a.example,https://b.example:8443` (each exactly an origin: scheme, host,
 * port; no path, no `*`) and `CORS_CREDENTIALS=on|off`. `undefined` when CORS_ORIGINS is unset.
 */
export function corsFromEnv (env: Record<string, string | undefined>): CorsConfig | undefined {
  const raw = env.CORS_ORIGINS?.trim()
  if (raw === undefined || raw === '') return undefined
  const origins = raw.split(',').map((s) => s.trim()).filter((s) => s !== '').map((origin) => {
    let parsed: URL | undefined
    try { parsed = new URL(origin) } catch {}
    if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.origin !== origin) {
      throw new SSE_ERR_INVALID_CONFIG('CORS_ORIGINS', `expected comma-separated origins such as https://app.example (scheme, host and port only), got "${origin}"`)
    }
    return origin
  })
  const credentials = env.CORS_CREDENTIALS?.trim() ?? 'off'
  if (credentials !== 'on' && credentials !== 'off') {
    throw new SSE_ERR_INVALID_CONFIG('CORS_CREDENTIALS', `expected on or off, got "${credentials}"`)
  }
  return { origins, credentials: credentials === 'on' }
}

/** Registers @fastify/cors for the named origins (every route: the streams and their stop/health). */
export async function registerCors (app: FastifyInstance, config: CorsConfig): Promise<void> {
  await app.register(cors, {
    origin: config.origins,
    credentials: config.credentials,
    // What a cross-origin script sends: JSON bodies, a resume cursor, a bearer token.
    allowedHeaders: ['content-type', 'last-event-id', 'authorization'],
    methods: ['GET', 'HEAD', 'POST', 'DELETE'],
    // A script reading a 429 must see when to come back.
    exposedHeaders: ['retry-after'],
    maxAge: 600
  })
}
