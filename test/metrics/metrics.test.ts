// fastify-sse-stream/metrics on real sockets: counters and gauges move the way an operator reads them.
import t, { type Test } from 'tap'
import http, { type IncomingMessage } from 'node:http'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import sse from '../../lib/index.js'
import { createHub } from '../../lib/hub/hub.js'
import { hubSource } from '../../lib/hub/source.js'
import { sseMetrics } from '../../lib/metrics/index.js'
import { deferred, listen, openStream } from '../helpers/http.js'
import { sample } from './helpers.js'
import { existsSync, readFileSync } from 'node:fs'

async function collector (t: Test): Promise<Registry> {
  const registry = new Registry()
  const metrics = await sseMetrics({ registry })
  t.teardown(() => metrics.close())
  return registry
}

t.test('a stream the client drops is counted open while it runs, then ended with reason "client", with its events and bytes', async (t) => {
  const registry = await collector(t)
  const app = Fastify()
  await app.register(sse, { heartbeatMs: 0 })
  const settled = deferred()
  app.get('/items/:id', (request, reply) => {
    const done = reply.sse(async function * ({ signal }) {
      yield { event: 'hello', data: 'ünïcode' }
      yield 'second'
      await new Promise((resolve) => signal.addEventListener('abort', resolve))
    })
    void done.then(settled.resolve)
    return done
  })
  t.teardown(() => app.close())
  const url = await listen(app)

  const s = await openStream(url + '/items/42')
  await s.waitForEvents(2)
  const route = { route: '/items/:id' }
  t.equal(await sample(registry, 'fastify_sse_stream_streams_open', route), 1, 'labelled by the URL pattern, not the URL')
  t.equal(await sample(registry, 'fastify_sse_stream_streams_started_total', route), 1)
  t.equal(await sample(registry, 'fastify_sse_stream_events_written_total', route), 2, 'counted before the stream ends')
  s.destroy()
  await settled.promise
  t.equal(await sample(registry, 'fastify_sse_stream_streams_open', route), 0)
  t.equal(await sample(registry, 'fastify_sse_stream_streams_ended_total', { ...route, reason: 'client' }), 1)
  t.equal(await sample(registry, 'fastify_sse_stream_streams_ended_total', { ...route, reason: 'done' }), 0)
  const written = await sample(registry, 'fastify_sse_stream_bytes_written_total', route)
  const text = Buffer.byteLength('event: hello\ndata: ünïcode\n\ndata: second\n\n')
  t.ok(written > text && written < text + 1024, `${written} bytes: the UTF-8 event text, the headers and chunk framing`)
})

t.test('streams that end by themselves, fail, or are ended by app.close() are counted by reason', async (t) => {
  const registry = await collector(t)
  const app = Fastify({ logger: false })
  await app.register(sse, { heartbeatMs: 0 })
  app.get('/done', (request, reply) => reply.sse(['a', 'b', 'c']))
  app.get('/fail', (request, reply) => reply.sse(async function * () {
    yield 'a'
    throw new Error('boom')
  }))
  app.get('/forever', (request, reply) => reply.sse(async function * ({ signal }) {
    yield 'a'
    await new Promise((resolve) => signal.addEventListener('abort', resolve))
  }))
  const url = await listen(app)
  // Read with node:http, to compare what the client's socket received with what was counted.
  const received = await new Promise<number>((resolve, reject) => {
    http.get(url + '/done', { agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.socket.bytesRead))
    }).on('error', reject)
  })
  await (await fetch(url + '/fail')).text()
  const s = await openStream(url + '/forever')
  await s.waitForEvents(1)
  await app.close()
  t.equal(await sample(registry, 'fastify_sse_stream_streams_ended_total', { route: '/done', reason: 'done' }), 1)
  t.equal(await sample(registry, 'fastify_sse_stream_events_written_total', { route: '/done' }), 3)
  t.equal(await sample(registry, 'fastify_sse_stream_bytes_written_total', { route: '/done' }), received, 'every byte the client received')
  t.equal(await sample(registry, 'fastify_sse_stream_streams_ended_total', { route: '/fail', reason: 'error' }), 1)
  t.equal(await sample(registry, 'fastify_sse_stream_streams_ended_total', { route: '/forever', reason: 'shutdown' }), 1)
  t.equal(await sample(registry, 'fastify_sse_stream_streams_open', { route: '/forever' }), 0)
})

