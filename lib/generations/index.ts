// `fastify-sse-stream/generations`: resumable generations (an LLM answer a client can reconnect
// to and resume by Last-Event-ID), kept in this process. The Redis store of the same interface is
// `createRedisGenerations` in `fastify-sse-stream/redis`.
export { createGenerations } from './store.js'
export type { Generations, GenerationStoreOptions, Producer, GenerationEvent } from './store.js'
