// GET /health: whether this instance can serve streams, for a load balancer's health check and
// for people. 200 while the broadcast hub is up; 503 while its backing store (Redis) is away or does
// not answer (a hung Redis keeps its connection open, so only a probe shows it), so a balancer sends
// new clients elsewhere until it is back. Also how many streams are open here,
// against the MAX_STREAMS cap.
import type { FastifyPluginAsync } from 'fastify'
import type { Hub } from '../../lib/hub/hub.js'

export interface HealthRouteOptions {
  /** The broadcast hub behind /ticker (the Redis one when REDIS_URL is set). */
  hub: Hub
  /** `redis` when instances share a Redis backplane, `memory` when everything is in this process. */
  backplane: 'memory' | 'redis'
  /** Event streams open on this instance now. */
  openStreams: () => number
  /** The cap on open streams (`MAX_STREAMS`); 0 means none. */
  maxStreams: number
  /** Single-producer feeds and whether this instance runs them now (holds their lock). */
  feeds?: () => Record<string, boolean>
  /**
   * Asks the backing store whether it answers now (a PING with a timeout): the reason it does not,
   * or undefined. Without it, the hub's connection state alone decides.
   */
  probe?: () => Promise<string | undefined>
}

const body = {
  type: 'object',
  required: ['status', 'hub', 'streams'],
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded'], description: '`degraded`: the hub is down; streams through it fail until it is back.' },
    hub: {
      type: 'object',
      required: ['backplane', 'state'],
      properties: {
        backplane: { type: 'string', enum: ['memory', 'redis'] },
        state: { type: 'string', enum: ['up', 'down', 'closed'] },
        subscribers: { type: 'integer', description: 'Hub subscribers on this instance.' },
        topics: { type: 'integer', description: 'Topics this instance reads.' },
        lastId: { type: 'string', description: 'The last id published or delivered here.' },
        problem: { type: 'string', description: 'Why the hub is down, when a probe says so (e.g. Redis did not answer a PING in time).' }
      }
    },
    feeds: {
      type: 'object',
      additionalProperties: { type: 'boolean' },
      description: 'With REDIS_URL: each single-producer feed (`ticker`), true on the one instance that runs it now.'
    },
    streams: {
      type: 'object',
      required: ['open', 'max'],
      properties: {
        open: { type: 'integer', description: 'Event streams open on this instance.' },
        max: { type: 'integer', description: 'MAX_STREAMS: above it a new stream gets 503 with retry-after; 0 means no cap.' }
      }
    }
  }
}

const health: FastifyPluginAsync<HealthRouteOptions> = async (app, opts) => {
  app.get('/health', {
    schema: {
      tags: ['service'],
      summary: 'Health of this instance: the hub and its open streams',
      description: '200 while the broadcast hub is up, 503 while its backing store (Redis) is unreachable. ' +
        'Point a load balancer\'s health check here.',
      response: {
        200: { description: 'The hub is up.', ...body },
        503: { description: 'The hub is down (Redis unreachable); streams through it fail until it is back.', ...body }
      }
    }
  }, async (request, reply) => {
    const stats = opts.hub.stats()
    const problem = stats.state === 'up' ? await opts.probe?.() : undefined
    const state = problem === undefined ? stats.state : 'down'
    const up = state === 'up'
    return await reply.code(up ? 200 : 503).header('cache-control', 'no-store').send({
      status: up ? 'ok' : 'degraded',
      hub: { backplane: opts.backplane, state, subscribers: stats.subscribers, topics: stats.topics, lastId: stats.lastId, ...(problem === undefined ? {} : { problem }) },
      streams: { open: opts.openStreams(), max: opts.maxStreams },
      ...(opts.feeds === undefined ? {} : { feeds: opts.feeds() })
    })
  })
}

export default health
