// Pages on another origin (CORS_ORIGINS), in Chromium: two origins on 127.0.0.1 with different
// ports, the page on one and the service on the other. Skipped, with the reason, without Chromium.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import type { Page } from 'playwright-core'
import { chromiumMissing, openPage } from '../helpers/browser.js'
import { listen } from '../helpers/http.js'
import { startService } from '../fixtures/service.js'

const skip = chromiumMissing()

/** An origin serving a blank page, for scripts to run cross-origin from. */
async function otherOrigin (t: Test): Promise<string> {
  const app = Fastify()
  app.get('/', (request, reply) => reply.type('text/html').send('<!doctype html><title>other origin</title>'))
  t.teardown(() => app.close())
  return await listen(app)
}

/** Opens an EventSource from the page: the first named event's data, or 'failed'. */
async function firstEvent (p: Page, url: string, withCredentials: boolean): Promise<string> {
  return await p.evaluate(async ({ url, withCredentials }) => await new Promise<string>((resolve) => {
    const es = new EventSource(url, { withCredentials })
    es.addEventListener('snapshot', () => { es.close(); resolve('snapshot') })
    es.addEventListener('error', () => { es.close(); resolve('failed') })
  }), { url, withCredentials })
}

t.test('without CORS_ORIGINS another origin cannot read a stream', { skip }, async (t) => {
  const page = await otherOrigin(t)
  const { url } = await startService(t)
  const p = await openPage(t)
  await p.goto(page + '/')
  t.equal(await firstEvent(p, `${url}/ticker`, false), 'failed')
})

t.test('a named origin reads streams and POSTs to /events; credentials only with CORS_CREDENTIALS=on', { skip }, async (t) => {
  const page = await otherOrigin(t)
  const open = await startService(t, { CORS_ORIGINS: `http://127.0.0.1:1,${page}` })
  const creds = await startService(t, { CORS_ORIGINS: page, CORS_CREDENTIALS: 'on' })
  const p = await openPage(t)
  await p.goto(page + '/')
  t.equal(await firstEvent(p, `${open.url}/ticker`, false), 'snapshot', 'an EventSource from the named origin gets events')
  t.equal(await firstEvent(p, `${open.url}/ticker`, true), 'failed', 'withCredentials is refused unless credentials are allowed')
  t.equal(await firstEvent(p, `${creds.url}/ticker`, true), 'snapshot', 'with CORS_CREDENTIALS=on, withCredentials works')

  // A JSON POST needs a preflight; the answer streams, and `retry-after` would be readable.
  const text = await p.evaluate(async (base) => {
    const res = await fetch(`${base}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] })
    })
    return `${res.status} ${res.headers.get('content-type')} ${(await res.text()).includes('event: done')}`
  }, open.url)
  t.match(text, /^200 text\/event-stream.* true$/, 'a cross-origin POST /events streams its answer')
})
