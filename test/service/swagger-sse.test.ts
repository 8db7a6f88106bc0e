import t from 'tap'
import { startService } from '../fixtures/service.js'

t.test('the OpenAPI document lists each stream\'s events where Swagger UI shows them, with useful examples', async (t) => {
  const { app } = await startService(t)
  const doc = (await app.inject('/docs/json')).json()
  for (const [path, names] of [['/events', ['message', 'done', 'error']], ['/ticker', ['snapshot', 'quote']], ['/logs', ['log', 'gap']]] as const) {
    const ok = doc.paths[path].get.responses['200']
    for (const name of names) t.match(ok.description, `- \`${name}\``, `${path} lists its ${name} event`)
    t.type(ok.content['text/event-stream'].itemSchema, 'object', `${path} keeps its itemSchema`)
    t.match(ok.content['text/event-stream'].example, /data: /, `${path} shows an example of the wire text, not "string"`)
  }
  t.match(doc.paths['/events'].get.responses['200'].description, /"finish_reason"/, 'with the JSON schema of data')
  // @fastify/swagger turns a schema's `examples` into the media type's and the parameter's `example`.
  const body = doc.paths['/events'].post.requestBody.content['application/json']
  t.same(body.example, { messages: [{ role: 'user', content: 'Explain server-sent events in a few sentences.' }] },
    'the POST example is a user message, with the server\'s model and no max_tokens')
  const prompt = doc.paths['/events'].get.parameters.find((p: { name: string }) => p.name === 'prompt')
  t.equal(prompt.example, 'Explain server-sent events in a few sentences.', 'the GET example is a prompt')
})
