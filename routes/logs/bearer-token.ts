// An `onRequest` hook that lets a request through only with the right bearer token: the header
// `Authorization: Bearer <token>`, or `?token=` (a browser's EventSource cannot set headers).
// Used by /logs (LOGS_TOKEN) and the demo service's /metrics (METRICS_TOKEN). Wrong guesses are
// rate limited per client (routes/logs/guesses.ts).
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createHash, timingSafeEqual } from 'node:crypto'
import { SSE_ERR_INVALID_TOKEN, SSE_ERR_TOO_MANY_ATTEMPTS, SSE_ERR_UNAUTHORIZED } from './errors.js'
import { createGuesses, type GuessLimit } from './guesses.js'
import { integerOption } from '../../lib/internal/integer-option.js'

const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

/**
 * The hook for `token` (undefined or '': every request passes). `realm` names the route in
 * `www-authenticate`; `variable` names the setting in the 401's message; `limit` bounds wrong
 * guesses per client (default 10 a minute).
 */
export function bearerToken (token: string | undefined, realm: string, variable: string, limit: GuessLimit = {}) {
  const expected = token === undefined || token === '' ? undefined : digest(token)
  const guesses = createGuesses({
    max: integerOption('guesses.max', limit.max, 10, 1),
    windowMs: integerOption('guesses.windowMs', limit.windowMs, 60_000, 1)
  })
  return async function authorize (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (expected === undefined) return
    const header = request.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    // This hook runs before validation: `?token=a&token=b` arrives here as an array.
    const query = (request.query as { token?: unknown } | undefined)?.token
    if (match === null && query !== undefined && typeof query !== 'string') throw new SSE_ERR_INVALID_TOKEN('give it once, as text')
    const given = match?.[1] ?? query as string | undefined
    reply.header('www-authenticate', `Bearer realm="${realm}"`)
    if (given === undefined || given === '') throw new SSE_ERR_UNAUTHORIZED(`this route needs the ${variable} as a bearer token`)
    const wait = guesses.blockedFor(request.ip)
    if (wait > 0) {
      reply.header('retry-after', String(wait))
      throw new SSE_ERR_TOO_MANY_ATTEMPTS(wait)
    }
    // Compared as digests: constant time, whatever the lengths.
    if (!timingSafeEqual(digest(given), expected)) {
      guesses.miss(request.ip)
      throw new SSE_ERR_UNAUTHORIZED('wrong token')
    }
    reply.removeHeader('www-authenticate')
  }
}
