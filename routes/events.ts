// GET/POST /events: LLM tokens as Server-Sent Events (work in progress).
import type { FastifyPluginAsync } from 'fastify'
import type { UpstreamResolver } from '../lib/upstream.js'

export interface EventsRouteOptions {
  upstream: UpstreamResolver
  firstTokenTimeoutMs: number
  idleTimeoutMs: number
  maxPromptChars: number
  rateLimit: { max: number, timeWindowMs: number } | false
}

const events: FastifyPluginAsync<EventsRouteOptions> = async () => {}
export default events
