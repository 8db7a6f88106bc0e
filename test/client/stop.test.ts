// Leaving on purpose stops the generation on the server: with resuming on (the demo service's
// default) a plain disconnect would keep the upstream request running for the grace period.
import t, { type Test } from 'tap'
import { startFakeUpstream, type FakeUpstream } from '../fixtures/fake-upstream.js'
import { readEvents, startService } from '../fixtures/service.js'
import { generate } from '../../lib/client/client.js'

// Long enough that the upstream cannot finish by itself while the test looks (2000 × 20 ms).
const TOKENS = Array.from({ length: 2000 }, (_, i) => ` t${i}`)

async function setup (t: Test): Promise<{ fake: FakeUpstream, url: string }> {
  const fake = await startFakeUpstream({ kind: 'normal', tokens: TOKENS, delayMs: 20 })
  t.teardown(() => fake.close())
  // A grace period far longer than the test: only a stop can end the upstream request early.
  const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm', RESUME_GRACE_MS: '600000' })
  return { fake, url }
}

/** Resolves with the upstream exchange's end, or rejects after `ms` (generous: no timing claim). */
async function closedWithin (fake: FakeUpstream, ms: number): Promise<{ aborted: boolean }> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((resolve, reject) => { timer = setTimeout(() => reject(new Error(`the upstream request was still open after ${ms} ms`)), ms) })
  try {
    return await Promise.race([fake.requests[0].closed, late])
  } finally {
    clearTimeout(timer)
  }
}

/** A `fetch` that records what the client asked and what it got. */
function recordingFetch (): { fetch: typeof fetch, calls: Array<{ method: string, url: string, status: number }> } {
  const calls: Array<{ method: string, url: string, status: number }> = []
  return {
    calls,
    fetch: async (input, init) => {
      const res = await fetch(input, init)
      calls.push({ method: init?.method ?? 'GET', url: String(input), status: res.status })
      return res
    }
  }
}

/** The events a reconnect to the generation gets (bounded: a running one would stream for long). */
async function reconnect (url: string, lastEventId: string): Promise<Array<{ event?: string, data: string }>> {
  const res = await fetch(`${url}/events?prompt=x`, { headers: { 'last-event-id': lastEventId }, signal: AbortSignal.timeout(10_000) })
  return await readEvents(res)
}

t.test('breaking out of generate() after 3 tokens stops the generation and its upstream request', async (t) => {
  const { fake, url } = await setup(t)
  const rec = recordingFetch()
  const seen: string[] = []
  for await (const token of generate(url, { prompt: 'count', fetch: rec.fetch })) {
    seen.push(token)
    if (seen.length === 3) break
  }
  t.same(seen, TOKENS.slice(0, 3))
  const end = await closedWithin(fake, 10_000)
  t.equal(end.aborted, true, 'the upstream request was cut short, not run to its end')
  const stop = rec.calls.find((c) => c.method === 'DELETE')
  t.match(stop, { url: new RegExp(`^${url}/events/[A-Za-z0-9_-]{22}$`), status: 204 }, 'the client asked the server to stop it')
  // Stopped, not merely detached: a detached generation would replay its tokens to a reconnect.
  const generation = stop!.url.slice(stop!.url.lastIndexOf('/') + 1)
  const rest = await reconnect(url, `${generation}:3`)
  t.match(rest.at(-1), { event: 'done', data: /"finish_reason":"stopped"/ }, 'a reconnect gets what was left in the buffer, then done: stopped')
  t.equal(fake.requests.length, 1, 'the upstream was asked once')
})

t.test('aborting the signal of generate() stops the generation too', async (t) => {
  const { fake, url } = await setup(t)
  const rec = recordingFetch()
  const ac = new AbortController()
  let n = 0
  await t.rejects((async () => {
    for await (const token of generate(url, { prompt: 'count', signal: ac.signal, fetch: rec.fetch })) {
      void token
      if (++n === 3) ac.abort(new Error('enough'))
    }
  })(), { message: 'enough' })
  t.equal((await closedWithin(fake, 10_000)).aborted, true, 'the upstream request was cut short')
  t.match(rec.calls.filter((c) => c.method === 'DELETE'), [{ status: 204 }], 'one stop, accepted')
})

t.test('a generation that ends with done sends no stop', async (t) => {
  const fake = await startFakeUpstream({ kind: 'normal', tokens: ['a', 'b'] })
  t.teardown(() => fake.close())
  const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm' })
  const rec = recordingFetch()
  let text = ''
  for await (const token of generate(url, { prompt: 'hi', fetch: rec.fetch })) text += token
  t.equal(text, 'ab')
  t.same(rec.calls.map((c) => c.method), ['POST'], 'only the generation itself')
})
