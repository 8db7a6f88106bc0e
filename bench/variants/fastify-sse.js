// `@fastify/sse` 0.6, used the way its README shows: a route with `{ sse: true }` and
// `reply.sse.send(asyncIterable)` for a stream; `keepAlive()`, `onClose()` and one
// `reply.sse.send(message)` per subscriber for a broadcast.
import Fastify from 'fastify'
import fastifySse from '@fastify/sse'
import { source } from '../lib/payload.js'

// Strings are sent as they are; `data` objects go through the plugin's serializer (JSON.stringify).
const SHAPE = { tokens: (tok) => tok, json: (obj) => ({ data: obj }) }

export async function create () {
  const subs = new Set()
  const app = Fastify()
  await app.register(fastifySse)
  app.get('/stream', { sse: true }, async (request, reply) => {
    const kind = request.query.kind
    await reply.sse.send(source(kind, Number(request.query.n), SHAPE[kind]))
  })
  app.get('/sub', { sse: true }, async (request, reply) => {
    reply.sse.keepAlive()
    subs.add(reply)
    reply.sse.onClose(() => subs.delete(reply))
    // Headers are lazy: a handler that returns before its first send gets an empty 200 from
    // Fastify and the stream is gone, keepAlive() or not. The README's example sends a first
    // message; committing the headers does the same without an extra event.
    reply.sse.sendHeaders()
  })
  return {
    listen: () => app.listen({ port: 0, host: '127.0.0.1' }).then(() => app.server.address().port),
    publish (obj) {
      const message = { id: String(obj.i), data: obj }
      // Not awaited, or one slow subscriber would hold up everyone; a send to a subscriber that
      // has just gone rejects, which must not crash the process.
      for (const reply of subs) reply.sse.send(message).catch(() => {})
    },
    subscribers: () => subs.size,
    info: { history: 0 }
  }
}
