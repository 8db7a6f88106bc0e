// `better-sse` 0.16, used the way its README shows: `createSession(req, res)` on the raw
// request/response of a hijacked Fastify route, `session.iterate(iterable)` for a stream, and a
// channel's `broadcast()` for fan-out. Every value is JSON-serialized and gets a random UUID id.
import Fastify from 'fastify'
import { createChannel, createSession } from 'better-sse'
import { source } from '../lib/payload.js'

const SHAPE = { tokens: (tok) => tok, json: (obj) => obj }

export async function create () {
  const channel = createChannel()
  const app = Fastify()
  app.get('/stream', async (request, reply) => {
    reply.hijack()
    const kind = request.query.kind
    const session = await createSession(request.raw, reply.raw)
    await session.iterate(source(kind, Number(request.query.n), SHAPE[kind]))
    reply.raw.end()
  })
  app.get('/sub', async (request, reply) => {
    reply.hijack()
    const session = await createSession(request.raw, reply.raw)
    channel.register(session)
  })
  return {
    listen: () => app.listen({ port: 0, host: '127.0.0.1' }).then(() => app.server.address().port),
    publish: (obj) => channel.broadcast(obj, 'message'),
    subscribers: () => channel.sessionCount,
    info: { history: 0 }
  }
}
