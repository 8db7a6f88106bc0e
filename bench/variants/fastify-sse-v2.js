// `fastify-sse-v2` 4.2, used the way its README shows: `reply.sse(asyncIterable)` for a stream,
// and for a broadcast its EventEmitter recipe, `events.on()` inside an async generator, with the
// subscription ended when the socket closes.
import Fastify from 'fastify'
import { FastifySSEPlugin } from 'fastify-sse-v2'
import { EventEmitter, on } from 'node:events'
import { source } from '../lib/payload.js'

// Its serializer splits `data` on '\n', so `data` must already be a string.
const SHAPE = { tokens: (tok) => ({ data: tok }), json: (obj) => ({ data: JSON.stringify(obj) }) }

export async function create () {
  const emitter = new EventEmitter()
  emitter.setMaxListeners(0)
  const app = Fastify()
  await app.register(FastifySSEPlugin)
  app.get('/stream', (request, reply) => {
    const kind = request.query.kind
    reply.sse(source(kind, Number(request.query.n), SHAPE[kind]))
  })
  app.get('/sub', (request, reply) => {
    const controller = new AbortController()
    request.socket.on('close', () => controller.abort())
    reply.sse((async function * () {
      try {
        for await (const [obj] of on(emitter, 'update', { signal: controller.signal })) {
          yield { id: String(obj.i), data: JSON.stringify(obj) }
        }
      } catch (err) {
        // The abort above ends the loop with an AbortError; anything else is a real failure.
        if (err.name !== 'AbortError') throw err
      }
    })())
  })
  return {
    listen: () => app.listen({ port: 0, host: '127.0.0.1' }).then(() => app.server.address().port),
    publish: (obj) => emitter.emit('update', obj),
    subscribers: () => emitter.listenerCount('update'),
    info: { history: 0 }
  }
}
