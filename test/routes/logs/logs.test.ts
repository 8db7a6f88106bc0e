import t, { type Test } from 'tap'
import Fastify from 'fastify'
import sse from '../../../lib/index.js'
import { createHub, type HubOptions } from '../../../lib/hub/hub.js'
import { createLogStream, logRedaction } from '../../../routes/logs/log-stream.js'
import { redactSecrets as scrubSecrets } from '../../../routes/logs/redact.js'
import logs from '../../../routes/logs/index.js'
import { listen, openStream, type OpenStream } from '../../helpers/http.js'

/** An app that logs into a hub (and nowhere else) and serves it on /logs, plus routes that log. */
async function serve (t: Test, opts: { token?: string, hub?: HubOptions } = {}): Promise<string> {
  const hub = createHub(opts.hub)
  const lines: string[] = []
  const app = Fastify({
    logger: { level: 'info', stream: createLogStream({ hub, destination: { write: (l: string) => lines.push(l) } }), ...logRedaction() }
  })
  await app.register(sse, { heartbeatMs: 0 })
  await app.register(logs, { hub, token: opts.token })
  app.get('/hello', async (request) => {
    // Careless code that logs every header: the redaction must still hold.
    request.log.info({ headers: request.headers }, 'hello headers')
    return { hello: 'world' }
  })
  app.get<{ Querystring: { n?: number, pad?: number } }>('/chatty', async (request) => {
    const pad = 'p'.repeat(Number(request.query.pad ?? 0))
    for (let i = 0; i < Number(request.query.n ?? 1); i++) request.log.info({ i, pad }, 'chatter')
    request.log.warn('a warning')
    return 'ok'
  })
  const url = await listen(app)
  t.teardown(async () => { await app.close(); await hub.close() })
  return url
}

async function until (s: OpenStream, ok: (data: string) => boolean): Promise<void> {
  for (let n = 1; !s.events.some((e) => ok(e.data)); n++) await s.waitForEvents(Math.max(n, s.events.length + 1))
}

t.test('a request to the server shows up on an open /logs stream, with its secrets redacted', async (t) => {
  const url = await serve(t)
  const s = await openStream(url + '/logs')
  t.teardown(s.destroy)
  const res = await fetch(url + '/hello?api_key=sk-query-secret&x=1', {
    headers: { authorization: 'Bearer tok-header-secret', cookie: 'session=cookie-secret', 'x-api-key': 'sk-x-secret' }
  })
  t.equal(res.status, 200)
  await until(s, (d) => d.includes('request completed') && d.includes('"statusCode":200'))
  const records = s.events.filter((e) => e.event === 'log').map((e) => JSON.parse(e.data))
  const incoming = records.find((r) => r.msg === 'incoming request' && r.req.url.startsWith('/hello'))
  t.equal(incoming.req.url, '/hello?api_key=[redacted]&x=1')
  t.equal(incoming.level, 30)
  const headers = records.find((r) => r.msg === 'hello headers').headers
  t.equal(headers.authorization, '[redacted]')
  t.equal(headers.cookie, '[redacted]')
  t.equal(headers['x-api-key'], '[redacted]')
  t.match(s.events[0].id, /^[0-9a-z]+:\d+$/)
  for (const secret of ['sk-query-secret', 'tok-header-secret', 'cookie-secret', 'sk-x-secret']) {
    t.notOk(s.text().includes(secret), `${secret} never appears`)
  }
})

t.test('the scrub catches credentials no redact path foresaw', async (t) => {
  const line = JSON.stringify({ msg: 'calling upstream with Bearer sk-abc123 at http://x/v1?key=AIza&q=1', nested: { deep: { Authorization: 'Basic dXNlcjpwYXNz' } } })
  const clean = scrubSecrets(line)
  t.notMatch(clean, /sk-abc123|AIza|dXNlcjpwYXNz/)
  t.match(clean, /Bearer \[redacted\]/)
  t.same(JSON.parse(clean).nested.deep, { Authorization: '[redacted]' })
})

