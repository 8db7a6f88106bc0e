// `ours`: fastify-sse-stream from ../../dist (run `npm run build` first; `npm run bench` does).
// A stream is `reply.sse(asyncGenerator)`; a broadcast goes through the hub the way docs/hub.md
// shows it, `app.get(path, hubRoute(hub, { topics }))`: encoded once, the same frame to every
// subscriber, bounded queues, history for Last-Event-ID.
import Fastify from 'fastify'
import sse from '../../dist/lib/index.js'
import { source } from '../lib/payload.js'

const SHAPE = { tokens: (tok) => tok, json: (obj) => ({ data: obj }) }
const TOPIC = 'bench'
// The hub's documented defaults, spelled out so the S4 report can state the bounds it checks.
const HUB = { historySize: 1000, maxQueueBytes: 1024 * 1024 }

async function loadHub () {
  try {
    const [{ createHub }, { hubRoute }] = await Promise.all([import('../../dist/lib/hub/hub.js'), import('../../dist/lib/hub/source.js')])
    return { hub: createHub(HUB), hubRoute }
  } catch {
    return undefined
  }
}

export async function create () {
  const fanOut = await loadHub()
  const app = Fastify()
  await app.register(sse)
  app.get('/stream', (request, reply) => {
    const kind = request.query.kind
    return reply.sse(source(kind, Number(request.query.n), SHAPE[kind]))
  })
  if (fanOut !== undefined) {
    const { hub, hubRoute } = fanOut
    app.get('/sub', hubRoute(hub, { topics: TOPIC }))
  }
  return {
    listen: () => app.listen({ port: 0, host: '127.0.0.1' }).then(() => app.server.address().port),
    publish: (obj) => { fanOut.hub.publish(TOPIC, { data: obj }) },
    subscribers: () => fanOut?.hub.stats().subscribers ?? 0,
    flushes: () => fanOut?.hub.stats().flushes,
    info: { history: fanOut === undefined ? 0 : HUB.historySize, maxQueueBytes: HUB.maxQueueBytes }
  }
}
