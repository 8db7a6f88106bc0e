import t from 'tap'
import { validate } from '@hyperjump/json-schema/openapi-3-2'
import { BASIC } from '@hyperjump/json-schema/experimental'
import { startService } from '../fixtures/service.js'
import { buildApp, selfBaseURL } from '../../service/app.js'
import { loadConfig } from '../../service/config.js'

t.test('/docs/json is an OpenAPI 3.2 document that validates against the 3.2 schema', async (t) => {
  const { url } = await startService(t)
  const res = await fetch(`${url}/docs/json`)
  t.equal(res.status, 200)
  const doc = await res.json()
  t.equal(doc.openapi, '3.2.0')
  const output = await validate('https://spec.openapis.org/oas/3.2/schema-base', doc, BASIC)
  t.same(output.valid ? [] : output.errors, [], 'no validation errors')
  t.equal(output.valid, true)
  // The validator does look inside: a broken copy fails.
  const broken = structuredClone(doc)
  broken.paths['/events'].get.responses['200'].content['text/event-stream'].itemSchema = { type: 'no-such-type' }
  t.equal((await validate('https://spec.openapis.org/oas/3.2/schema-base', broken)).valid, false)
})

t.test('the document lists /events and /v1/chat/completions with every event schema', async (t) => {
  const { url } = await startService(t)
  const doc = await (await fetch(`${url}/docs/json`)).json()
  const events = doc.paths['/events']
  t.ok(events.get, 'GET /events')
  t.ok(events.post, 'POST /events')
  for (const op of [events.get, events.post]) {
    t.same(op.tags, ['streams'])
    t.type(op.summary, 'string')
    t.type(op.description, 'string')
    const stream = op.responses['200'].content['text/event-stream']
    t.same(stream.schema, { type: 'string' })
    t.same(stream.itemSchema.oneOf.map((s: any) => s.title), ['token', 'done', 'error'])
    for (const status of ['400', '429', '502', '504']) t.ok(op.responses[status], `documents ${status}`)
  }
  const names = events.get.parameters.map((p: any) => p.name).sort()
  t.same(names, ['format', 'lastEventId', 'max_tokens', 'model', 'prompt', 'system', 'temperature'])
  t.equal(events.get.parameters.find((p: any) => p.name === 'prompt').required, true)
  t.same(events.post.requestBody.content['application/json'].schema.properties.messages.items.properties.role.enum,
    ['system', 'developer', 'user', 'assistant'])

  const chat = doc.paths['/v1/chat/completions'].post
  t.same(chat.tags, ['demo model'])
  t.ok(chat.responses['200'].content['application/json'].schema)
  t.same(chat.responses['200'].content['text/event-stream'].itemSchema.oneOf.map((s: any) => s.title), ['chat.completion.chunk', '[DONE]'])
})

t.test('/docs serves Swagger UI', async (t) => {
  const { url } = await startService(t)
  const res = await fetch(`${url}/docs`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/html/)
  t.match(await res.text(), /swagger-ui/i)
})

t.test('/ serves the demo page from static/', async (t) => {
  const { url } = await startService(t)
  const res = await fetch(`${url}/`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/html/)
})

t.test('an unexpected 5xx never shows its message or stack; coded and 4xx errors keep theirs', async (t) => {
  const app = await buildApp(loadConfig({ LOG_LEVEL: 'silent' }))
  t.teardown(() => app.close())
  app.get('/boom', async () => { throw new Error('database password is hunter2') })
  app.get('/teapot', async () => { throw Object.assign(new Error('short and stout'), { statusCode: 418 }) })
  app.get('/coded', async () => { throw Object.assign(new Error('The LLM server at x failed: y'), { statusCode: 502, code: 'SSE_ERR_UPSTREAM_FAILED' }) })
  const boom = await app.inject('/boom')
  t.equal(boom.statusCode, 500)
  t.same(boom.json(), { statusCode: 500, code: 'SSE_ERR_INTERNAL', error: 'Internal Server Error', message: 'Internal Server Error' })
  t.notMatch(boom.body, /hunter2|at .*\.ts/)
  const teapot = await app.inject('/teapot')
  t.equal(teapot.statusCode, 418)
  t.equal(teapot.json().message, 'short and stout')
  const coded = await app.inject('/coded')
  t.same(coded.json(), { statusCode: 502, code: 'SSE_ERR_UPSTREAM_FAILED', error: 'Bad Gateway', message: 'The LLM server at x failed: y' })
})

t.test('the demo model is reached at the address the server listens on', async (t) => {
  const app = await buildApp(loadConfig({ LOG_LEVEL: 'silent' }))
  t.teardown(() => app.close())
  t.throws(() => selfBaseURL(app), { code: 'SSE_ERR_UPSTREAM_UNREACHABLE' }, 'not before listening')
  await app.listen({ port: 0, host: '0.0.0.0' })
  t.match(selfBaseURL(app), /^http:\/\/127\.0\.0\.1:\d+\/v1$/, 'a wildcard address becomes loopback')
})
