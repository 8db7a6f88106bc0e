// The demo page's live panes in headless Chromium: the ticker (its stream reconnecting after the
// server drops it, resuming with Last-Event-ID) and the server's logs. The panes' EventSources live
// in a SharedWorker (static/shared-stream.js), so what the page received is read from what it
// shows, and what the browser sent from the server's side. Skipped without Chromium.
import t from 'tap'
import type { Page } from 'playwright-core'
import { openStream } from '../helpers/http.js'
import { chromiumMissing } from '../helpers/browser.js'
import { openDemo, serve, type SeenRequest, type Served } from './demo-app.js'

const skip = chromiumMissing()

/** The requests Chromium made for the stream at `path` (the test's own reader excluded). */
function fromBrowser (served: Served, path: string): SeenRequest[] {
  return served.requests.filter((r) => new URL(r.url, 'http://x').pathname === path &&
    /Chrome/.test(r.req.headers['user-agent'] ?? ''))
}

/** Records every event id the ticker pane shows, in order, from now on. */
async function recordTickerIds (p: Page): Promise<void> {
  await p.evaluate(() => {
    const el = document.getElementById('ticker-last-id')!
    const ids: string[] = [];
    (window as any).tickerIds = ids
    new MutationObserver((records) => {
      for (const r of records) for (const n of r.addedNodes) ids.push(n.textContent ?? '')
    }).observe(el, { childList: true })
  })
}
const tickerIds = async (p: Page): Promise<string[]> => await p.evaluate(() => (window as any).tickerIds)

t.test('the ticker pane updates, and after the server drops it the page reconnects and continues without a gap', { skip }, async (t) => {
  const served = await serve(t, { TICKER_INTERVAL_MS: '100' })
  // A subscriber that is never dropped, opened first: every quote the hub publishes, in order.
  const reference = await openStream(`${served.base}/ticker`)
  t.teardown(() => reference.destroy())

  const p = await openDemo(t, served)
  await p.waitForFunction(() => document.querySelectorAll('#quotes tr').length > 0)
  await recordTickerIds(p)
  const before = await p.textContent('#quotes')
  await p.waitForFunction((text) => document.getElementById('quotes')!.textContent !== text, before)
  t.pass('the prices in the table change as quotes arrive')
  t.equal(await p.textContent('#ticker-conn'), 'live', 'the pane says it is live')

  await p.waitForFunction(() => (window as any).tickerIds.length >= 2)
  const browserRequest = fromBrowser(served, '/ticker')
  t.equal(browserRequest.length, 1, 'one ticker connection from the page so far')
  const lastBeforeDrop = (await tickerIds(p)).at(-1)!
  browserRequest[0].req.socket.destroy()

  // The browser sees a network error, waits its retry delay and reconnects by itself.
  await p.waitForFunction(() => document.getElementById('ticker-reconnects')!.textContent === '1')
  // The worker may have received a quote or two more than the page had shown when we looked.
  const second = fromBrowser(served, '/ticker')[1]
  const resumedFrom = second?.req.headers['last-event-id'] as string
  const published = reference.events.filter((e) => e.event === 'quote').map((e) => e.id)
  t.ok(published.indexOf(resumedFrom) >= published.indexOf(lastBeforeDrop), 'the reconnect carried Last-Event-ID')
  t.ok(published.indexOf(resumedFrom) < published.length - 1, 'quotes were published while the page was disconnected')

  // Quotes after the reconnect: first the ones missed, replayed, then live ones.
  const count = (await tickerIds(p)).length
  await p.waitForFunction((n) => (window as any).tickerIds.length >= n + 3, count)
  // The reconnected stream opens with a fresh snapshot, whose id repeats the last quote's; the
  // quotes are the ids that move on.
  const pageIds = [...new Set(await tickerIds(p))]
  await reference.waitForEvents(reference.events.findIndex((e) => e.id === pageIds.at(-1)) + 1)
  const referenceIds = reference.events.filter((e) => e.event === 'quote').map((e) => e.id)
  const start = referenceIds.indexOf(pageIds[0])
  t.ok(start >= 0, 'the page saw quotes the reference saw')
  t.same(pageIds, referenceIds.slice(start, start + pageIds.length),
    `the page got every quote exactly once, in order, across the drop (${pageIds.length} quotes)`)
  t.equal(await p.textContent('#ticker-conn'), 'live', 'and is live again')
})

