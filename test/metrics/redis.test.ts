// The Redis backplane's metrics against a real redis-server: reader lag per delivery, the hub's
// state, and failed commands counted by operation while Redis is away.
import t from 'tap'
import { Registry } from 'prom-client'
import type { Redis } from 'ioredis'
import { createRedisHub } from '../../lib/redis/hub.js'
import { connectRedis } from '../../lib/redis/connect.js'
import { sseMetrics } from '../../lib/metrics/index.js'
import { redisMissing, startRedis } from '../helpers/redis.js'
import { sample } from './helpers.js'

const skip = redisMissing()

t.test('a Redis hub reports its reader\'s lag per delivery, its publishes, and hub_up; a publish while Redis is down counts an error', { skip }, async (t) => {
  const registry = new Registry()
  const metrics = await sseMetrics({ registry })
  t.teardown(() => metrics.close())
  const server = await startRedis(t)
  const redis: Redis = await connectRedis(server.url)
  t.teardown(() => redis.disconnect())
  const hub = createRedisHub({ redis })
  t.teardown(() => hub.close())

  const sub = hub.subscribe({ topics: 'lag' })
  await hub.publish('lag', { data: 'one' })
  const first = await sub.next()
  t.match(first.value?.text, /data: one/)
  const backplane = { backplane: 'redis' }
  t.equal(await sample(registry, 'fastify_sse_stream_hub_published_total', backplane), 1)
  t.ok(await sample(registry, 'fastify_sse_stream_redis_reader_lag_seconds_count') >= 1, 'the delivery\'s lag was observed')
  t.equal(await sample(registry, 'fastify_sse_stream_hub_up', backplane), 1)
  t.equal(await sample(registry, 'fastify_sse_stream_hub_subscribers', backplane), 1)

  await server.kill()
  const errors = async (): Promise<number> => await sample(registry, 'fastify_sse_stream_redis_errors_total', { operation: 'read' }) +
    await sample(registry, 'fastify_sse_stream_redis_errors_total', { operation: 'publish' })
  // Wait for the client to notice (bounded), then read the figures once.
  for (let i = 0; i < 500 && (hub.stats().state !== 'down' || await errors() === 0); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  await t.rejects(hub.publish('lag', { data: 'two' }), { code: 'SSE_ERR_HUB_UNAVAILABLE' })
  t.equal(await sample(registry, 'fastify_sse_stream_hub_up', backplane), 0, 'down while Redis is away')
  t.ok(await errors() >= 1, 'the failed read was counted')
})
