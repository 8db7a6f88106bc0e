// `ours`: fastify-sse-stream from ../../dist (run `npm run build` first; `npm run bench` does).
// A stream is `reply.sse(asyncGenerator)`; a broadcast goes through the hub (encode once, the same
// frame to every subscriber, bounded queues, history for Last-Event-ID).
import Fastify from 'fastify'
import sse from '../../dist/lib/index.js'
import { source } from '../lib/payload.js'

const SHAPE = { tokens: (tok) => tok, json: (obj) => ({ data: obj }) }
const TOPIC = 'bench'

async function loadHub () {
  try {
    return await import('../../dist/lib/hub.js')
  } catch {
    return undefined
  }
}

export async function create () {
  const hubModule = await loadHub()
  const hub = hubModule?.createHub()
  let subscribers = 0
  const app = Fastify()
  await app.register(sse)
  app.get('/stream', (request, reply) => {
    const kind = request.query.kind
    return reply.sse(source(kind, Number(request.query.n), SHAPE[kind]))
  })
  app.get('/sub', async (request, reply) => {
    if (hub === undefined) throw new Error('lib/hub.ts is not built yet: no fan-out for ours')
    subscribers++
    try {
      await reply.sse(({ signal, lastEventId }) => hub.subscribe({ topics: [TOPIC], lastEventId, signal }))
    } finally {
      subscribers--
    }
  })
  return {
    listen: () => app.listen({ port: 0, host: '127.0.0.1' }).then(() => app.server.address().port),
    publish: (obj) => hub.publish(TOPIC, { data: obj }),
    subscribers: () => subscribers,
    info: { history: hub?.historySize ?? 0, maxQueue: hub?.maxQueue, fanOut: hub !== undefined }
  }
}
