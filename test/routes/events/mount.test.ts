// The /events route plugin in someone else's app: a plain Fastify instance, the user's own `openai`
// client, a prefix; nothing of the demo service.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import OpenAI from 'openai'
import { readFileSync } from 'node:fs'
import events, { type EventsOptions } from '../../../routes/events/index.js'
import { startFakeUpstream, DEFAULT_TOKENS, type FakeMode, type FakeUpstream } from '../../fixtures/fake-upstream.js'
import { readEvents } from '../../fixtures/service.js'
import { listen, openStream } from '../../helpers/http.js'

async function mount (t: Test, mode: FakeMode, opts: Partial<EventsOptions> = {}): Promise<{ fake: FakeUpstream, url: string, app: FastifyInstance }> {
  const fake = await startFakeUpstream(mode)
  t.teardown(() => fake.close())
  const app = Fastify()
  const openai = new OpenAI({ baseURL: fake.baseURL, apiKey: 'sk-user-own-key-0123456789', maxRetries: 0 })
  await app.register(events, { prefix: '/ai', openai, model: 'user-model', ...opts })
  t.teardown(() => app.close())
  return { fake, app, url: await listen(app) }
}

t.test('mounted under a prefix with the user\'s own OpenAI client, it streams tokens then done', async (t) => {
  const { fake, url } = await mount(t, { kind: 'normal' })
  const res = await fetch(`${url}/ai/events?prompt=hi`)
  t.equal(res.status, 200)
  const got = await readEvents(res)
  t.same(got.filter((e) => e.event === undefined).map((e) => e.data), DEFAULT_TOKENS)
  t.match(JSON.parse(got.at(-1)!.data), { finish_reason: 'stop', model: 'user-model', demo: false })
  t.equal(fake.requests[0].body.model, 'user-model')
  t.equal(fake.requests[0].headers.authorization, 'Bearer sk-user-own-key-0123456789')
  t.equal((await fetch(`${url}/events?prompt=hi`)).status, 404, 'nothing outside the prefix')
})

t.test('mounted, a reconnect with Last-Event-ID gets the rest of the same answer from one upstream request', async (t) => {
  const tokens = ['a', 'b', 'c', 'd', 'e', 'f']
  const { fake, url } = await mount(t, { kind: 'normal', tokens, delayMs: 20 })
  const first = await openStream(`${url}/ai/events?prompt=hi`)
  const head = await first.waitForEvents(2)
  first.destroy()
  const second = await openStream(`${url}/ai/events?prompt=hi`, { 'last-event-id': head[1].id! })
  await second.ended
  const rest = second.events.filter((e) => e.event === undefined).map((e) => e.data)
  t.equal(head.map((e) => e.data).join('') + rest.join(''), tokens.join(''))
  t.equal(fake.requests.length, 1)
})

t.test('mounted, DELETE <prefix>/events/:generation stops the answer and the upstream request', async (t) => {
  const { fake, url } = await mount(t, { kind: 'stall-mid' })
  const s = await openStream(`${url}/ai/events?prompt=hi`)
  const [first] = await s.waitForEvents(1)
  const generation = first.id!.split(':')[0]
  const stop = await fetch(`${url}/ai/events/${generation}`, { method: 'DELETE' })
  t.equal(stop.status, 204)
  await s.ended
  t.match(JSON.parse(s.events.at(-1)!.data), { finish_reason: 'stopped' })
  t.equal((await fake.requests[0].closed).aborted, true)
  t.equal((await fetch(`${url}/ai/events/${generation}`, { method: 'DELETE' })).status, 204, 'a stopped generation can be stopped again')
})

t.test('mounted, an upstream 401 is a coded 502 that names neither the key nor the upstream URL', async (t) => {
  const { fake, url } = await mount(t, { kind: 'status', status: 401, message: 'Incorrect API key provided: sk-user-own-key-0123456789.' })
  const res = await fetch(`${url}/ai/events?prompt=hi`)
  t.equal(res.status, 502)
  const body = await res.json()
  t.equal(body.code, 'SSE_ERR_UPSTREAM_AUTH')
  t.notOk(JSON.stringify(body).includes('sk-user-own-key'))
  t.notOk(JSON.stringify(body).includes(fake.baseURL))
})

t.test('mounted with resume off, a client leaving aborts the upstream at once', async (t) => {
  const { fake, url } = await mount(t, { kind: 'stall-mid' }, { resume: false })
  const s = await openStream(`${url}/ai/events?prompt=hi`)
  await s.waitForEvents(DEFAULT_TOKENS.length)
  s.destroy()
  t.equal((await fake.requests[0].closed).aborted, true)
})

t.test('registration refuses a missing openai option with a coded error', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(events, {} as EventsOptions) }, { code: 'SSE_ERR_INVALID_OPTION', message: /openai/ })
})

t.test('the lines docs/routes.md shows a user run as written', async (t) => {
  const doc = readFileSync(new URL('../../../docs/routes.md', import.meta.url), 'utf8')
  const block = /### Mount `\/events` in your app\n[\s\S]*?```js\n([\s\S]*?)```/.exec(doc)
  t.ok(block, 'docs/routes.md has the block')
  const code = block![1]
  const fake = await startFakeUpstream({ kind: 'normal' })
  t.teardown(() => fake.close())
  // The imports become parameters; the upstream is the fake one; the port a free one.
  const bindings: Record<string, unknown> = { Fastify, OpenAI, events }
  const imports = [...code.matchAll(/^import (\w+) from '([^']+)'\n/gm)]
  t.same(imports.map((m) => m[2]), ['fastify', 'openai', 'fastify-sse-stream/events'])
  let body = code.replace(/^import .*\n/gm, '')
  t.ok(body.includes("'http://localhost:1234/v1'") && body.includes('await app.listen({ port: 3000 })'))
  body = body.replace("'http://localhost:1234/v1'", JSON.stringify(fake.baseURL))
    .replace('await app.listen({ port: 3000 })', "await app.listen({ port: 0, host: '127.0.0.1' }); return app")
    .replace('Fastify({ logger: true })', 'Fastify()')
  // eslint-disable-next-line no-new-func -- runs the docs' example as written, with its imports as parameters
  const run = new Function(...imports.map((m) => m[1]), `return (async () => {\n${body}\n})()`) as (...args: unknown[]) => Promise<FastifyInstance>
  // The documented client reads its key from the environment, as the reader's would.
  const saved = process.env.LLM_API_KEY
  process.env.LLM_API_KEY = 'sk-doc-example-key'
  t.teardown(() => { if (saved === undefined) delete process.env.LLM_API_KEY; else process.env.LLM_API_KEY = saved })
  const app = await run(...imports.map((m) => bindings[m[1]]))
  t.teardown(() => app.close())
  const address = app.server.address() as { port: number }
  const res = await fetch(`http://127.0.0.1:${address.port}/ai/events?prompt=hi`)
  t.equal(res.status, 200)
  t.same((await readEvents(res)).filter((e) => e.event === undefined).map((e) => e.data), DEFAULT_TOKENS)
})
