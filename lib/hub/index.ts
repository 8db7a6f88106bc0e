// `fastify-sse-stream/hub`: broadcast with id'd history and replay after Last-Event-ID
// (docs/hub.md). The Redis implementation of the same interface is `fastify-sse-stream/redis`.
export { createHub } from './hub.js'
export type { Hub, HubMessage, HubOptions, HubStats, SubscribeOptions, OverflowPolicy } from './hub.js'
export { hubRoute, hubSource, type HubSourceOptions } from './source.js'
