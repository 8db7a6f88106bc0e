// /logs is private unless the operator makes it public, and what it carries is redacted.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { createHub } from '../../../lib/hub/hub.js'
import logs, { createLogStream, logRedaction, type UrlRedaction } from '../../../routes/logs/index.js'
import { loadConfig } from '../../../service/config.js'
import { startService } from '../../fixtures/service.js'
import { listen, openStream, type OpenStream } from '../../helpers/http.js'

const TOKEN = 'a-long-enough-logs-token-42'

/** An app logging into a hub (and nowhere else), serving /logs, plus a route that logs requests. */
async function serve (t: Test, opts: { token?: string, redaction?: UrlRedaction, guesses?: { max: number, windowMs: number } } = {}): Promise<string> {
  const hub = createHub()
  const app = Fastify({ logger: { level: 'info', stream: createLogStream({ hub, destination: null }), ...logRedaction(opts.redaction) } })
  await app.register(logs, { hub, token: opts.token, guesses: opts.guesses })
  app.get('/events', async () => 'ok')
  app.delete('/events/:generation', async () => 'ok')
  const url = await listen(app)
  t.teardown(async () => { await app.close(); await hub.close() })
  return url
}

async function until (s: OpenStream, ok: (data: string) => boolean): Promise<void> {
  while (!s.events.some((e) => ok(e.data))) await s.waitForEvents(s.events.length + 1)
}

const GENERATION = 'AbCdEfGhIjKlMnOpQrStUv'

t.test('prompts and generation ids are redacted from request records by default', async (t) => {
  const url = await serve(t)
  const s = await openStream(url + '/logs')
  t.teardown(s.destroy)
  await fetch(`${url}/events?prompt=my+medical+question&system=be+kind&lastEventId=${GENERATION}:3&max_tokens=5`)
  await fetch(`${url}/events/${GENERATION}`, { method: 'DELETE' })
  await until(s, (d) => d.includes('"method":"DELETE"'))
  const urls = s.events.map((e) => JSON.parse(e.data)).filter((r) => r.msg === 'incoming request').map((r) => r.req.url)
  t.ok(urls.includes('/events?prompt=[redacted]&system=[redacted]&lastEventId=[redacted]&max_tokens=5'), urls.join(' '))
  t.ok(urls.includes('/events/[redacted]'))
  t.notOk(s.text().includes('medical'))
  t.notOk(s.text().includes(GENERATION))
})

t.test('with includePrompts (LOGS_INCLUDE_PROMPTS=1) prompts and generation ids are kept', async (t) => {
  t.equal(loadConfig({ LOGS_INCLUDE_PROMPTS: '1' }).logsIncludePrompts, true)
  t.equal(loadConfig({}).logsIncludePrompts, false)
  const url = await serve(t, { redaction: { includePrompts: true } })
  const s = await openStream(url + '/logs')
  t.teardown(s.destroy)
  await fetch(`${url}/events?prompt=hello&token=still-secret`)
  await until(s, (d) => d.includes('prompt=hello'))
  t.match(s.text(), /prompt=hello&token=\[redacted\]/, 'credentials stay redacted')
})

t.test('a percent-encoded parameter name is redacted like the plain one', async (t) => {
  const url = await serve(t, { token: TOKEN })
  const s = await openStream(url + '/logs', { authorization: `Bearer ${TOKEN}` })
  t.teardown(s.destroy)
  const sneaky = await openStream(`${url}/logs?%74oken=${TOKEN}`)
  t.teardown(sneaky.destroy)
  t.equal(sneaky.res.statusCode, 200, 'the server reads it as token=')
  await until(s, (d) => d.includes('%74oken='))
  t.notOk(s.text().includes(TOKEN))
  t.match(s.text(), /%74oken=\[redacted\]/)
})

t.test('?token=a&token=b is a 400, not a 500', async (t) => {
  const url = await serve(t, { token: TOKEN })
  const res = await fetch(`${url}/logs?token=a&token=b`)
  t.equal(res.status, 400)
  t.equal((await res.json()).code, 'SSE_ERR_INVALID_TOKEN')
})

t.test('token guesses are rate limited per client: past the limit even the right token waits', async (t) => {
  const url = await serve(t, { token: TOKEN, guesses: { max: 3, windowMs: 60_000 } })
  for (let i = 0; i < 3; i++) t.equal((await fetch(`${url}/logs?token=guess-${i}`)).status, 401)
  const blocked = await fetch(`${url}/logs?token=${TOKEN}`)
  t.equal(blocked.status, 429)
  t.ok(Number(blocked.headers.get('retry-after')) > 0)
  t.equal((await blocked.json()).code, 'SSE_ERR_TOO_MANY_ATTEMPTS')
})

t.test('a LOGS_TOKEN shorter than 16 characters stops the start naming it', async (t) => {
  t.throws(() => loadConfig({ LOGS_TOKEN: 'short' }), { code: 'SSE_ERR_INVALID_CONFIG', message: /LOGS_TOKEN.*at least 16/ })
  t.equal(loadConfig({ LOGS_TOKEN: TOKEN }).logsToken, TOKEN)
})

t.test('on a non-loopback HOST without LOGS_TOKEN, /logs is not served unless LOGS_PUBLIC=1', async (t) => {
  const closed = await startService(t, { HOST: '0.0.0.0' })
  t.equal((await fetch(`${closed.url}/logs`)).status, 404)
  const open = await startService(t, { HOST: '0.0.0.0', LOGS_PUBLIC: '1' })
  const s = await openStream(`${open.url}/logs`)
  t.teardown(s.destroy)
  t.equal(s.res.statusCode, 200)
  const guarded = await startService(t, { HOST: '0.0.0.0', LOGS_TOKEN: TOKEN })
  t.equal((await fetch(`${guarded.url}/logs`)).status, 401)
  const local = await startService(t, { HOST: '127.0.0.1' })
  const l = await openStream(`${local.url}/logs`)
  t.teardown(l.destroy)
  t.equal(l.res.statusCode, 200, 'on loopback it stays open, as before')
})
