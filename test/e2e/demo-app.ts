// What the demo page's browser tests share: the real service on a free port, watched from the raw
// HTTP server, and the page opened in Chromium with its EventSources recorded.
import type { Test } from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Page } from 'playwright-core'
import { buildApp } from '../../service/app.js'
import { loadConfig } from '../../service/config.js'
import { listen } from '../helpers/http.js'
import { openPage, recordEventSources } from '../helpers/browser.js'

export interface SeenRequest {
  url: string
  req: IncomingMessage
  res: ServerResponse
  /** Resolves when the response closes: true if it closed before it was finished (abandoned). */
  closedEarly: Promise<boolean>
}

export interface Served {
  app: FastifyInstance
  base: string
  /** Every HTTP request the server has seen, in order of arrival. */
  requests: SeenRequest[]
}

/**
 * The real service (buildApp: the routes, the built-in demo model over real HTTP, the static
 * page) on a free port, closed when `t` ends. `env` overrides the configuration; by default the
 * demo model paces its tokens 20 ms apart and /events is not rate-limited.
 */
export async function serve (t: Test, env: Record<string, string> = {}): Promise<Served> {
  const config = loadConfig({ DEMO_TOKEN_DELAY_MS: '20', RATE_LIMIT_MAX: '0', LOG_LEVEL: 'info', ...env })
  const app = await buildApp(config)
  const requests: SeenRequest[] = []
  // Watched on the raw server, so nothing about the routes' internals is assumed.
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const closedEarly = new Promise<boolean>((resolve) => res.once('close', () => resolve(!res.writableFinished)))
    requests.push({ url: req.url ?? '', req, res, closedEarly })
  })
  t.teardown(() => app.close())
  return { app, base: await listen(app), requests }
}

export interface OpenDemoOptions {
  /** Viewport width in CSS pixels. @default 1280 */
  width?: number
  /** The page's address on the server, e.g. `/?token=…`. @default '/' */
  path?: string
}

/** The demo page, in a fresh browser context, recording every EventSource it opens. */
export async function openDemo (t: Test, served: Served, options: OpenDemoOptions = {}): Promise<Page> {
  const p = await openPage(t, { width: options.width })
  await recordEventSources(p, ['done', 'snapshot', 'quote', 'log', 'gap', 'reset'])
  await p.goto(served.base + (options.path ?? '/'))
  return p
}