t.test('a slow hub subscriber that overflows is disconnected: its stream ends with reason "overflow" and the hub counts it', async (t) => {
  const registry = await collector(t)
  const hub = createHub({ historySize: 10, maxQueueBytes: 64 * 1024 })
  const app = Fastify()
  await app.register(sse, { heartbeatMs: 0 })
  const settled = deferred()
  app.get('/fan', (request, reply) => {
    const done = reply.sse(hubSource(hub, { topics: 'fan' }))
    void done.then(settled.resolve)
    return done
  })
  t.teardown(async () => { await app.close(); await hub.close() })
  const url = await listen(app)

  // A client that reads nothing: the socket fills, then the subscriber's queue.
  const req = http.get(url + '/fan', { agent: false })
  req.on('error', () => {})
  t.teardown(() => req.destroy())
  req.on('response', (res: IncomingMessage) => res.pause())
  // Headers go out with the first frame: wait for the subscription itself.
  for (let i = 0; i < 1000 && hub.stats().subscribers === 0; i++) await new Promise(setImmediate)
  t.equal(await sample(registry, 'fastify_sse_stream_hub_subscribers', { backplane: 'memory' }), 1)
  const payload = 'x'.repeat(32 * 1024)
  let ended = false
  void settled.promise.then(() => { ended = true })
  // Bounded: loopback buffers hold a few MB at most.
  for (let i = 0; i < 4000 && !ended; i++) {
    await hub.publish('fan', { data: payload })
    await new Promise(setImmediate)
  }
  t.ok(ended, 'the stream ended')
  t.equal(await sample(registry, 'fastify_sse_stream_hub_overflows_total', { backplane: 'memory', action: 'disconnect' }), 1)
  t.equal(await sample(registry, 'fastify_sse_stream_streams_ended_total', { route: '/fan', reason: 'overflow' }), 1)
  t.ok(await sample(registry, 'fastify_sse_stream_backpressure_waits_total', { route: '/fan' }) >= 1, 'it waited on backpressure')
  t.ok(await sample(registry, 'fastify_sse_stream_hub_published_total', { backplane: 'memory' }) >= 2)
  t.ok(await sample(registry, 'fastify_sse_stream_hub_fanout_batch_messages_count', { backplane: 'memory' }) >= 1)
  t.equal(await sample(registry, 'fastify_sse_stream_hub_subscribers', { backplane: 'memory' }), 0)
})

t.test('a drop subscriber\'s gap counts its lost messages, and a reconnect counts as a replay or a reset', async (t) => {
  const registry = await collector(t)
  const hub = createHub({ historySize: 5, maxQueue: 4, lingerMs: 0 })
  t.teardown(() => hub.close())
  const slow = hub.subscribe({ topics: 'x', overflow: 'drop' })
  let last = ''
  for (let i = 0; i < 10; i++) last = await hub.publish('x', { data: String(i) })
  await new Promise(setImmediate) // the batch's fan-out (lingerMs: 0): ten messages reach a queue of four
  t.equal(await sample(registry, 'fastify_sse_stream_hub_overflows_total', { backplane: 'memory', action: 'gap' }), 1)
  t.ok(await sample(registry, 'fastify_sse_stream_hub_dropped_messages_total', { backplane: 'memory', action: 'gap' }) >= 1)
  void slow.return?.()

  const prior = last.replace(/\d+$/, (n) => String(Number(n) - 2))
  void hub.subscribe({ topics: 'x', lastEventId: prior }).return?.()
  t.equal(await sample(registry, 'fastify_sse_stream_hub_replays_total', { backplane: 'memory' }), 1)
  t.equal(await sample(registry, 'fastify_sse_stream_hub_replayed_messages_total', { backplane: 'memory' }), 2)
  void hub.subscribe({ topics: 'x', lastEventId: 'not-ours' }).return?.()
  t.equal(await sample(registry, 'fastify_sse_stream_hub_resets_total', { backplane: 'memory', reason: 'invalid' }), 1)
})

t.test('after close() nothing is collected and the metrics are gone from the registry', async (t) => {
  const registry = new Registry()
  const metrics = await sseMetrics({ registry })
  metrics.close()
  t.equal(registry.getSingleMetric('fastify_sse_stream_streams_open'), undefined)
  const again = await sseMetrics({ registry, prefix: 'sse_' })
  t.teardown(() => again.close())
  t.ok(registry.getSingleMetric('sse_streams_open'), 'a prefix of one\'s own')
})

t.test('the package\'s ./metrics subpath is the built module, with its types', async (t) => {
  const root = new URL('../../', import.meta.url)
  if (!existsSync(new URL('dist/lib/metrics/index.js', root))) throw new Error('dist/ is missing: run `npm run build` (npm test does)')
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'))
  t.same(pkg.exports['./metrics'], { types: './dist/lib/metrics/index.d.ts', default: './dist/lib/metrics/index.js' })
  t.ok(existsSync(new URL(pkg.exports['./metrics'].types, root)), 'the declarations are built')
  t.equal(pkg.peerDependenciesMeta['prom-client']?.optional, true, 'prom-client is an optional peer')
  const mod = await import('fastify-sse-stream/metrics' as string) as { sseMetrics: unknown }
  t.type(mod.sseMetrics, 'function')
})

t.test('over HTTP/2, where streams share a socket, the bytes counted are the UTF-8 event text of the stream', async (t) => {
  const registry = await collector(t)
  const server = Fastify({ http2: true })
  await server.register(sse, { heartbeatMs: 0 })
  server.get('/h2', (request, reply) => reply.sse([{ event: 'greeting', data: 'héllo' }, 'two']))
  t.teardown(() => server.close())
  await server.listen({ port: 0, host: '127.0.0.1' })
  const client = http2.connect(`http://127.0.0.1:${(server.server.address() as AddressInfo).port}`)
  t.teardown(() => client.close())
  const req = client.request({ ':path': '/h2' })
  req.setEncoding('utf8')
  let body = ''
  for await (const chunk of req) body += chunk
  t.equal(await sample(registry, 'fastify_sse_stream_bytes_written_total', { route: '/h2' }), Buffer.byteLength(body))
  t.equal(await sample(registry, 'fastify_sse_stream_streams_ended_total', { route: '/h2', reason: 'done' }), 1)
})