t.test('filters by minimum level', async (t) => {
  const url = await serve(t)
  const s = await openStream(url + '/logs?level=warn')
  t.teardown(s.destroy)
  await fetch(url + '/chatty?n=3')
  await until(s, (d) => d.includes('a warning'))
  const levels = s.events.map((e) => JSON.parse(e.data).level)
  t.ok(levels.length > 0 && levels.every((l) => l >= 40), `only warn and above: ${levels.join(',')}`)
  const bad = await fetch(url + '/logs?level=loud')
  t.equal(bad.status, 400)
})

t.test('with LOGS_TOKEN, a missing or wrong token is 401, the right one (header or ?token=) streams, and it is never logged', async (t) => {
  const token = 'logs-token-0123456789'
  const url = await serve(t, { token })
  const missing = await fetch(url + '/logs')
  t.equal(missing.status, 401)
  t.equal(missing.headers.get('www-authenticate'), 'Bearer realm="logs"')
  t.match(await missing.json(), { code: 'SSE_ERR_UNAUTHORIZED' })
  const wrong = await fetch(url + '/logs', { headers: { authorization: 'Bearer nope' } })
  t.equal(wrong.status, 401)
  const byHeader = await openStream(url + '/logs', { authorization: `Bearer ${token}` })
  t.teardown(byHeader.destroy)
  t.equal(byHeader.res.statusCode, 200)
  // The query form is logged as this request's URL, and must come out redacted.
  const byQuery = await openStream(url + `/logs?token=${token}`)
  t.teardown(byQuery.destroy)
  t.equal(byQuery.res.statusCode, 200)
  await until(byHeader, (d) => d.includes('/logs?token=[redacted]'))
  t.notOk(byHeader.text().includes(token), 'the token never appears in the logs')
})

t.test('a reconnect with Last-Event-ID replays the records it missed', async (t) => {
  const url = await serve(t)
  const first = await openStream(url + '/logs')
  await fetch(url + '/chatty?n=1')
  await until(first, (d) => d.includes('a warning'))
  const last = first.events.at(-1)?.id as string
  first.destroy()
  await fetch(url + '/chatty?n=5')
  const again = await openStream(url + '/logs', { 'last-event-id': last })
  t.teardown(again.destroy)
  await until(again, (d) => d.includes('"i":4'))
  const chatter = again.events.map((e) => JSON.parse(e.data)).filter((r) => r.msg === 'chatter').map((r) => r.i)
  t.same(chatter, [0, 1, 2, 3, 4])
  const seqs = again.events.map((e) => Number(e.id?.split(':')[1]))
  t.same(seqs, [...new Set(seqs)].sort((a, b) => a - b), 'in order, no duplicate')
})

t.test('a reader that falls behind gets a gap event with the count of records dropped for it, and stays connected', async (t) => {
  const url = await serve(t, { hub: { maxQueue: 50, maxQueueBytes: 64 * 1024 } })
  const s = await openStream(url + '/logs')
  t.teardown(s.destroy)
  await fetch(url + '/chatty?n=1')
  await until(s, (d) => d.includes('a warning'))
  s.res.pause()
  // About 12 MB of records: far more than the socket buffers and the reader's queue can hold.
  for (let i = 0; i < 6; i++) await fetch(url + '/chatty?n=200&pad=10000')
  s.res.resume()
  await until(s, (d) => d.includes('"count":'))
  await fetch(url + '/hello')
  await until(s, (d) => d.includes('hello headers'))
  const gaps = s.events.filter((e) => e.event === 'gap').map((e) => JSON.parse(e.data).count)
  t.ok(gaps.length > 0 && gaps.every((n) => n > 0), `gaps: ${gaps.join(',')}`)
  const chatter = s.events.filter((e) => e.event === 'log').map((e) => JSON.parse(e.data)).filter((r) => r.msg === 'chatter' && r.pad !== '')
  t.ok(chatter.length + gaps.reduce((a, b) => a + b, 0) >= 1200, 'every record was either delivered or counted in a gap')
})
