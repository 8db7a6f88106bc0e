import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import { setImmediate as tick } from 'node:timers/promises'
import sse from '../../lib/index.js'
import { SSE_ERR_UPSTREAM_FAILED } from '../../routes/events/errors.js'
import { generate, SseEventError, SseProtocolError } from '../../lib/client/client.js'
import { listen } from '../helpers/http.js'

// A CR survives only because generate() asks for `format: 'json'` tokens.
const TOKENS = ['The', ' answer', ':\r\n', '  4', '2 🚀', '\n', 'end']
const DONE = { finish_reason: 'stop', usage: { prompt_tokens: 5, completion_tokens: TOKENS.length, total_tokens: 5 + TOKENS.length }, model: 'fake', demo: false }

interface FakeOptions {
  /** Ids after which the socket is cut. */
  drops?: number[]
  /** Resume after Last-Event-ID (else start a new generation, as a server without resume does). */
  resumable?: boolean
  /** Fail with this error after the first token. */
  failWith?: Error
}

interface Fake {
  base: string
  bodies: unknown[]
  lastEventIds: Array<string | undefined>
  generations: number
}

/** A stand-in for /events speaking its wire contract: ids `<generation>:<seq>`, JSON tokens, `done`. */
async function fakeEvents (t: Test, opts: FakeOptions = {}): Promise<Fake> {
  const app: FastifyInstance = Fastify({ forceCloseConnections: true })
  await app.register(sse, { heartbeatMs: 0 })
  t.teardown(() => app.close())
  const fake: Fake = { base: '', bodies: [], lastEventIds: [], generations: 0 }
  const cut = async (reply: FastifyReply): Promise<never> => {
    // After the frames are written; ending the socket (not destroying it) keeps queued writes.
    await tick()
    reply.raw.socket?.end()
    return await new Promise<never>(() => {})
  }
  app.post('/events', (request, reply) => {
    fake.bodies.push(request.body)
    const last = request.lastEventId
    fake.lastEventIds.push(last)
    let from = 0
    let generation = `gen${fake.generations}`
    if (last !== undefined && opts.resumable === true) {
      generation = last.split(':')[0]
      // Resend the last token too: the client must skip what it already has.
      from = Number(last.split(':')[1]) - 1
    } else {
      fake.generations++
      generation = `gen${fake.generations}`
    }
    return reply.sse<unknown>(async function * () {
      for (let seq = from + 1; seq <= TOKENS.length; seq++) {
        yield { id: `${generation}:${seq}`, data: JSON.stringify(TOKENS[seq - 1]) }
        if (opts.failWith !== undefined) { await tick(); throw opts.failWith }
        if (opts.drops?.includes(seq) === true && from < seq - 1) await cut(reply)
      }
      yield { id: `${generation}:${TOKENS.length + 1}`, event: 'done', data: DONE }
    })
  })
  fake.base = await listen(app)
  return fake
}

async function text (tokens: AsyncIterable<string>): Promise<string> {
  let out = ''
  for await (const token of tokens) out += token
  return out
}

t.test('streams tokens exactly and resolves done with the finish reason and usage', async (t) => {
  const fake = await fakeEvents(t)
  const gen = generate(fake.base, { prompt: 'What is it?', system: 'Be brief.', model: 'm1', max_tokens: 50 })
  t.equal(await text(gen), TOKENS.join(''))
  t.same(await gen.done, DONE)
  t.same(fake.bodies, [{
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is it?' }],
    model: 'm1',
    max_tokens: 50,
    format: 'json'
  }])
})

t.test('resumes a dropped generation after the last token, skipping tokens sent again', async (t) => {
  const fake = await fakeEvents(t, { drops: [2, 5], resumable: true })
  const gen = generate(fake.base + '/', { messages: [{ role: 'user', content: 'hi' }], retryMs: 1 })
  t.equal(await text(gen), TOKENS.join(''))
  t.same(await gen.done, DONE)
  t.equal(fake.generations, 1, 'one generation: no second upstream call')
  t.same(fake.lastEventIds, [undefined, 'gen1:2', 'gen1:5'])
})

t.test('refuses to splice a new generation onto a dropped one', async (t) => {
  const fake = await fakeEvents(t, { drops: [3] })
  const gen = generate(fake.base, { prompt: 'hi', retryMs: 1 })
  const tokens: string[] = []
  await t.rejects((async () => { for await (const token of gen) tokens.push(token) })(),
    { name: 'SseProtocolError', message: /started a new generation instead of resuming gen1 after 3 tokens/ })
  t.same(tokens, TOKENS.slice(0, 3), 'the tokens before the drop were delivered')
  await t.rejects(gen.done, SseProtocolError)
})

t.test("throws SseEventError with the server's code on an error event", async (t) => {
  const fake = await fakeEvents(t, { failWith: new SSE_ERR_UPSTREAM_FAILED('it fell over') })
  const gen = generate(fake.base, { prompt: 'hi' })
  const err = await text(gen).catch((e: unknown) => e)
  t.ok(err instanceof SseEventError)
  t.match(err, { code: 'SSE_ERR_UPSTREAM_FAILED', statusCode: 502, message: /it fell over/ })
  await t.rejects(gen.done, SseEventError)
})

t.test('fails when the server stops the stream (204) before the done event', async (t) => {
  const app = Fastify({ forceCloseConnections: true })
  await app.register(sse, { heartbeatMs: 0 })
  t.teardown(() => app.close())
  // What /events does while generations are not resumable: a reconnection gets 204.
  app.post('/events', (request, reply) => request.lastEventId !== undefined
    ? reply.code(204).send()
    : reply.sse(async function * () {
      yield { id: 'g:1', data: '"partial"' }
      await tick()
      reply.raw.socket?.end()
    }))
  const base = await listen(app)
  const gen = generate(base, { prompt: 'hi', retryMs: 1 })
  await t.rejects(text(gen), { name: 'SseProtocolError', message: /ended the stream without a done event/ })
})

t.test('a generation can be iterated only once, and needs a prompt or messages', async (t) => {
  const fake = await fakeEvents(t)
  const gen = generate(fake.base, { prompt: 'hi' })
  await text(gen)
  t.throws(() => gen[Symbol.asyncIterator](), TypeError)
  t.throws(() => generate(fake.base, {}), { message: 'generate() needs either prompt or messages' })
})
