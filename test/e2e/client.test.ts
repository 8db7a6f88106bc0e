// `fastify-sse-stream/client` inside headless Chromium: the module is served as the browser gets
// it (TypeScript stripped, eventsource-parser through an import map), so a `node:` import or any
// other Node-only dependency would fail to load here. Skipped, with the reason, without Chromium.
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Page } from 'playwright-core'
import sse from '../../lib/index.js'
import { deferred, listen } from '../helpers/http.js'
import { chromiumMissing, openPage } from '../helpers/browser.js'

const skip = chromiumMissing()

// The client as a browser module, compiled from the source so it is never stale; with it the
// library's helpers it imports (lib/internal/*), served where its relative imports point.
const browserModule = (path: string): string => ts.transpileModule(readFileSync(new URL(path, import.meta.url), 'utf8'), {
  compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, removeComments: true }
}).outputText
const clientSource = browserModule('../../lib/client/client.ts')
const importsOf = (source: string): string[] =>
  [...new Set([...source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/gm)].map((m) => m[1]))]
const helpers = new Map(importsOf(clientSource).filter((s) => s.startsWith('../internal/'))
  .map((s) => [s.slice(2), browserModule('../../lib/internal/' + s.slice('../internal/'.length).replace(/\.js$/, '.ts'))]))
// The ESM build, as a bundler or CDN would hand it to the browser.
const parserSource = readFileSync(fileURLToPath(import.meta.resolve('eventsource-parser')), 'utf8')
  .replace(/\n\/\/# sourceMappingURL=.*$/m, '')

const PAGE = `<!doctype html><meta charset="utf-8"><title>client</title>
<script type="importmap">{ "imports": { "eventsource-parser": "/vendor/eventsource-parser.js" } }</script>`

const TOKENS = ['Hel', 'lo', ' wörld', '\n', '🚀 ', 'line1\nline2', '', ' end']

interface Served { base: string, closed: Promise<void>, lastEventIds: Array<string | undefined> }

async function serve (t: Test): Promise<Served> {
  const app: FastifyInstance = Fastify({ forceCloseConnections: true })
  await app.register(sse, { heartbeatMs: 0 })
  t.teardown(() => app.close())
  const js = 'text/javascript; charset=utf-8'
  app.get('/', (request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
  app.get('/client.js', (request, reply) => reply.type(js).send(clientSource))
  app.get('/vendor/eventsource-parser.js', (request, reply) => reply.type(js).send(parserSource))
  for (const [path, source] of helpers) app.get(path, (request, reply) => reply.type(js).send(source))

  const served: Served = { base: '', closed: Promise.resolve(), lastEventIds: [] }
  // Resumable tokens; the first connection is cut after id 3, once the page says it has it
  // (Chromium may otherwise report the cut before handing over the bytes before it).
  const cut = deferred()
  app.post('/cut', (request, reply) => { cut.resolve(); return reply.code(204).send() })
  app.get('/tokens', (request, reply) => {
    served.lastEventIds.push(request.lastEventId)
    const from = Number(request.lastEventId ?? 0)
    if (from >= TOKENS.length) return reply.code(204).send()
    return reply.sse(async function * () {
      for (let i = from; i < TOKENS.length; i++) {
        yield { id: String(i + 1), data: TOKENS[i] }
        // Cut mid-body (`end()` keeps queued writes; destroy would not).
        if (i + 1 === 3 && from === 0) { await cut.promise; reply.raw.socket?.end(); return }
      }
    })
  })
  app.post('/echo', (request, reply) => reply.sse([{ event: 'echo', data: { body: request.body, key: request.headers['x-key'] } }]))
  app.get('/refused', async (request, reply) => reply.code(400).send({ code: 'NOPE', message: 'not like this' }))
  const closed = deferred()
  served.closed = closed.promise
  app.get('/forever', (request, reply) => reply.sse(async function * ({ signal }) {
    try {
      for (let i = 0; !signal.aborted; i++) {
        yield String(i)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    } finally {
      closed.resolve()
    }
  }))
  served.base = await listen(app)
  return served
}

async function browserPage (t: Test, served: Served): Promise<Page> {
  const page = await openPage(t)
  await page.goto(served.base + '/')
  return page
}

t.test('the client module imports nothing but eventsource-parser and import-free helpers of its own', async (t) => {
  t.same(importsOf(clientSource).filter((s) => !s.startsWith('../internal/')), ['eventsource-parser'])
  t.ok(helpers.size > 0, 'the helpers the client imports are served too')
  for (const source of [clientSource, ...helpers.values()]) t.notMatch(source, /\brequire\(|\bprocess\.|\bBuffer\b/)
  for (const [path, source] of helpers) t.same(importsOf(source), [], `${path} imports nothing`)
})

t.test('streams in Chromium, resuming with Last-Event-ID after a drop, byte for byte', { skip }, async (t) => {
  const served = await serve(t)
  const page = await browserPage(t, served)
  const result = await page.evaluate(async () => {
    const { streamEvents } = await import('/client.js' as string)
    const events: Array<{ data: string, id: string }> = []
    for await (const ev of streamEvents('/tokens', { retryMs: 1 })) {
      events.push(ev)
      if (ev.id === '3' && events.length === 3) await fetch('/cut', { method: 'POST' })
    }
    return events
  })
  t.equal(result.map((e) => e.data).join(''), TOKENS.join(''))
  t.same(result.map((e) => e.id), TOKENS.map((_, i) => String(i + 1)))
  t.same(served.lastEventIds, [undefined, '3', String(TOKENS.length)])
})

t.test('POSTs JSON with headers and decodes JSON events in Chromium', { skip }, async (t) => {
  const served = await serve(t)
  const page = await browserPage(t, served)
  const events = await page.evaluate(async () => {
    const { streamEvents } = await import('/client.js' as string)
    const out: unknown[] = []
    const options = { body: { q: 'héllo', n: [1, 2] }, headers: { 'x-key': 'k' }, json: true, reconnect: false }
    for await (const ev of streamEvents('/echo', options)) out.push(ev)
    return out
  })
  t.same(events, [{ event: 'echo', data: { body: { q: 'héllo', n: [1, 2] }, key: 'k' } }])
})

t.test('an HTTP error is an SseHttpError with the JSON body in Chromium', { skip }, async (t) => {
  const served = await serve(t)
  const page = await browserPage(t, served)
  const caught = await page.evaluate(async () => {
    const { streamEvents, SseHttpError } = await import('/client.js' as string)
    try {
      for await (const ev of streamEvents('/refused')) return { unexpected: ev }
    } catch (err: any) {
      return { isHttpError: err instanceof SseHttpError, name: err.name, status: err.status, body: err.body }
    }
  })
  t.same(caught, { isHttpError: true, name: 'SseHttpError', status: 400, body: { code: 'NOPE', message: 'not like this' } })
})

t.test('breaking out of the loop in Chromium closes the server-side stream', { skip }, async (t) => {
  const served = await serve(t)
  const page = await browserPage(t, served)
  const got = await page.evaluate(async () => {
    const { streamEvents } = await import('/client.js' as string)
    const seen: string[] = []
    for await (const ev of streamEvents('/forever')) {
      seen.push(ev.data)
      if (seen.length === 2) break
    }
    return seen
  })
  t.same(got, ['0', '1'])
  await served.closed
  t.pass('the server saw the stream close')
})
