// The demo page's Generate in Chromium, where it meets the server's failures and the page's end:
// a refusal is explained from the same request (the model is never asked twice for one click),
// a server that is down is named as such, and closing the page stops the generation.
import t from 'tap'
import { chromiumMissing } from '../helpers/browser.js'
import { startFakeUpstream } from '../fixtures/fake-upstream.js'
import { openDemo, serve } from './demo-app.js'

const skip = chromiumMissing()

t.test('a refused generation is explained from the refusal itself: the model is asked once', { skip }, async (t) => {
  const fake = await startFakeUpstream({ kind: 'status', status: 500, message: 'model crashed' })
  t.teardown(() => fake.close())
  const served = await serve(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm' })
  const p = await openDemo(t, served)
  await p.click('#generate')
  await p.waitForFunction(() => document.getElementById('answer')!.dataset.state === 'failed')
  t.match(await p.textContent('#gen-error'), /^The server refused the request \(HTTP 502\): .*SSE_ERR_UPSTREAM/, 'the 502 and its code are shown')
  t.equal(fake.requests.filter((r) => r.url.endsWith('/chat/completions')).length, 1, 'the upstream was asked once for one click')
  t.equal(served.requests.filter((r) => r.url.startsWith('/events?')).length, 1, 'one /events request')
})

t.test('with the server gone the page says it cannot reach it, not that a stream was lost', { skip }, async (t) => {
  const served = await serve(t)
  const p = await openDemo(t, served)
  await p.waitForFunction(() => document.getElementById('ticker-conn')!.dataset.state === 'live')
  await served.app.close()
  await p.click('#generate')
  await p.waitForFunction(() => document.getElementById('answer')!.dataset.state === 'failed')
  t.match(await p.textContent('#gen-error'), /^Cannot reach the server/, 'the error names the cause')
})

t.test('the page names the built-in demo model before the first answer', { skip }, async (t) => {
  const served = await serve(t)
  const p = await openDemo(t, served)
  await p.waitForFunction(() => /built-in demo model/.test(document.getElementById('model-name')!.textContent!))
  t.match(await p.textContent('#model-name'), /^demo-markov built-in demo model$/, 'the model and the badge')
  t.equal(served.requests.filter((r) => r.url.startsWith('/events')).length, 0, 'before anything was generated')
})

t.test('closing the page stops its generation on the server (resumable answers on)', { skip }, async (t) => {
  // A grace period longer than the test: only the page's stop can end the upstream request early.
  const served = await serve(t, { DEMO_TOKEN_DELAY_MS: '40', RESUME_GRACE_MS: '600000' })
  const p = await openDemo(t, served)
  await p.fill('#prompt', 'Write a long story about sockets.')
  await p.click('#generate')
  await p.waitForFunction(() => Number(document.getElementById('tokens')!.textContent) >= 3)
  await p.close()
  const upstream = served.requests.find((r) => r.url.startsWith('/v1/chat/completions'))!
  t.equal(await upstream.closedEarly, true, 'the upstream request was aborted before the model finished')
  t.ok(served.requests.some((r) => r.req.method === 'POST' && /^\/events\/[\w-]{22}\/stop$/.test(r.url)), 'by the stop beacon')
})
