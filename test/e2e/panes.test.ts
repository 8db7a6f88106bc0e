// The demo page's live panes in headless Chromium: the ticker (its EventSource reconnecting after
// the server drops it, resuming with Last-Event-ID) and the server's logs. Skipped without Chromium.
import t from 'tap'
import type { Page } from 'playwright-core'
import { openStream } from '../helpers/http.js'
import { chromiumMissing, readEventSources, type RecordedSource } from '../helpers/browser.js'
import { openDemo, serve, type SeenRequest, type Served } from './demo-app.js'

const skip = chromiumMissing()

/** The requests Chromium made for the stream at `path` (the test's own reader excluded). */
function fromBrowser (served: Served, path: string): SeenRequest[] {
  return served.requests.filter((r) => new URL(r.url, 'http://x').pathname === path &&
    /Chrome/.test(r.req.headers['user-agent'] ?? ''))
}

async function source (p: Page, path: string): Promise<RecordedSource> {
  const all = (await readEventSources(p)).filter((s) => new URL(s.url).pathname === path)
  if (all.length === 0) throw new Error(`the page opened no EventSource on ${path}`)
  return all[all.length - 1]
}

/**
 * Waits until the page's newest EventSource on `path` satisfies `predicate`, which runs in the
 * page: it must be self-contained (it is sent as source text, without its closure).
 */
async function waitForSource (p: Page, path: string, predicate: (s: RecordedSource) => boolean): Promise<RecordedSource> {
  await p.waitForFunction(`(() => {
    const all = window.__eventSources().filter((s) => new URL(s.url).pathname === ${JSON.stringify(path)})
    const s = all[all.length - 1]
    return s !== undefined && (${predicate.toString()})(s)
  })()`)
  return await source(p, path)
}

/** The events after the last `open`: what the current connection delivered. */
function sinceLastOpen (s: RecordedSource): RecordedSource['events'] {
  const opens = s.events.map((e) => e.type === 'open')
  return s.events.slice(opens.lastIndexOf(true))
}

t.test('the ticker pane updates, and after the server drops it the page reconnects and continues without a gap', { skip }, async (t) => {
  const served = await serve(t, { TICKER_INTERVAL_MS: '100' })
  // A subscriber that is never dropped, opened first: every quote the hub publishes, in order.
  const reference = await openStream(`${served.base}/ticker`)
  t.teardown(() => reference.destroy())

  const p = await openDemo(t, served)
  await p.waitForFunction(() => document.querySelectorAll('#quotes tr').length > 0)
  const before = await p.textContent('#quotes')
  await p.waitForFunction((text) => document.getElementById('quotes')!.textContent !== text, before)
  t.pass('the prices in the table change as quotes arrive')
  t.equal(await p.textContent('#ticker-conn'), 'live', 'the pane says it is live')

  await waitForSource(p, '/ticker', (s) => s.events.filter((e) => e.type === 'quote').length >= 2)
  const browserRequest = fromBrowser(served, '/ticker')
  t.equal(browserRequest.length, 1, 'one ticker connection from the page so far')
  const lastBeforeDrop = (await source(p, '/ticker')).events.filter((e) => e.type === 'quote').at(-1)!.id
  browserRequest[0].req.socket.destroy()

  // The browser sees a network error, says so, waits its retry delay and reconnects by itself.
  const reopened = await waitForSource(p, '/ticker', (s) => s.opens >= 2)
  const missedMeanwhile = reference.events.filter((e) => e.event === 'quote').map((e) => e.id)
  t.ok(missedMeanwhile.indexOf(lastBeforeDrop) < missedMeanwhile.length - 1,
    'quotes were published while the page was disconnected')
  t.equal(reopened.events.filter((e) => e.type === 'error').length, 1, 'one connection error, then the browser reconnected')
  const second = fromBrowser(served, '/ticker')[1]
  t.equal(second?.req.headers['last-event-id'], lastBeforeDrop, 'the reconnect carried Last-Event-ID')

  // Quotes after the reconnect: first the ones missed, replayed, then live ones.
  const after = await waitForSource(p, '/ticker', (s) => {
    const opens = s.events.map((e) => e.type === 'open')
    return s.events.slice(opens.lastIndexOf(true)).filter((e) => e.type === 'quote').length >= 3
  })
  t.ok(sinceLastOpen(after).some((e) => e.type === 'snapshot'), 'the reconnected stream starts with a fresh snapshot')
  const pageIds = after.events.filter((e) => e.type === 'quote').map((e) => e.id)
  await reference.waitForEvents(reference.events.findIndex((e) => e.id === pageIds.at(-1)) + 1)
  const referenceIds = reference.events.filter((e) => e.event === 'quote').map((e) => e.id)
  const start = referenceIds.indexOf(pageIds[0])
  t.ok(start >= 0, 'the page saw quotes the reference saw')
  t.same(pageIds, referenceIds.slice(start, start + pageIds.length),
    `the page got every quote exactly once, in order, across the drop (${pageIds.length} quotes)`)

  t.equal(await p.textContent('#ticker-reconnects'), '1', 'the pane counts the reconnect')
  t.equal(await p.textContent('#ticker-conn'), 'live', 'and is live again')
})

