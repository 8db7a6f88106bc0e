// What users type against when they register the plugin: the declaration merging on Fastify's
// reply, request and instance, `reply.sse<T>` message typing, and the encoder and errors of `.`.
import Fastify from 'fastify'
import sse, { encode, errors, fastifySseStream, SseFrame, type SseContext, type SseMessage, type SsePluginOptions } from 'fastify-sse-stream'
import { expectExact } from './assert.js'

const app = Fastify()
await app.register(sse, { heartbeatMs: 15_000, retryMs: 2000, maxStreams: 100 })
await app.register(fastifySseStream)
// @ts-expect-error heartbeatMs is a number of milliseconds
await app.register(sse, { heartbeatMs: '15s' })
// @ts-expect-error an option the plugin does not have
const wrong: SsePluginOptions = { heartbeat: 1 }
void wrong

expectExact<number>()(app.sseOpenStreams)
// @ts-expect-error sseOpenStreams is read-only
app.sseOpenStreams = 3

interface Quote { symbol: string, price: number }

app.get('/stream', async (request, reply) => {
  expectExact<string | undefined>()(request.lastEventId)
  expectExact<Promise<void>>()(reply.sse(['a', { data: 'b', event: 'x' }]))

  await reply.sse(async function * (ctx) {
    expectExact<SseContext>()(ctx)
    expectExact<AbortSignal>()(ctx.signal)
    expectExact<string | undefined>()(ctx.lastEventId)
    yield { id: 42, data: { any: 'shape' } }
    yield { id: 'g:1', retry: 1000, comment: 'hi' }
    yield new SseFrame(encode({ data: 'pre-encoded' }))
  })

  // With T given, every message's data is checked against it.
  await reply.sse<Quote>([{ event: 'quote', data: { symbol: 'A', price: 1 } }])
  // @ts-expect-error price must be a number
  await reply.sse<Quote>([{ event: 'quote', data: { symbol: 'A', price: '1' } }])
  // @ts-expect-error retry is a number of milliseconds
  await reply.sse([{ retry: '1000' }])
  // @ts-expect-error an id is a string or an integer, not an object
  await reply.sse([{ id: { n: 1 } }])
})

const message: SseMessage<Quote> = { data: { symbol: 'B', price: 2 }, id: 7 }
expectExact<string>()(encode(message))
expectExact<'SSE_ERR_INVALID_FIELD'>()(new errors.SSE_ERR_INVALID_FIELD('id', 'CR or LF').code)
expectExact<'SSE_ERR_MISSING_PEER'>()(new errors.SSE_ERR_MISSING_PEER('fastify-sse-stream/redis', 'ioredis', 'ioredis').code)
