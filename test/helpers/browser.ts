// Headless Chromium for browser tests, through playwright-core and Debian's `chromium` package
// (playwright's own browser downloads need the internet; `.ci/run` installs the Debian one).
//
//   t.test('…', { skip: chromiumMissing() }, async (t) => {
//     const page = await openPage(t)        // closed when t ends
//     await page.goto(base + '/')
//   })
//
// Where Chromium is missing the tests are skipped with a message saying how to get it; they never
// fail for that reason, and never silently pass either (tap reports them as skipped).
import { existsSync } from 'node:fs'
import tap, { type Test } from 'tap'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

/** Where the browser is looked for; `CHROMIUM_PATH` overrides it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

// No sandbox: CI containers run as root. The rest keeps Chromium from phoning home (the machine
// has no internet, and a stalled background request slows every launch) and from using QUIC.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic'
]

/**
 * Why browser tests cannot run here, or `false` when they can. Meant as tap's `skip` option:
 * `t.test('…', { skip: chromiumMissing() }, async (t) => …)`.
 */
export function chromiumMissing (): string | false {
  if (existsSync(CHROMIUM_PATH)) return false
  return `Chromium not found at ${CHROMIUM_PATH}: install it (apt-get install chromium, as .ci/run does) ` +
    'or set CHROMIUM_PATH to run the browser tests'
}

/** Launches headless Chromium; the caller closes it. Throws when Chromium is absent. */
export async function launchBrowser (): Promise<Browser> {
  const missing = chromiumMissing()
  if (missing !== false) throw new Error(`${missing} (give the test { skip: chromiumMissing() })`)
  return await chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS })
}

// One browser per test process (a launch costs about a second); every page gets its own context,
// so tests share no cookies, cache or storage. Closed when the process's root test ends.
let shared: Promise<Browser> | undefined
function sharedBrowser (): Promise<Browser> {
  if (shared === undefined) {
    const launching = launchBrowser()
    shared = launching
    tap.teardown(async () => { await (await launching).close() })
  }
  return shared
}

export interface OpenPageOptions {
  /** Viewport width in CSS pixels. @default 1280 */
  width?: number
  /** Viewport height in CSS pixels. @default 800 */
  height?: number
}

/**
 * A fresh page in its own browser context, closed when `t` ends. An uncaught exception in the
 * page fails `t`, so a broken script cannot pass unnoticed. The test must carry
 * `{ skip: chromiumMissing() }`: without Chromium this throws rather than pass vacuously.
 */
export async function openPage (t: Test, options: OpenPageOptions = {}): Promise<Page> {
  return await (await openContext(t, options)).newPage()
}

/**
 * A fresh browser context (one profile: its tabs share connections, workers and storage), closed
 * when `t` ends. An uncaught exception in any of its pages fails `t`.
 */
export async function openContext (t: Test, options: OpenPageOptions = {}): Promise<BrowserContext> {
  const browser = await sharedBrowser()
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 }
  })
  let open = true
  t.teardown(async () => {
    open = false
    await context.close()
  })
  context.on('page', (page) => {
    page.on('pageerror', (err) => { if (open) t.fail(`uncaught exception in the page: ${err.message}`) })
  })
  return context
}

/** One event an EventSource of the page dispatched, as `recordEventSources` keeps it. */
export interface RecordedEvent {
  type: string
  /** `lastEventId` after the event: the id the browser would send on reconnect. */
  id: string
  data: string | undefined
}

/** An EventSource the page opened, as seen from the test. */
export interface RecordedSource {
  url: string
  /** 0 connecting, 1 open, 2 closed (the page called `close()`, or the server refused it). */
  readyState: number
  /** How many times it opened: 2 or more means the browser reconnected. */
  opens: number
  /** Every event in order, `open` ones included (with `data` undefined), so reconnects show. */
  events: RecordedEvent[]
}

/**
 * Makes every page of `page`'s context record the EventSources it opens, without changing what
 * they do: `readEventSources(page)` then returns them in order of creation. Call before `goto`.
 * `types` are the named event types to record besides `message`, `open` and `error`.
 */
export async function recordEventSources (page: Page, types: string[] = []): Promise<void> {
  await page.addInitScript((named: string[]) => {
    const Native = window.EventSource
    const all: EventSource[] = []
    const logs = new WeakMap<EventSource, { opens: number, events: Array<{ type: string, id: string, data: string | undefined }> }>()
    class Recorded extends Native {
      constructor (url: string | URL, init?: EventSourceInit) {
        super(url, init)
        const log = { opens: 0, events: [] as Array<{ type: string, id: string, data: string | undefined }> }
        logs.set(this, log)
        all.push(this)
        this.addEventListener('open', () => {
          log.opens++
          log.events.push({ type: 'open', id: '', data: undefined })
        })
        for (const type of ['message', 'error', ...named]) {
          this.addEventListener(type, (e) => {
            const m = e as MessageEvent
            log.events.push({ type, id: m.lastEventId ?? '', data: e instanceof MessageEvent ? String(m.data) : undefined })
          })
        }
      }
    }
    Object.defineProperty(window, 'EventSource', { value: Recorded, writable: true, configurable: true })
    Object.defineProperty(window, '__eventSources', {
      value: () => all.map((es) => ({ url: es.url, readyState: es.readyState, ...logs.get(es)! }))
    })
  }, types)
}

/** The EventSources the page opened so far (see `recordEventSources`), oldest first. */
export async function readEventSources (page: Page): Promise<RecordedSource[]> {
  return await page.evaluate(() => (window as unknown as { __eventSources: () => RecordedSource[] }).__eventSources())
}
