import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { setImmediate as tick } from 'node:timers/promises'
import sse from '../../lib/index.js'
import {
  streamEvents,
  SseConnectionError,
  SseHttpError,
  SseProtocolError,
  type ReconnectInfo,
  type SseEvent
} from '../../lib/client/client.js'
import { deferred, listen } from '../helpers/http.js'

// undici keeps a spare socket after an aborted fetch; without this, close() waits for it.
async function server (t: Test): Promise<FastifyInstance> {
  const app = Fastify({ forceCloseConnections: true })
  await app.register(sse, { heartbeatMs: 0 })
  t.teardown(() => app.close())
  return app
}

async function collect<T> (iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}

// Tokens that break naive clients: newlines and blank lines, leading spaces, a colon, text that
// looks like a field, characters outside the BMP, an empty token. (A CR cannot round-trip as raw
// text: the parser reads it as a line break, §9.2.6.)
const TOKENS = ['Hel', 'lo', ' wörld', '\n', 'a:b', '  two spaces', '🚀 ', 'line1\nline2', '', 'data: not a field', '\n\n', '末尾']

/** A resumable stream of TOKENS with ids 1..n; `drops` says after which id to kill the socket. */
function tokenRoute (app: FastifyInstance, drops: number[], seen: Array<string | undefined>): void {
  app.get('/tokens', (request, reply) => {
    seen.push(request.lastEventId)
    const from = request.lastEventId === undefined ? 0 : Number(request.lastEventId)
    if (from >= TOKENS.length) return reply.code(204).send()
    return reply.sse(async function * () {
      for (let i = from; i < TOKENS.length; i++) {
        yield { id: String(i + 1), data: TOKENS[i] }
        if (drops.includes(i + 1)) {
          // Let the frames out, then send half a frame (half a UTF-8 character too) and cut the
          // connection mid-body. `end()` on the socket, not `destroy()`: destroy would discard
          // writes still queued, and the cut must come after them.
          await tick()
          reply.raw.write(Buffer.concat([Buffer.from('id: 99\ndata: lost '), Buffer.from('🚀').subarray(0, 2)]))
          reply.raw.socket?.end()
          await new Promise(() => {})
        }
      }
    })
  })
}

t.test('yields typed events as the server sent them: JSON decoded per event name, id and retry', async (t) => {
  const app = await server(t)
  app.get('/typed', (request, reply) => reply.sse<unknown>([
    { id: 'a', retry: 250, data: 'first' },
    'no id of its own',
    { event: 'done', data: { finish_reason: 'stop', n: 2 } }
  ]))
  const base = await listen(app)
  type Done = { finish_reason: string, n: number }
  const events = await collect(streamEvents<{ message: string, done: Done }>(base + '/typed', { json: ['done'], reconnect: false }))
  t.same(events, [
    { event: 'message', data: 'first', id: 'a', retry: 250 },
    { event: 'message', data: 'no id of its own', id: undefined, retry: undefined },
    { event: 'done', data: { finish_reason: 'stop', n: 2 }, id: undefined, retry: undefined }
  ])
  const last = events[2]
  // Compile-time check as much as a runtime one: `ev.event === 'done'` narrows `ev.data`.
  if (last.event === 'done') t.equal(last.data.n + 1, 3)
})

t.test('POSTs a JSON body and sends custom headers on every request', async (t) => {
  const app = await server(t)
  const requests: Array<{ method: string, headers: Record<string, unknown>, body: unknown }> = []
  app.post('/echo', (request, reply) => {
    requests.push({ method: request.method, headers: request.headers, body: request.body })
    if (requests.length > 1) return reply.code(204).send()
    return reply.sse([{ id: '1', data: request.body as object }])
  })
  const base = await listen(app)
  const body = { messages: [{ role: 'user', content: 'héllo' }], n: 1 }
  const events = await collect(streamEvents(base + '/echo', {
    body, headers: { 'x-api-key': 'k1', authorization: 'Bearer t' }, json: true, retryMs: 1
  }))
  t.same(events.map((e) => e.data), [body])
  t.equal(requests.length, 2, 'reconnected once, then stopped on 204')
  for (const r of requests) {
    t.equal(r.method, 'POST')
    t.same(r.body, body, 'the body is sent again on reconnection')
    t.match(r.headers, { 'x-api-key': 'k1', authorization: 'Bearer t', 'content-type': 'application/json', accept: 'text/event-stream' })
  }
  t.equal(requests[1].headers['last-event-id'], '1')
})

