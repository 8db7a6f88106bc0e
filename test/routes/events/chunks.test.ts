import t from 'tap'
import OpenAI from 'openai'
import { readChunks } from '../../../routes/events/chunks.js'

/** A response whose body arrives in these reads. */
function respond (reads: string[]): Response {
  const bytes = reads.map((r) => new TextEncoder().encode(r))
  return new Response(new ReadableStream({
    pull (controller) {
      const next = bytes.shift()
      if (next === undefined) controller.close()
      else controller.enqueue(next)
    }
  }), { headers: { 'content-type': 'text/event-stream' } })
}

const chunk = (content: string): string => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`

t.test('every chunk of a read is handed over in order, also one split across reads and a multi-byte character cut in two', async (t) => {
  const wave = chunk(' 🌊')
  const cut = Buffer.from(wave).length - 6
  const whole = Buffer.from(chunk('a') + chunk('b') + wave + chunk('c'))
  const reads = [whole.subarray(0, Buffer.from(chunk('a') + chunk('b')).length + cut), whole.subarray(Buffer.from(chunk('a') + chunk('b')).length + cut)]
  const body = new ReadableStream({ pull (c) { const r = reads.shift(); if (r === undefined) c.close(); else c.enqueue(new Uint8Array(r)) } })
  const got: string[] = []
  let reads2 = 0
  const n = await readChunks(new Response(body), OpenAI, (c) => { got.push(c.choices[0].delta.content ?? '') }, () => { reads2++ })
  t.same(got, ['a', 'b', ' 🌊', 'c'])
  t.equal(n, 4)
  t.equal(reads2, 2)
})

t.test('a promise from the consumer holds the next read until it settles', async (t) => {
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  let reads = 0
  const got: string[] = []
  const done = readChunks(respond([chunk('a') + chunk('b'), chunk('c')]), OpenAI, (c) => {
    got.push(c.choices[0].delta.content ?? '')
    return got.length === 1 ? held : undefined
  }, () => { reads++ })
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
  t.same(got, ['a', 'b'], 'the rest of the read is handed over')
  t.equal(reads, 1, 'but no further read is made')
  release()
  await done
  t.same(got, ['a', 'b', 'c'])
})

t.test('[DONE] ends the answer: what follows is read but not parsed', async (t) => {
  const got: string[] = []
  const n = await readChunks(respond([chunk('a') + 'data: [DONE]\n\n' + 'data: not json\n\n', chunk('late')]), OpenAI, (c) => { got.push(c.choices[0].delta.content ?? '') }, () => {})
  t.same(got, ['a'])
  t.equal(n, 1)
})

t.test('an error object is the SDK\'s APIError and a line that is not JSON a SyntaxError, after the chunks before them', async (t) => {
  const got: string[] = []
  const onChunk = (c: any): void => { got.push(c.choices[0].delta.content) }
  const err = await readChunks(respond([chunk('a') + 'data: {"error":{"message":"overloaded"}}\n\n' + chunk('never')]), OpenAI, onChunk, () => {}).catch((e) => e)
  t.ok(err instanceof OpenAI.APIError, 'the SDK\'s own error class')
  t.equal(err.status, undefined)
  t.match(err.message, /overloaded/)
  t.same(got, ['a'])
  await t.rejects(readChunks(respond([chunk('b') + 'data: {oops\n\n']), OpenAI, onChunk, () => {}), SyntaxError)
  t.same(got, ['a', 'b'])
})

t.test('a body that is not an event stream has no chunks', async (t) => {
  t.equal(await readChunks(respond(['{"choices":[]}']), OpenAI, () => { t.fail('no chunk') }, () => {}), 0)
})
