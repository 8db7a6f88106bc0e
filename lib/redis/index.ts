// `fastify-sse-stream/redis`: the hub and the generations store on Redis Streams, for many
// instances behind a load balancer (docs/deployment.md). ioredis is an optional peer dependency:
// without it, importing this subpath throws SSE_ERR_MISSING_PEER naming the package to install.
import { loadIoredis } from './connect.js'

// Checked here, at import, so that a missing peer shows up where the subpath is imported and not
// at the first connection; the modules below only import ioredis' types.
await loadIoredis()

export { connectRedis, type ConnectRedisOptions } from './connect.js'
export { createRedisHub, type RedisHubOptions } from './hub.js'
export { createRedisGenerations, type RedisGenerationsOptions } from './generations.js'
