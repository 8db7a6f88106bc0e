// `hubRoute(hub, options)`: a whole route handler for a hub subscription, over real sockets. It must
// stream what `reply.sse(hubSource(...))` streams (replay included), take options from the request,
// answer bad options with a JSON error before the stream starts, honour the plugin's maxStreams,
// and say clearly when the plugin is missing.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import sse from '../../lib/index.js'
import { createHub } from '../../lib/hub/hub.js'
import { hubRoute } from '../../lib/hub/source.js'
import { SSE_ERR_INVALID_OPTION } from '../../lib/errors.js'
import { listen, openStream } from '../helpers/http.js'
import { eventually, PATIENCE_MS } from '../helpers/eventually.js'

async function serve (t: Test, pluginOpts = {}) {
  const hub = createHub()
  const app = Fastify({ forceCloseConnections: true })
  await app.register(sse, { heartbeatMs: 0, ...pluginOpts })
  t.teardown(async () => { await app.close(); await hub.close() })
  return { hub, app }
}

t.test('streams live messages and replays after Last-Event-ID, like reply.sse(hubSource())', async (t) => {
  const { hub, app } = await serve(t)
  app.get('/news', hubRoute(hub, { topics: 'news' }))
  const url = await listen(app) + '/news'
  const first = await openStream(url)
  await hub.publish('news', { data: 'one' })
  await hub.publish('news', { data: 'two' })
  const got = await first.waitForEvents(2)
  t.same(got.map((e) => e.data), ['one', 'two'])
  first.destroy()
  await eventually(() => hub.stats().subscribers === 0, 'the first subscriber is gone', PATIENCE_MS)
  await hub.publish('news', { data: 'three' })
  const again = await openStream(url, { 'last-event-id': got[0].id as string })
  t.same((await again.waitForEvents(2)).map((e) => e.data), ['two', 'three'], 'replayed from the id it gave')
  again.destroy()
})

t.test('options may come from the request', async (t) => {
  const { hub, app } = await serve(t)
  app.get('/topic', hubRoute(hub, (request) => ({ topics: (request.query as { t: string }).t })))
  const url = await listen(app)
  const a = await openStream(url + '/topic?t=a')
  const b = await openStream(url + '/topic?t=b')
  await hub.publish('a', { data: 'for a' })
  await hub.publish('b', { data: 'for b' })
  t.same((await a.waitForEvents(1)).map((e) => e.data), ['for a'])
  t.same((await b.waitForEvents(1)).map((e) => e.data), ['for b'])
  t.same(a.events.map((e) => e.data), ['for a'], 'each got its own topic only')
  a.destroy()
  b.destroy()
})

t.test('options that throw are an HTTP error with a JSON body, before anything is streamed', async (t) => {
  const { hub, app } = await serve(t)
  app.get('/bad', hubRoute(hub, () => { throw new SSE_ERR_INVALID_OPTION('topics', 'not on this server') }))
  app.get('/empty', hubRoute(hub, { topics: [] }))
  for (const path of ['/bad', '/empty']) {
    const res = await app.inject(path)
    t.equal(res.statusCode, 500, path)
    t.match(res.headers['content-type'], /application\/json/, path)
    t.equal(res.json().code, 'SSE_ERR_INVALID_OPTION', path)
  }
  t.equal(hub.stats().subscribers, 0, 'nobody stayed subscribed')
})

t.test('the plugin\'s maxStreams turns one stream too many away with 503', async (t) => {
  const { hub, app } = await serve(t, { maxStreams: 1 })
  app.get('/news', hubRoute(hub, { topics: 'news' }))
  const url = await listen(app) + '/news'
  const first = await openStream(url)
  const res = await fetch(url)
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '5')
  t.equal((await res.json()).code, 'SSE_ERR_TOO_MANY_STREAMS')
  t.equal(hub.stats().subscribers, 1, 'the refused request did not subscribe')
  first.destroy()
})

t.test('without the plugin registered, the error names what is missing', async (t) => {
  const hub = createHub()
  const app = Fastify()
  app.get('/news', hubRoute(hub, { topics: 'news' }))
  t.teardown(async () => { await app.close(); await hub.close() })
  const res = await app.inject('/news')
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'SSE_ERR_NOT_REGISTERED')
  t.match(res.json().message, /app\.register\(sse\)/)
  t.equal(hub.stats().subscribers, 0)
})
