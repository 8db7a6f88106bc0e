// An `onRequest` hook that lets a request through only with the right bearer token: the header
// `Authorization: Bearer <token>`, or `?token=` (a browser's EventSource cannot set headers).
// Used by /logs (LOGS_TOKEN) and the demo service's /metrics (METRICS_TOKEN).
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createHash, timingSafeEqual } from 'node:crypto'
import { SSE_ERR_UNAUTHORIZED } from './errors.js'

const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

/**
 * The hook for `token` (undefined or '': every request passes). `realm` names the route in
 * `www-authenticate`; `variable` names the setting in the 401's message.
 */
export function bearerToken (token: string | undefined, realm: string, variable: string) {
  const expected = token === undefined || token === '' ? undefined : digest(token)
  return async function authorize (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (expected === undefined) return
    const header = request.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    const query = request.query as { token?: unknown } | undefined
    const given = match?.[1] ?? (typeof query?.token === 'string' ? query.token : undefined)
    reply.header('www-authenticate', `Bearer realm="${realm}"`)
    if (given === undefined || given === '') throw new SSE_ERR_UNAUTHORIZED(`this route needs the ${variable} as a bearer token`)
    // Compared as digests: constant time, whatever the lengths.
    if (!timingSafeEqual(digest(given), expected)) throw new SSE_ERR_UNAUTHORIZED('wrong token')
    reply.removeHeader('www-authenticate')
  }
}
