// GET /metrics: this instance's Prometheus metrics (docs/deployment.md, "Metrics"): its streams,
// hubs and LLM generations, from `fastify-sse-stream/metrics`. Not rate-limited (only /events is,
// inside its own plugin), so a scraper is never turned away; protected by METRICS_TOKEN when set.
// GET /health stays the cheap liveness check.
import type { FastifyPluginAsync } from 'fastify'
import { Registry } from 'prom-client'
import { sseMetrics } from '../lib/metrics/index.js'
import { bearerToken } from '../routes/logs/bearer-token.js'

export interface MetricsRouteOptions {
  /** `METRICS_TOKEN`: when set, a scrape must carry `Authorization: Bearer <token>` or `?token=`. */
  token?: string
}

const metrics: FastifyPluginAsync<MetricsRouteOptions> = async (app, opts) => {
  const registry = new Registry()
  const collector = await sseMetrics({ registry })
  app.addHook('onClose', async () => { collector.close() })

  app.get('/metrics', {
    onRequest: bearerToken(opts.token, 'metrics', 'METRICS_TOKEN'),
    schema: {
      tags: ['service'],
      summary: 'Prometheus metrics of this instance',
      description: 'Streams open, started and ended by route; events and bytes written; hub subscribers, fan-out, ' +
        'slow subscribers and Redis; LLM time to first token, tokens per second and upstream errors. ' +
        'In the Prometheus text format. When the server has `METRICS_TOKEN`, send `Authorization: Bearer <token>`.',
      querystring: { type: 'object', properties: { token: { type: 'string', maxLength: 1024 } } },
      response: {
        200: { description: 'The Prometheus text exposition format 0.0.4.', content: { 'text/plain': { schema: { type: 'string' } } } }
      }
    }
  }, async (request, reply) => {
    const text = await registry.metrics()
    return await reply.type(registry.contentType).header('cache-control', 'no-store').send(text)
  })
}

export default metrics
