// `fastify-raw`: the raw loop inside a hijacked Fastify route, the floor for any Fastify plugin.
import Fastify from 'fastify'
import { RawBroadcaster, streamFrames } from './raw-writer.js'

export async function create () {
  const hub = new RawBroadcaster()
  const app = Fastify()
  app.get('/stream', (request, reply) => {
    reply.hijack()
    streamFrames(reply.raw, request.query.kind, Number(request.query.n))
  })
  app.get('/sub', (request, reply) => {
    reply.hijack()
    hub.subscribe(reply.raw)
  })
  return {
    listen: () => app.listen({ port: 0, host: '127.0.0.1' }).then(() => app.server.address().port),
    publish: (obj) => hub.publish(obj),
    subscribers: () => hub.count,
    info: { history: 0 }
  }
}
