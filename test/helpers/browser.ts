// Headless Chromium for browser tests, through playwright-core and Debian's `chromium` package
// (playwright's own browser downloads need the internet; `.ci/run` installs the Debian one).
//
//   const page = await openPage(t)          // launches, and closes at t's teardown
//   if (page === undefined) return           // Chromium is absent: t is marked skipped
//   await page.goto(base + '/')
//
// Where Chromium is missing the test is skipped with a message saying how to get it; it never
// fails for that reason, and never silently passes either (tap reports it as skipped).
import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Test } from 'tap'

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
 * Why browser tests cannot run here, or `false` when they can. Usable as tap's `skip` option:
 * `t.test('…', { skip: chromiumMissing() }, async (t) => …)`.
 */
export function chromiumMissing (): string | false {
  if (existsSync(CHROMIUM_PATH)) return false
  return `Chromium not found at ${CHROMIUM_PATH}: install it (apt-get install chromium, as .ci/run does) ` +
    'or set CHROMIUM_PATH to run the browser tests'
}

/**
 * Launches headless Chromium and closes it when `t` ends. When Chromium is absent, marks `t` as
 * skipped with the reason and resolves to `undefined`; the caller should then return.
 */
export async function launchBrowser (t: Test): Promise<Browser | undefined> {
  const missing = chromiumMissing()
  if (missing !== false) {
    t.plan(0, missing)
    return undefined
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS })
  t.teardown(() => browser.close())
  return browser
}

export interface OpenPageOptions {
  /** The browser to open the page in; a new one is launched for `t` when omitted. */
  browser?: Browser
  /** Viewport width in CSS pixels. @default 1280 */
  width?: number
  /** Viewport height in CSS pixels. @default 800 */
  height?: number
}

/**
 * A fresh page (in its own browser context, so no cookies or cache are shared) that is closed
 * when `t` ends. An uncaught exception in the page fails `t`, so a broken script cannot pass
 * unnoticed. Resolves to `undefined`, with `t` skipped, when Chromium is absent.
 */
export async function openPage (t: Test, options: OpenPageOptions = {}): Promise<Page | undefined> {
  const browser = options.browser ?? await launchBrowser(t)
  if (browser === undefined) return undefined
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 }
  })
  t.teardown(() => context.close())
  const page = await context.newPage()
  page.on('pageerror', (err) => { t.fail(`uncaught exception in the page: ${err.message}`) })
  return page
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
        this.addEventListener('open', () => { log.opens++ })
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