t.test('the logs pane shows the /events request the page made, newest first, capped', { skip }, async (t) => {
  const served = await serve(t)
  const p = await openDemo(t, served)
  await p.waitForFunction(() => document.getElementById('logs-conn')!.dataset.state === 'live')

  await p.fill('#prompt', 'a prompt to find in the logs')
  await p.click('#generate')
  // What users type is redacted from the logs (routes/logs/redact.ts); the route still shows.
  const mine = p.locator('#log-lines li', { hasText: 'GET /events?prompt=[redacted]' })
  await mine.first().waitFor()
  t.match(await mine.first().textContent(), /INFO\s+incoming request/, 'the record is shown with its level and message')
  await p.waitForFunction(() => document.getElementById('answer')!.dataset.state === 'done')
  // Fastify logs "request completed" when the /events stream ends; it carries the same request id.
  const reqId = (await mine.first().locator('.reqid').textContent())!
  await p.locator('#log-lines li', { hasText: 'request completed' }).filter({ hasText: reqId }).first().waitFor()
  const order = await p.$$eval('#log-lines li', (lis) => lis.map((li) => li.textContent ?? ''))
  const completed = order.findIndex((line) => line.includes('request completed') && line.includes(reqId))
  const incoming = order.findIndex((line) => line.includes('/events?prompt=[redacted]'))
  t.ok(completed < incoming, 'newest first: the completion is above the request')

  // Many requests: the pane keeps the newest 200 lines.
  for (let i = 0; i < 120; i++) await (await fetch(`${served.base}/style.css?n=${i}`)).arrayBuffer()
  await p.locator('#log-lines li', { hasText: '/style.css?n=119' }).first().waitFor()
  t.equal(await p.locator('#log-lines li').count(), 200, 'capped at 200 lines')

  await p.selectOption('#log-level', 'warn')
  await p.waitForFunction(() => document.getElementById('logs-conn')!.dataset.state === 'live')
  const streams = fromBrowser(served, '/logs')
  t.same(streams.map((r) => new URL(r.url, 'http://x').searchParams.get('level')), ['info', 'warn'],
    'changing the level reopens the stream at that level')
  t.equal(await streams[0].closedEarly, true, 'the old stream was closed')
})

t.test('with LOGS_TOKEN set, the logs pane says how to get in, and the token never shows in the logs', { skip }, async (t) => {
  const token = 'pane-secret-4f1c'
  const served = await serve(t, { LOGS_TOKEN: token })
  const locked = await openDemo(t, served)
  await locked.waitForFunction(() => !document.getElementById('logs-error')!.hidden)
  t.match(await locked.textContent('#logs-error'), /protected by LOGS_TOKEN.*\/\?token=/, 'the 401 is explained in words')
  t.equal(await locked.textContent('#logs-conn'), 'disconnected', 'the pane says it is disconnected')
  // The stream, and one fetch of the same URL that learnt why (a 4xx is not retried).
  t.equal(fromBrowser(served, '/logs').length, 2, 'a refused stream is not retried in a loop')

  const p = await openDemo(t, served, { path: `/?token=${token}` })
  await p.waitForFunction(() => document.getElementById('logs-conn')!.dataset.state === 'live')
  // Someone else loads the page with the token, in the URL and as a bearer header.
  await (await fetch(`${served.base}/?token=${token}`, { headers: { authorization: `Bearer ${token}` } })).text()
  await p.locator('#log-lines li', { hasText: 'GET /?token=[redacted]' }).first().waitFor()
  t.pass('the request with the token is shown, its token redacted')
  const shown = await p.$$eval('#log-lines li', (lis) => lis.map((li) => li.textContent + ' ' + li.getAttribute('title')).join('\n'))
  t.notMatch(shown, token, 'the token appears nowhere in the pane, not even in the full records')
  t.equal(new URL(fromBrowser(served, '/logs').at(-1)!.url, 'http://x').searchParams.get('token'), token, 'the page passed it to /logs')
})