t.test('reconnects with Last-Event-ID after drops mid-stream; the output equals the uninterrupted one byte for byte', async (t) => {
  const app = await server(t)
  const seen: Array<string | undefined> = []
  tokenRoute(app, [3, 4, 9], seen)
  const base = await listen(app)
  const reconnects: ReconnectInfo[] = []
  const events = await collect(streamEvents(base + '/tokens', { retryMs: 1, onReconnect: (info) => reconnects.push(info) }))
  const text = events.map((e) => e.data).join('')
  const expected = TOKENS.join('')
  t.equal(Buffer.compare(Buffer.from(text), Buffer.from(expected)), 0, 'same bytes')
  t.equal(text, expected)
  t.same(events.map((e) => e.id), TOKENS.map((_, i) => String(i + 1)), 'no event twice, none lost')
  t.same(seen, [undefined, '3', '4', '9', String(TOKENS.length)], 'each reconnection resumed after the last id received')
  t.same(reconnects.map((r) => r.lastEventId), ['3', '4', '9', String(TOKENS.length)])
  t.ok(reconnects[0].error instanceof Error, 'a drop is reported with its network error')
  t.equal(reconnects[3].error, undefined, 'a clean end is not an error')
})

t.test("waits at least the server's retry before reconnecting", async (t) => {
  const app = await server(t)
  const RETRY = 300
  let ended = 0
  let reconnectedAt = 0
  app.get('/retry', (request, reply) => {
    if (request.lastEventId !== undefined) {
      reconnectedAt = performance.now()
      return reply.code(204).send()
    }
    reply.raw.once('finish', () => { ended = performance.now() })
    return reply.sse([{ id: '1', retry: RETRY, data: 'once' }])
  })
  const base = await listen(app)
  // A 1 ms backoff of our own, so only the server's retry can explain a long wait.
  const events = await collect(streamEvents(base + '/retry', { retryMs: 1 }))
  t.same(events.map((e) => e.retry), [RETRY])
  t.ok(ended > 0 && reconnectedAt > 0)
  t.ok(reconnectedAt - ended >= RETRY, `waited ${Math.round(reconnectedAt - ended)} ms, at least ${RETRY}`)
})

t.test('stops on 204 without reconnecting', async (t) => {
  const app = await server(t)
  let requests = 0
  app.get('/gone', (request, reply) => { requests++; return reply.code(204).send() })
  const base = await listen(app)
  t.same(await collect(streamEvents(base + '/gone', { retryMs: 1 })), [])
  t.equal(requests, 1)
})

t.test("throws SseHttpError with the status and the server's JSON body on 400", async (t) => {
  const app = await server(t)
  app.get('/events', (request, reply) => reply.sse(['never sent']))
  const base = await listen(app)
  // The plugin refuses an oversized Last-Event-ID with 400 before the source runs.
  const err = await collect(streamEvents(base + '/events', { lastEventId: 'x'.repeat(300) })).catch((e: unknown) => e)
  t.ok(err instanceof SseHttpError)
  const http = err as SseHttpError
  t.equal(http.status, 400)
  t.match(http.body, { statusCode: 400, code: 'SSE_ERR_INVALID_LAST_EVENT_ID' })
  t.match(http.message, /^HTTP 400 Bad Request from http:\/\/127\.0\.0\.1:\d+\/events: Invalid Last-Event-ID/)
  t.equal(http.headers.get('content-type'), 'application/json; charset=utf-8')
})

