import t from 'tap'
import Fastify from 'fastify'
import sse, { SseFrame } from '../../lib/index.js'
import { deferred, listen, openStream } from '../helpers/http.js'
import { PATIENCE_MS } from '../helpers/eventually.js'

async function app (opts = {}) {
  const app = Fastify()
  await app.register(sse, opts)
  return app
}

t.test('sends the event-stream headers, keeps headers and status set on the reply', async (t) => {
  const server = await app()
  server.get('/s', (request, reply) => {
    reply.code(201).header('access-control-allow-origin', '*').header('x-custom', 'kept')
    return reply.sse(['a'])
  })
  const url = await listen(server)
  t.teardown(() => server.close())
  const s = await openStream(url + '/s')
  await s.ended
  t.equal(s.res.statusCode, 201)
  t.equal(s.res.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(s.res.headers['cache-control'], 'no-cache')
  t.equal(s.res.headers['x-accel-buffering'], 'no')
  t.equal(s.res.headers.connection, 'keep-alive')
  t.equal(s.res.headers['access-control-allow-origin'], '*')
  t.equal(s.res.headers['x-custom'], 'kept')
  t.equal(s.res.headers['content-length'], undefined)
  t.equal(s.text(), 'data: a\n\n')
})

t.test('writes strings, messages and pre-encoded frames in order, and ends with the source', async (t) => {
  const server = await app()
  server.get('/s', (request, reply) => reply.sse(async function * () {
    yield 'plain'
    yield { event: 'obj', id: '7', data: { a: [1, 2] } }
    yield new SseFrame('event: pre\ndata: x\n\n')
    yield { retry: 0 }
    yield { id: '' }
    yield { comment: 'two\nlines' }
  }))
  const url = await listen(server)
  t.teardown(() => server.close())
  const s = await openStream(url + '/s')
  await s.ended
  t.equal(s.text(),
    'data: plain\n\n' +
    'event: obj\nid: 7\ndata: {"a":[1,2]}\n\n' +
    'event: pre\ndata: x\n\n' +
    'retry: 0\n\n' +
    'id: \n\n' +
    ': two\n: lines\n\n')
})

t.test('writes retry first when retryMs is set, and a per-call serialize wins over the plugin one', async (t) => {
  const server = await app({ retryMs: 2500, serialize: () => 'plugin' })
  server.get('/plugin', (request, reply) => reply.sse([{ data: 1 }]))
  server.get('/call', (request, reply) => reply.sse([{ data: 1 }], { serialize: (d) => `call:${String(d)}` }))
  const url = await listen(server)
  t.teardown(() => server.close())
  const a = await openStream(url + '/plugin')
  await a.ended
  t.equal(a.text(), 'retry: 2500\n\ndata: plugin\n\n')
  const b = await openStream(url + '/call')
  await b.ended
  t.equal(b.text(), 'retry: 2500\n\ndata: call:1\n\n')
})

t.test('sends a heartbeat comment on an idle stream, which also starts the stream', async (t) => {
  const server = await app({ heartbeatMs: 50 })
  const release = deferred()
  server.get('/idle', (request, reply) => reply.sse(async function * () {
    await release.promise
    yield 'done'
  }))
  const url = await listen(server)
  t.teardown(() => server.close())
  const s = await openStream(url + '/idle')
  await s.waitForComment()
  t.equal(s.res.statusCode, 200, 'the first heartbeat starts the stream')
  t.match(s.text(), /^:\n\n/)
  release.resolve()
  await s.ended
  t.match(s.text(), /data: done\n\n$/)
})

t.test('sends no heartbeat while events flow more often than the heartbeat period', async (t) => {
  const server = await app({ heartbeatMs: 2000 })
  let idleBeat = false
  server.get('/busy', (request, reply) => reply.sse(async function * () {
    // Events 10 ms apart, for as long as it takes the idle stream to get a heartbeat: the busy one
    // has outlived a heartbeat period however slow the machine, and never went 2 s without a write.
    let i = 0
    while (!idleBeat || i < 40) {
      yield String(i++)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }))
  server.get('/idle', (request, reply) => reply.sse(async function * ({ signal }) {
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
  }))
  const url = await listen(server)
  t.teardown(() => server.close())
  const idle = await openStream(url + '/idle')
  const busy = await openStream(url + '/busy')
  await idle.waitForComment()
  idleBeat = true
  await busy.ended
  t.ok(busy.events.length >= 40)
  t.same(busy.comments, [], 'activity kept the heartbeat away')
  t.ok(idle.comments.length >= 1, `meanwhile the idle stream on the same clock got ${idle.comments.length} heartbeats`)
  idle.destroy()
})

t.test('heartbeatMs 0 sends no heartbeat', async (t) => {
  const server = await app({ heartbeatMs: 0 })
  const gate = deferred()
  server.get('/s', (request, reply) => reply.sse(async function * () {
    yield 'first'
    await gate.promise
    yield 'second'
  }))
  const url = await listen(server)
  t.teardown(() => server.close())
  const s = await openStream(url + '/s')
  await s.waitForEvents(1)
  // Another stream with a short heartbeat proves time passed long enough for one to be due.
  const other = await app({ heartbeatMs: 20 })
  other.get('/o', (request, reply) => reply.sse(async function * ({ signal }) {
    await new Promise((resolve) => signal.addEventListener('abort', resolve))
  }))
  const otherUrl = await listen(other)
  const o = await openStream(otherUrl + '/o')
  await o.waitForComment()
  await o.waitForComment()
  o.destroy()
  await other.close()
  gate.resolve()
  await s.ended
  t.same(s.comments, [])
  t.equal(s.text(), 'data: first\n\ndata: second\n\n')
})

t.test('request.lastEventId comes from the header, else the query parameter', async (t) => {
  const server = await app()
  server.get('/s', (request, reply) => reply.sse(({ lastEventId }) => [String(lastEventId)]))
  const url = await listen(server)
  t.teardown(() => server.close())
  const cases: Array<[string, Record<string, string>, string]> = [
    ['/s', {}, 'undefined'],
    ['/s', { 'last-event-id': 'g1:41' }, 'g1:41'],
    ['/s?lastEventId=q%3A9', {}, 'q:9'],
    ['/s?lastEventId=query', { 'last-event-id': 'header' }, 'header']
  ]
  for (const [path, headers, expected] of cases) {
    const s = await openStream(url + path, headers)
    await s.ended
    t.equal(s.events[0]?.data, expected, `${path} ${JSON.stringify(headers)}`)
  }
})

t.test('a malformed Last-Event-ID is a 400 with a JSON body, before the source runs', async (t) => {
  const server = await app({ maxLastEventIdLength: 16 })
  let ran = 0
  server.get('/s', (request, reply) => reply.sse(() => { ran++; return ['x'] }))
  const url = await listen(server)
  t.teardown(() => server.close())
  for (const path of ['/s?lastEventId=' + 'a'.repeat(17), '/s?lastEventId=a%0Ab', '/s?lastEventId=%C3%A9']) {
    const res = await fetch(url + path)
    t.equal(res.status, 400, path)
    const body = await res.json()
    t.equal(body.code, 'SSE_ERR_INVALID_LAST_EVENT_ID')
    t.match(body.message, /Last-Event-ID/)
  }
  t.equal(ran, 0)
})

t.test('a source that throws before its first message gives an ordinary HTTP error', async (t) => {
  const server = await app()
  server.get('/status', (request, reply) => reply.sse(async function * () {
    throw Object.assign(new Error('no such topic'), { statusCode: 404 })
  }))
  server.get('/plain', (request, reply) => reply.sse(() => { throw new Error('boom') }))
  server.get('/bad-source', (request, reply) => reply.sse(42 as any))
  const url = await listen(server)
  t.teardown(() => server.close())
  const a = await fetch(url + '/status')
  t.equal(a.status, 404)
  t.match(a.headers.get('content-type'), /application\/json/)
  t.match(await a.json(), { message: 'no such topic' })
  const b = await fetch(url + '/plain')
  t.equal(b.status, 500)
  const c = await fetch(url + '/bad-source')
  t.equal(c.status, 500)
  t.match(await c.json(), { code: 'SSE_ERR_INVALID_SOURCE' })
})

t.test('a source that throws after two messages: both arrive, then an error event, then the end', async (t) => {
  const server = await app()
  const logged: unknown[] = []
  server.get('/s', (request, reply) => reply.sse(async function * () {
    yield 'one'
    await new Promise((resolve) => setImmediate(resolve))
    yield 'two'
    throw new Error('database password is hunter2')
  }))
  server.get('/coded', (request, reply) => reply.sse(async function * () {
    yield 'one'
    throw Object.assign(new Error('quota exceeded'), { statusCode: 429, code: 'QUOTA' })
  }))
  server.get('/same-tick', (request, reply) => reply.sse(async function * () {
    yield 'one'
    yield 'two'
    throw new Error('x')
  }))
  server.addHook('onError', async (request, reply, err) => { logged.push(err) })
  const url = await listen(server)
  t.teardown(() => server.close())

  const s = await openStream(url + '/s')
  await s.ended
  t.same(s.events.map((e) => [e.event, e.data]), [
    [undefined, 'one'],
    [undefined, 'two'],
    ['error', JSON.stringify({ code: 'SSE_ERR_INTERNAL', message: 'Internal Server Error', statusCode: 500 })]
  ])
  t.notMatch(s.text(), /hunter2/, 'no internal message leaks to the client')

  const c = await openStream(url + '/coded')
  await c.ended
  t.same(JSON.parse(c.events[1].data), { code: 'QUOTA', message: 'quota exceeded', statusCode: 429 }, '4xx messages are for the client')

  const same = await openStream(url + '/same-tick')
  await same.ended
  t.equal(same.res.statusCode, 200, 'messages yielded in the same tick as the error still go out')
  t.same(same.events.map((e) => e.event ?? e.data), ['one', 'two', 'error'])
})

t.test('an invalid field mid-stream ends the stream with a coded error event', async (t) => {
  const server = await app()
  const finalized = deferred()
  server.get('/s', (request, reply) => reply.sse(async function * () {
    try {
      yield 'ok'
      yield { event: 'evil\ndata: forged', data: 'x' }
      yield 'never'
    } finally {
      finalized.resolve()
    }
  }))
  const url = await listen(server)
  t.teardown(() => server.close())
  const s = await openStream(url + '/s')
  await s.ended
  await finalized.promise
  t.equal(s.events.length, 2)
  t.equal(s.events[1].event, 'error')
  t.match(JSON.parse(s.events[1].data), { code: 'SSE_ERR_INVALID_FIELD' })
  t.notMatch(s.text(), /forged/)
})

t.test('an empty source gives an empty 200 stream; a sync iterable works too', async (t) => {
  const server = await app()
  server.get('/empty', (request, reply) => reply.sse([]))
  server.get('/sync', (request, reply) => reply.sse(new Set(['a', 'b'])))
  const url = await listen(server)
  t.teardown(() => server.close())
  const e = await openStream(url + '/empty')
  await e.ended
  t.equal(e.res.statusCode, 200)
  t.equal(e.text(), '')
  const s = await openStream(url + '/sync')
  await s.ended
  t.equal(s.text(), 'data: a\n\ndata: b\n\n')
})

t.test('invalid options fail registration and calls with a coded error', async (t) => {
  for (const opts of [{ heartbeatMs: -1 }, { heartbeatMs: 1.5 }, { retryMs: -5 }, { highWaterMark: 0 }, { serialize: 'no' }, { maxLastEventIdLength: 0 }]) {
    const server = Fastify()
    await t.rejects(async () => { await server.register(sse, opts as any) }, { code: 'SSE_ERR_INVALID_OPTION' }, JSON.stringify(opts))
  }
  const server = await app()
  server.get('/s', (request, reply) => reply.sse(['x'], { heartbeatMs: -1 }))
  const res = await server.inject('/s')
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'SSE_ERR_INVALID_OPTION')
})

t.test('reply.sse() on a reply already sent rejects with a coded error', async (t) => {
  const server = await app()
  const seen = deferred<unknown>()
  server.get('/s', async (request, reply) => {
    await reply.send('done')
    await reply.sse(['x']).catch(seen.resolve)
  })
  const res = await server.inject('/s')
  t.equal(res.body, 'done')
  t.match(await seen.promise, { code: 'SSE_ERR_REPLY_SENT' })
})

t.test('maxStreams turns the stream over the cap away with 503 and retry-after, and frees the slot on close', async (t) => {
  const server = await app({ maxStreams: 2 })
  server.get('/s', (request, reply) => reply.sse(async function * ({ signal }) {
    yield 'open'
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
  }))
  const url = await listen(server)
  t.teardown(() => server.close())
  const a = await openStream(url + '/s')
  const b = await openStream(url + '/s')
  await Promise.all([a.waitForEvents(1), b.waitForEvents(1)])
  t.equal(server.sseOpenStreams, 2, 'app.sseOpenStreams counts the open streams')
  const over = await fetch(url + '/s')
  t.equal(over.status, 503)
  t.equal(over.headers.get('retry-after'), '5')
  t.match(await over.json(), { code: 'SSE_ERR_TOO_MANY_STREAMS' })
  a.destroy()
  await a.ended
  // The slot is freed when the server sees the close; retry until it has (bounded).
  let status = 503
  for (const deadline = Date.now() + PATIENCE_MS; status === 503 && Date.now() < deadline;) {
    const s = await openStream(url + '/s')
    status = s.res.statusCode ?? 0
    if (status === 200) await s.waitForEvents(1)
    s.destroy()
    if (status === 503) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal(status, 200)
  b.destroy()
})