t.test('the logs pane shows the /events request the page made, newest first, capped', { skip }, async (t) => {
  const served = await serve(t)
  const p = await openDemo(t, served)
  await p.waitForFunction(() => document.getElementById('logs-conn')!.dataset.state === 'live')

  await p.fill('#prompt', 'a prompt to find in the logs')
  await p.click('#generate')
  const mine = p.locator('#log-lines li', { hasText: 'GET /events?prompt=a+prompt+to+find+in+the+logs' })
  await mine.first().waitFor()
  t.match(await mine.first().textContent(), /INFO\s+incoming request/, 'the record is shown with its level and message')
  await p.waitForFunction(() => document.getElementById('answer')!.dataset.state === 'done')
  // Fastify logs "request completed" when the /events stream ends; it carries the same request id.
  const reqId = (await mine.first().locator('.reqid').textContent())!
  await p.locator('#log-lines li', { hasText: 'request completed' }).filter({ hasText: reqId }).first().waitFor()
  const order = await p.$$eval('#log-lines li', (lis) => lis.map((li) => li.textContent ?? ''))
  const completed = order.findIndex((line) => line.includes('request completed') && line.includes(reqId))
  const incoming = order.findIndex((line) => line.includes('/events?prompt=a+prompt'))
  t.ok(completed < incoming, 'newest first: the completion is above the request')

  // Many requests: the pane keeps the newest 200 lines.
  for (let i = 0; i < 120; i++) await (await fetch(`${served.base}/style.css?n=${i}`)).arrayBuffer()
  await p.locator('#log-lines li', { hasText: '/style.css?n=119' }).first().waitFor()
  t.equal(await p.locator('#log-lines li').count(), 200, 'capped at 200 lines')

  await p.selectOption('#log-level', 'warn')
  const warn = await waitForSource(p, '/logs', (s) => s.opens >= 1)
  t.equal(new URL(warn.url).searchParams.get('level'), 'warn', 'changing the level reopens the stream at that level')
  const sources = (await readEventSources(p)).filter((s) => new URL(s.url).pathname === '/logs')
  t.equal(sources.length, 2, 'one stream per level chosen')
  t.equal(sources[0].readyState, 2, 'the old stream was closed')
})

t.test('with LOGS_TOKEN set, the logs pane says how to get in, and the token never shows in the logs', { skip }, async (t) => {
  const token = 'pane-secret-4f1c'
  const served = await serve(t, { LOGS_TOKEN: token })
  const locked = await openDemo(t, served)
  await locked.waitForFunction(() => !document.getElementById('logs-error')!.hidden)
  t.match(await locked.textContent('#logs-error'), /protected by LOGS_TOKEN.*\/\?token=/, 'the 401 is explained in words')
  t.equal(await locked.textContent('#logs-conn'), 'disconnected', 'the pane says it is disconnected')
  t.equal((await source(locked, '/logs')).readyState, 2, 'a refused stream is not retried in a loop')

  const p = await openDemo(t, served, { path: `/?token=${token}` })
  await p.waitForFunction(() => document.getElementById('logs-conn')!.dataset.state === 'live')
  // Someone else loads the page with the token, in the URL and as a bearer header.
  await (await fetch(`${served.base}/?token=${token}`, { headers: { authorization: `Bearer ${token}` } })).text()
  await p.locator('#log-lines li', { hasText: 'GET /?token=[redacted]' }).first().waitFor()
  t.pass('the request with the token is shown, its token redacted')
  const shown = await p.$$eval('#log-lines li', (lis) => lis.map((li) => li.textContent + ' ' + li.getAttribute('title')).join('\n'))
  t.notMatch(shown, token, 'the token appears nowhere in the pane, not even in the full records')
  t.equal(new URL((await source(p, '/logs')).url).searchParams.get('token'), token, 'the page passed it to /logs')
})