t.test('throws SseProtocolError when the response is not an event stream', async (t) => {
  const app = await server(t)
  app.get('/json', async () => ({ not: 'a stream' }))
  const base = await listen(app)
  await t.rejects(collect(streamEvents(base + '/json')), SseProtocolError)
  await t.rejects(collect(streamEvents(base + '/json')), { message: /Expected text\/event-stream .* got application\/json/ })
})

t.test('throws SseProtocolError for data that is not JSON when json is asked for', async (t) => {
  const app = await server(t)
  app.get('/bad', (request, reply) => reply.sse(['{"ok":1}', 'not json']))
  const base = await listen(app)
  const seen: unknown[] = []
  const err = await (async () => { for await (const ev of streamEvents(base + '/bad', { json: true })) seen.push(ev.data) })().catch((e: unknown) => e)
  t.same(seen, [{ ok: 1 }])
  t.ok(err instanceof SseProtocolError)
})

for (const how of ['aborting the signal', 'breaking out of the loop']) {
  t.test(`${how} closes the server-side stream at once`, async (t) => {
    const app = await server(t)
    const closed = deferred()
    app.get('/forever', (request, reply) => reply.sse(async function * ({ signal }) {
      try {
        for (let i = 0; !signal.aborted; i++) {
          yield { id: String(i), data: String(i) }
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
      } finally {
        closed.resolve()
      }
    }))
    const base = await listen(app)
    const ac = new AbortController()
    const got: string[] = []
    const loop = (async () => {
      for await (const ev of streamEvents(base + '/forever', { signal: ac.signal })) {
        got.push(ev.data)
        if (got.length === 3) {
          if (how === 'breaking out of the loop') break
          ac.abort()
        }
      }
    })()
    if (how === 'aborting the signal') await t.rejects(loop, { name: 'AbortError' })
    else await loop
    await closed.promise
    t.same(got, ['0', '1', '2'])
  })
}

t.test('an unreachable server throws SseConnectionError naming the URL, without retrying', async (t) => {
  const app = await server(t)
  const base = await listen(app)
  await app.close()
  const err = await collect(streamEvents(base + '/nowhere', { retryMs: 1 })).catch((e: unknown) => e)
  t.ok(err instanceof SseConnectionError)
  t.ok((err as Error).message.startsWith(`Cannot reach ${base}/nowhere: `))
  t.match((err as Error).message, /ECONNREFUSED/)
})

t.test('gives up after maxRetries reconnections that bring no event', async (t) => {
  const app = await server(t)
  let requests = 0
  app.get('/flaky', (request, reply) => {
    requests++
    if (requests === 1) return reply.sse([{ id: '1', data: 'only' }])
    request.raw.socket.destroy()
    return reply
  })
  const base = await listen(app)
  const got: Array<SseEvent<string, string>> = []
  const attempts: number[] = []
  const err = await (async () => {
    for await (const ev of streamEvents(base + '/flaky', { retryMs: 1, maxRetries: 3, onReconnect: (i) => attempts.push(i.attempt) })) got.push(ev)
  })().catch((e: unknown) => e)
  t.equal(got.length, 1)
  t.same(attempts, [1, 2, 3])
  t.equal(requests, 4)
  t.ok(err instanceof SseConnectionError)
  t.equal((err as SseConnectionError).attempts, 3)
  t.match((err as Error).message, 'after 3 reconnection attempts')
})

t.test('with reconnect: false a finished stream simply ends', async (t) => {
  const app = await server(t)
  let requests = 0
  app.get('/once', (request, reply) => { requests++; return reply.sse(['a', 'b']) })
  const base = await listen(app)
  t.same((await collect(streamEvents(base + '/once', { reconnect: false }))).map((e) => e.data), ['a', 'b'])
  t.equal(requests, 1)
})
