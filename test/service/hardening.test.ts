// The HTTP server itself: early 413s, no redirect loop in Swagger UI, slow request heads cut.
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { startService } from '../fixtures/service.js'
import { openStream } from '../helpers/http.js'

t.test('a body over the limit sent with Expect: 100-continue gets a 413, and the body is never sent', async (t) => {
  const { url } = await startService(t)
  const size = 2 * 1024 * 1024
  const req = http.request(`${url}/events`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': size, expect: '100-continue' }
  })
  let continued = false
  req.on('continue', () => { continued = true; req.end(Buffer.alloc(size, 0x20)) })
  req.flushHeaders()
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  let body = ''
  for await (const chunk of res) body += chunk
  t.equal(res.statusCode, 413)
  t.equal(JSON.parse(body).code, 'FST_ERR_CTP_BODY_TOO_LARGE')
  t.equal(continued, false, 'the server did not ask for the body')
})

t.test('a body within the limit sent with Expect: 100-continue is still served', async (t) => {
  const { url } = await startService(t)
  const payload = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] })
  const req = http.request(`${url}/events`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), expect: '100-continue' }
  })
  req.on('continue', () => req.end(payload))
  req.flushHeaders()
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  let body = ''
  for await (const chunk of res) body += chunk
  t.equal(res.statusCode, 200)
  t.match(body, /event: done/)
})

t.test('/docs/static/index.html with a query string does not redirect to itself', async (t) => {
  const { url } = await startService(t)
  const res = await fetch(`${url}/docs/static/index.html?x`, { redirect: 'manual' })
  t.equal(res.status, 302)
  const location = new URL(res.headers.get('location') ?? '', `${url}/docs/static/index.html?x`)
  t.equal(location.pathname, '/docs/')
  const page = await fetch(location)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /text\/html/)
})

t.test('a connection that never finishes its request head is cut after HEADERS_TIMEOUT_MS', async (t) => {
  const { url } = await startService(t, { HEADERS_TIMEOUT_MS: '500', REQUEST_TIMEOUT_MS: '1000' })
  const { port } = new URL(url)
  const socket = net.connect(Number(port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  socket.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ')
  let reply = ''
  socket.on('data', (c: Buffer) => { reply += c.toString() })
  // Waits for the server to act; the default of 60 s would outlast the test's own timeout.
  await once(socket, 'close')
  t.match(reply, /^HTTP\/1\.1 408/, 'the server answered 408 and closed')
})

t.test('an event stream outlives REQUEST_TIMEOUT_MS: it limits receiving the request, not the response', async (t) => {
  const { url } = await startService(t, { HEADERS_TIMEOUT_MS: '200', REQUEST_TIMEOUT_MS: '300', TICKER_INTERVAL_MS: '100' })
  const s = await openStream(`${url}/ticker`)
  t.teardown(s.destroy)
  const started = performance.now()
  let n = 1
  // Quotes keep coming well past the request timeout (and past the server's 1 s check interval).
  while (performance.now() - started < 2500) await s.waitForEvents(++n)
  t.ok(s.events.length > 3)
})

t.test('HEADERS_TIMEOUT_MS above REQUEST_TIMEOUT_MS stops the start naming it', async (t) => {
  const { loadConfig } = await import('../../service/config.js')
  t.throws(() => loadConfig({ HEADERS_TIMEOUT_MS: '5000', REQUEST_TIMEOUT_MS: '1000' }), { code: 'SSE_ERR_INVALID_CONFIG', message: /HEADERS_TIMEOUT_MS/ })
})
