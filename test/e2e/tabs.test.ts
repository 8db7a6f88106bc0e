// Many tabs of the demo page in one browser profile. HTTP/1.1 gives a browser six connections
// per origin for all its tabs; the page's live panes share theirs across tabs (static/shared-stream.js),
// so any number of tabs stay live and can generate. Skipped, with the reason, without Chromium.
import t from 'tap'
import type { Page } from 'playwright-core'
import { openStream } from '../helpers/http.js'
import { chromiumMissing, openContext } from '../helpers/browser.js'
import { serve, type Served } from './demo-app.js'

const skip = chromiumMissing()
// Eight tabs on two busy cores take a while; these are bounds against hanging, not timings.
t.setTimeout(600_000)

/** The /ticker and /logs requests Chromium made (the test's own readers excluded). */
function paneRequests (served: Served, path: string): Served['requests'] {
  return served.requests.filter((r) => new URL(r.url, 'http://x').pathname === path &&
    /Chrome/.test(r.req.headers['user-agent'] ?? ''))
}

/** Waits, boundedly, until `check` holds; for state the server only exposes as a number. */
async function eventually (check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (check()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`timed out waiting until ${what}`)
}

const bothLive = (): boolean => document.getElementById('ticker-conn')!.dataset.state === 'live' &&
  document.getElementById('logs-conn')!.dataset.state === 'live'

