// Each line must be a type error; test/types.test.ts runs tsc here and expects exactly these.
import Fastify from 'fastify'
import sse from 'fastify-sse-stream'
import { expectExact } from '../assert.js'

const app = Fastify()
await app.register(sse)
app.get('/', async (request, reply) => {
  expectExact<string>()(request.lastEventId) // WRONG: string | undefined
  await reply.sse<{ price: number }>([{ data: { price: 'high' } }]) // WRONG: price is a number
})
