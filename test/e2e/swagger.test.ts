// Swagger UI in Chromium: an SSE operation's 200 response shows its events, not "string", and
// "Try it out" shows the events of a stream as they arrive (static/swagger/sse-try-it-out.js).
import t from 'tap'
import type { Page } from 'playwright-core'
import { chromiumMissing, openPage } from '../helpers/browser.js'
import { eventually } from '../helpers/eventually.js'
import { startService } from '../fixtures/service.js'
import { serve } from './demo-app.js'

const skip = chromiumMissing()
t.setTimeout(300_000)

t.test('Swagger UI shows the events of GET /events in its 200 response', { skip }, async (t) => {
  const { url } = await startService(t)
  const p = await openPage(t)
  await p.goto(`${url}/docs/`)
  await p.locator('.opblock-summary-path', { hasText: /^\/events$/ }).first().click()
  const responses = p.locator('.opblock.is-open .responses-wrapper')
  await responses.locator('code', { hasText: /^done$/ }).first().waitFor()
  const text = (await responses.textContent())!
  for (const name of ['message', 'done', 'error']) t.match(text, name, `the ${name} event is listed`)
  t.match(text, 'finish_reason', 'with the schema of its data')
  t.match(text, 'event: done', 'and an example of the wire text')
})

/** Opens GET `path` in Swagger UI, presses "Try it out" then Execute; returns the operation block. */
async function execute (p: Page, path: string): Promise<ReturnType<Page['locator']>> {
  await p.locator('.opblock-get .opblock-summary-path', { hasText: new RegExp(`^${path}$`) }).click()
  const block = p.locator('.opblock-get.is-open')
  await block.locator('.try-out__btn').click()
  await block.locator('.execute').click()
  return block
}

t.test('"Try it out" on GET /events shows tokens while the answer is still being generated, and Stop ends the generation', { skip }, async (t) => {
  // Slow tokens, so the answer is far from done when the first one shows.
  const served = await serve(t, { DEMO_TOKEN_DELAY_MS: '200' })
  const p = await openPage(t)
  p.setDefaultTimeout(60_000)
  await p.goto(`${served.base}/docs/`)
  const block = await execute(p, '/events')
  await block.locator('.sse-live-event[data-event="message"]').first().waitFor()
  const stream = served.requests.find((r) => r.url.startsWith('/events?'))
  t.ok(stream, 'the UI opened GET /events')
  t.equal(stream!.res.writableFinished, false, 'a token is shown while the server is still sending the answer')
  t.equal(await block.locator('.sse-live-event[data-event="done"]').count(), 0, 'before the done event')
  // (Two streams: the UI's, and the route's own request to the built-in demo model.)
  t.ok(served.app.sseOpenStreams > 0, 'the server is streaming')

  await block.locator('.sse-live-stop').click()
  await stream!.closedEarly
  await eventually(() => served.requests.some((r) => /^\/events\/[\w-]+\/stop$/.test(r.url) && r.res.writableFinished), 'the stop request is answered')
  const stop = served.requests.find((r) => /^\/events\/[\w-]+\/stop$/.test(r.url))!
  t.equal(stop.res.statusCode, 204, 'and stops the generation itself, not only the connection')
  await eventually(() => served.app.sseOpenStreams === 0, 'the server holds no stream')
  t.match(await block.locator('.sse-live-status').textContent(), /Stopped/, 'the panel says it stopped')
  await block.locator('.live-responses-table .response-col_status', { hasText: '200' }).waitFor()
  t.pass('Swagger UI shows the response received so far, not an error')
})

t.test('closing the Swagger UI page while "Try it out" streams GET /events stops the generation', { skip }, async (t) => {
  const served = await serve(t, { DEMO_TOKEN_DELAY_MS: '200' })
  const p = await openPage(t)
  p.setDefaultTimeout(60_000)
  await p.goto(`${served.base}/docs/`)
  const block = await execute(p, '/events')
  await block.locator('.sse-live-event[data-event="message"]').first().waitFor()
  await p.close({ runBeforeUnload: true })
  await eventually(() => served.requests.some((r) => /^\/events\/[\w-]+\/stop$/.test(r.url) && r.res.writableFinished), 'the stop request is answered')
  t.equal(served.requests.find((r) => /^\/events\/[\w-]+\/stop$/.test(r.url))!.res.statusCode, 204, 'leaving the page stops the generation, not only the connection')
  await eventually(() => served.app.sseOpenStreams === 0, 'the server holds no stream')
})

// The policy @fastify/swagger-ui sends with `staticCSP: true`: scripts only from the server, none inline.
const STRICT_CSP = "default-src 'self'; base-uri 'self'; font-src 'self' https: data:; frame-ancestors 'self'; " +
  "img-src 'self' data: validator.swagger.io; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' https:"

t.test('"Try it out" on GET /ticker shows quotes as they tick until Stop, under a strict CSP', { skip }, async (t) => {
  const served = await serve(t, { TICKER_INTERVAL_MS: '100' })
  const p = await openPage(t)
  p.setDefaultTimeout(60_000)
  const violations: string[] = []
  p.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text()) && /sse-try-it-out|sse-fetch/.test(m.text())) violations.push(m.text()) })
  await p.route(/\/docs\/$/, async (route) => {
    const response = await route.fetch()
    await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': STRICT_CSP } })
  })
  await p.goto(`${served.base}/docs/`)
  const block = await execute(p, '/ticker')
  const quotes = block.locator('.sse-live-event[data-event="quote"]')
  await quotes.first().waitFor()
  const seen = await quotes.count()
  await quotes.nth(seen).waitFor()
  t.pass('more quotes arrive after the first ones are shown')
  t.equal(served.app.sseOpenStreams, 1, 'over one open stream')

  await block.locator('.sse-live-stop').click()
  await eventually(() => served.app.sseOpenStreams === 0, 'the server holds no stream')
  t.match(await block.locator('.sse-live-status').textContent(), /Stopped/, 'the panel says it stopped')
  t.same(violations, [], 'and the policy blocked nothing of ours')
})