/** Pretends the tab was hidden or shown, as switching tabs or minimising does. */
async function setVisibility (p: Page, state: 'hidden' | 'visible'): Promise<void> {
  await p.evaluate((s) => {
    Object.defineProperty(document, 'visibilityState', { value: s, configurable: true })
    Object.defineProperty(document, 'hidden', { value: s === 'hidden', configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
  }, state)
}

t.test('eight tabs all stream quotes and logs over two shared connections, and Generate in each gets its first token', { skip }, async (t) => {
  const served = await serve(t, { TICKER_INTERVAL_MS: '100', DEMO_TOKEN_DELAY_MS: '20' })
  const context = await openContext(t)
  context.setDefaultTimeout(120_000)
  const pages: Page[] = []
  for (let i = 0; i < 8; i++) {
    const p = await context.newPage()
    await p.goto(served.base + '/')
    pages.push(p)
  }
  for (const [i, p] of pages.entries()) {
    await p.waitForFunction(bothLive)
    const before = await p.textContent('#quotes')
    await p.waitForFunction((text) => document.getElementById('quotes')!.textContent !== text, before)
    t.pass(`tab ${i + 1}: both panes are live and its prices change`)
  }
  t.equal(await pages[0].evaluate(async () => (await import(String('/shared-stream.js'))).sharingMode()), 'worker', 'Chromium shares through a SharedWorker')
  t.equal(served.app.sseOpenStreams, 2, 'the server holds two streams for eight tabs: one /ticker, one /logs')
  t.equal(paneRequests(served, '/ticker').length, 1, 'one /ticker request from the whole browser')
  t.equal(paneRequests(served, '/logs').length, 1, 'one /logs request from the whole browser')

  for (const [i, p] of pages.entries()) await p.fill('#prompt', `tab ${i + 1} asks about sharing`)
  // Submitted from script and watched by timer, not by animation frame: Chromium may pause frames
  // of tabs it does not paint, and the test is about connections, not painting.
  await Promise.all(pages.map(async (p) => await p.evaluate(() => (document.getElementById('prompt-form') as HTMLFormElement).requestSubmit())))
  for (const [i, p] of pages.entries()) {
    await p.waitForFunction(() => document.getElementById('answer')!.textContent !== '', undefined, { polling: 100 })
    t.pass(`tab ${i + 1} got its first token`)
  }
  for (const [i, p] of pages.entries()) {
    await p.waitForFunction(() => document.getElementById('answer')!.dataset.state === 'done', undefined, { polling: 100 })
    // Every tab's logs pane saw every tab's request: the shared /logs stream reaches them all.
    await p.waitForFunction(() => [...document.querySelectorAll('#log-lines li')]
      .filter((li) => /incoming request GET \/events\?prompt=/.test(li.textContent!)).length >= 8, undefined, { polling: 100 })
    t.pass(`tab ${i + 1} finished its answer and its logs show the other tabs' requests`)
  }
  const answered = served.requests.filter((r) => r.url.startsWith('/events?') && r.res.statusCode === 200)
  t.equal(answered.length, 8, 'one answer per click (a tab told to wait for a free slot asked again; no model was asked twice)')
  t.equal(served.requests.filter((r) => r.url.startsWith('/v1/chat/completions')).length, 8, 'the model was asked eight times')
})

t.test('a hidden tab gives its streams back and, shown again, catches up from the last event it saw', { skip }, async (t) => {
  const served = await serve(t, { TICKER_INTERVAL_MS: '50' })
  const context = await openContext(t)
  const p = await context.newPage()
  await p.goto(served.base + '/')
  await p.waitForFunction(bothLive)
  await p.waitForFunction(() => document.getElementById('ticker-last-id')!.textContent !== '–')
  t.equal(served.app.sseOpenStreams, 2)

  await setVisibility(p, 'hidden')
  const [ticker] = paneRequests(served, '/ticker')
  t.equal(await ticker.closedEarly, true, 'hidden, the tab closed its /ticker connection')
  await eventually(() => served.app.sseOpenStreams === 0, 'the server holds no stream for the hidden tab')
  t.pass('and the server holds no stream for it')
  const lastSeen = (await p.textContent('#ticker-last-id'))!

  // Quotes go on meanwhile; a reader of our own sees a few.
  const reference = await openStream(`${served.base}/ticker`)
  t.teardown(() => reference.destroy())
  await reference.waitForEvents(4)

  await setVisibility(p, 'visible')
  await p.waitForFunction((id) => document.getElementById('ticker-last-id')!.textContent !== id, lastSeen)
  const resumed = paneRequests(served, '/ticker')[1]
  t.equal(new URL(resumed.url, 'http://x').searchParams.get('lastEventId'), lastSeen, 'shown again, it resumed from the last id it saw')
  t.equal(await p.textContent('#ticker-reconnects'), '0', 'coming back is not counted as a reconnect')
  await p.waitForFunction(bothLive)
  t.pass('both panes are live again')
})

t.test('without SharedWorker, a leader tab holds the streams for three tabs, and when it closes another takes over', { skip }, async (t) => {
  const served = await serve(t, { TICKER_INTERVAL_MS: '100' })
  const context = await openContext(t)
  context.setDefaultTimeout(60_000)
  // As in a browser without SharedWorker (Safari before 16, Chrome on Android): the Web Locks
  // leader and BroadcastChannel fallback of shared-stream.js.
  await context.addInitScript(() => { delete (window as { SharedWorker?: unknown }).SharedWorker })
  // Which tab opened the streams, seen from the browser's side: the leader.
  const opener = new Map<Page, number>()
  const pages: Page[] = []
  for (let i = 0; i < 3; i++) {
    const p = await context.newPage()
    p.on('request', (r) => { if (new URL(r.url()).pathname === '/ticker') opener.set(p, (opener.get(p) ?? 0) + 1) })
    await p.goto(served.base + '/')
    pages.push(p)
  }
  const quotesChange = async (p: Page): Promise<void> => {
    const before = await p.textContent('#quotes')
    await p.waitForFunction((text) => document.getElementById('quotes')!.textContent !== text, before, { polling: 100 })
  }
  for (const [i, p] of pages.entries()) {
    await p.waitForFunction(bothLive, undefined, { polling: 100 })
    await quotesChange(p)
    t.equal(await p.evaluate(async () => (await import(String('/shared-stream.js'))).sharingMode()), 'leader', `tab ${i + 1} shares through the leader tab`)
  }
  t.equal(served.app.sseOpenStreams, 2, 'the server holds two streams for three tabs: one /ticker, one /logs')
  t.equal(paneRequests(served, '/ticker').length, 1, 'one /ticker request from the whole browser')
  t.equal(opener.size, 1, 'made by one tab')

  const [leader] = [...opener.keys()]
  const [ticker] = paneRequests(served, '/ticker')
  await leader.close()
  t.equal(await ticker.closedEarly, true, 'closing the leader tab closed its /ticker connection')
  const rest = pages.filter((p) => p !== leader)
  for (const [i, p] of rest.entries()) {
    await quotesChange(p)
    t.pass(`remaining tab ${i + 1}: quotes keep changing`)
  }
  await eventually(() => served.app.sseOpenStreams === 2 && paneRequests(served, '/ticker').length === 2, 'a new leader holds the streams')
  t.equal(opener.size, 2, 'reopened by one of the remaining tabs')
  const resumed = paneRequests(served, '/ticker')[1]
  t.not(new URL(resumed.url, 'http://x').searchParams.get('lastEventId'), null, 'from the last event id the tabs had')
  for (const p of rest) await p.waitForFunction(bothLive, undefined, { polling: 100 })
  t.pass('both panes are live in both remaining tabs')
})
