import t from 'tap'
import Fastify from 'fastify'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { AddressInfo } from 'node:net'
import { EventSource } from 'eventsource'
import sse from '../../lib/index.js'
import { deferred, listen, openStream } from '../helpers/http.js'

async function app (opts = {}) {
  const app = Fastify()
  await app.register(sse, opts)
  return app
}

/** Waits until `read()` stops changing across a few event-loop turns and 50 ms pauses (bounded). */
async function settle (read: () => number): Promise<number> {
  let last = -1
  let stable = 0
  for (let i = 0; i < 200 && stable < 4; i++) {
    await sleep(50)
    const now = read()
    stable = now === last ? stable + 1 : 0
    last = now
  }
  return last
}

t.test('a client that reads nothing stops the source from being pulled, and loses nothing', async (t) => {
  const server = await app({ heartbeatMs: 0 })
  let pulled = 0
  const payload = 'x'.repeat(1024)
  server.get('/s', (request, reply) => reply.sse(async function * ({ signal }) {
    while (!signal.aborted && pulled < 200_000) { // 200 MB if nothing held it back
      pulled++
      yield payload
    }
  }))
  const url = new URL(await listen(server))
  t.teardown(() => server.close())

  const socket = net.connect(Number(url.port), url.hostname)
  await once(socket, 'connect')
  socket.pause()
  socket.write(`GET /s HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\n\r\n`)
  const heapBefore = process.memoryUsage().heapUsed
  const stalledAt = await settle(() => pulled)
  const heapGrowth = process.memoryUsage().heapUsed - heapBefore
  t.ok(stalledAt > 10, `the source was pulled (${stalledAt} messages)`)
  // Socket buffers on both sides hold a few MB at most; without backpressure this would be all 200 000.
  t.ok(stalledAt < 32 * 1024, `the source stopped at ${stalledAt} messages (${(stalledAt / 1024).toFixed(1)} MB)`)
  t.ok(heapGrowth < 64 * 1024 * 1024, `server heap grew by ${(heapGrowth / 1048576).toFixed(1)} MB`)

  // Now read a little: the source resumes; then read everything and count what arrived.
  let received = ''
  let events = 0
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    received += chunk
    const frames = received.split('\n\n')
    events += frames.length - 1
    received = frames[frames.length - 1]
    if (events >= stalledAt + 1000) socket.destroy()
  })
  socket.resume()
  await once(socket, 'close')
  t.ok(pulled > stalledAt, 'reading lets the source go on')
  t.ok(events >= stalledAt + 1000, `every pulled message arrived in order (${events})`)
})

t.test('a disconnect aborts an upstream request that never answers, and the source finally runs', async (t) => {
  const upstreamClosed = deferred()
  const upstreamReached = deferred()
  const upstream = http.createServer((req) => {
    upstreamReached.resolve()
    req.socket.on('close', () => upstreamClosed.resolve())
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  t.teardown(() => upstream.close())
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`

  const server = await app()
  const finallyRan = deferred()
  const sseSettled = deferred()
  server.get('/s', async (request, reply) => {
    await reply.sse(async function * ({ signal }) {
      try {
        yield 'waiting for upstream'
        const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
          http.get(upstreamUrl, { signal }, resolve).on('error', reject)
        })
        yield String(res.statusCode)
      } finally {
        finallyRan.resolve()
      }
    })
    sseSettled.resolve()
  })
  const url = await listen(server)
  t.teardown(() => server.close())
  const s = await openStream(url + '/s')
  await s.waitForEvents(1)
  await upstreamReached.promise
  s.destroy()
  await upstreamClosed.promise
  t.pass('the upstream socket was closed')
  await finallyRan.promise
  t.pass("the source's finally block ran")
  await sseSettled.promise
  t.pass('reply.sse() settled without rejecting')
})

t.test("a disconnect calls the iterator's return() even while next() never settles", async (t) => {
  const server = await app()
  const returned = deferred()
  const settled = deferred()
  let calls = 0
  const stuck: AsyncIterable<string> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        if (calls++ === 0) return { value: 'first', done: false }
        return await new Promise<IteratorResult<string>>(() => {}) // an upstream that never answers
      },
      return: async () => { returned.resolve(); return { value: undefined, done: true } }
    })
  }
  server.get('/s', async (request, reply) => { await reply.sse(stuck); settled.resolve() })
  const url = await listen(server)
  t.teardown(() => server.close())
  const s = await openStream(url + '/s')
  await s.waitForEvents(1)
  s.destroy()
  await returned.promise
  await settled.promise
  t.equal(calls, 2)
})

t.test('app.close() with 100 open streams resolves, and every client sees its stream end', async (t) => {
  const server = await app()
  let aborted = 0
  server.get('/s', (request, reply) => reply.sse(async function * ({ signal }) {
    yield 'open'
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
    aborted++
  }))
  const url = await listen(server)
  const streams = await Promise.all(Array.from({ length: 100 }, () => openStream(url + '/s')))
  await Promise.all(streams.map((s) => s.waitForEvents(1)))
  await server.close()
  await Promise.all(streams.map((s) => s.ended))
  t.equal(aborted, 100, 'every source saw its signal abort')
  t.ok(streams.every((s) => s.res.complete), 'every response ended cleanly (not cut off)')
})

t.test('app.close() does not wait for a source that ignores its signal', async (t) => {
  const server = await app()
  server.get('/s', (request, reply) => reply.sse(async function * () {
    yield 'open'
    await new Promise(() => {})
  }))
  const url = await listen(server)
  const s = await openStream(url + '/s')
  await s.waitForEvents(1)
  await server.close()
  await s.ended
  t.pass('closed')
})

t.test('HTTP/2: events arrive, with no connection header and no warnings', async (t) => {
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const server = Fastify({ http2: true })
  await server.register(sse)
  server.get('/s', (request, reply) => reply.sse(async function * () {
    yield { event: 'greeting', data: 'hello' }
    yield { id: '2', data: { n: 2 } }
  }))
  await server.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => server.close())
  const client = http2.connect(`http://127.0.0.1:${(server.server.address() as AddressInfo).port}`)
  t.teardown(() => client.close())
  const req = client.request({ ':path': '/s', accept: 'text/event-stream' })
  const [headers] = await once(req, 'response') as [http2.IncomingHttpHeaders]
  req.setEncoding('utf8')
  let body = ''
  for await (const chunk of req) body += chunk
  t.equal(headers[':status'], 200)
  t.equal(headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(headers.connection, undefined)
  t.equal(body, 'event: greeting\ndata: hello\n\nid: 2\ndata: {"n":2}\n\n')
  t.same(warnings, [])
})

t.test('the eventsource client reconnects after the stream ends and sends Last-Event-ID', async (t) => {
  const server = await app({ retryMs: 10 })
  const seen: Array<string | undefined> = []
  server.get('/s', (request, reply) => reply.sse(({ lastEventId }) => {
    seen.push(lastEventId)
    const from = lastEventId === undefined ? 0 : Number(lastEventId) + 1
    return [0, 1].map((i) => ({ id: String(from + i), data: `n${from + i}` }))
  }))
  const url = await listen(server)
  t.teardown(() => server.close())
  const es = new EventSource(url + '/s')
  const got: string[] = []
  const done = deferred()
  es.onmessage = (ev) => {
    got.push(`${ev.lastEventId}:${ev.data}`)
    if (got.length === 6) { es.close(); done.resolve() }
  }
  await done.promise
  t.same(got, ['0:n0', '1:n1', '2:n2', '3:n3', '4:n4', '5:n5'])
  t.same(seen, [undefined, '1', '3'])
})
