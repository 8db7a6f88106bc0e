// The demo page in a real browser: headless Chromium's own EventSource against the real app
// (buildApp, the built-in demo model over real HTTP). Skipped, with the reason, without Chromium.
import t from 'tap'
import type { Page } from 'playwright-core'
import { openStream } from '../helpers/http.js'
import { chromiumMissing } from '../helpers/browser.js'
import { openDemo as page, serve, type Served } from './demo-app.js'

// Every test here needs the browser; without it they are reported as skipped, with the reason.
const skip = chromiumMissing()

const answerLength = (p: Page): Promise<number> => p.evaluate(() => document.getElementById('answer')!.textContent!.length)
const answerState = (p: Page): Promise<string> => p.evaluate(() => document.getElementById('answer')!.dataset.state!)

/** The /events requests the page made (the test's own excluded). */
const fromPage = (served: Served): Served['requests'] => served.requests.filter((r) =>
  r.url.startsWith('/events?') && /Chrome/.test(r.req.headers['user-agent'] ?? ''))

/** The answer the same prompt gets from /events directly: the page must show exactly this. */
async function expectedAnswer (base: string, prompt: string): Promise<{ text: string, tokens: number }> {
  const stream = await openStream(`${base}/events?prompt=${encodeURIComponent(prompt)}`)
  await stream.ended
  const tokens = stream.events.filter((e) => e.event === undefined || e.event === 'message')
  return { text: tokens.map((e) => e.data).join(''), tokens: tokens.length }
}

t.test('the answer grows token by token, then shows the timing, the usage and the demo model', { skip }, async (t) => {
  const served = await serve(t, { DEMO_TOKEN_DELAY_MS: '30' })
  const p = await page(t, served)
  const prompt = 'How does a browser resume an event stream?'
  await p.fill('#prompt', prompt)
  await p.click('#generate')

  // Sample the answer while it streams: each sample waits for the text to grow past the last one.
  const lengths: number[] = []
  let last = 0
  for (let i = 0; i < 3; i++) {
    await p.waitForFunction((n) => document.getElementById('answer')!.textContent!.length > n, last, { polling: 'raf' })
    const [length, state] = await Promise.all([answerLength(p), answerState(p)])
    t.equal(state, 'streaming', `sample ${i + 1} was taken before the answer was done`)
    lengths.push(length)
    last = length
  }
  t.ok(lengths[0] < lengths[1] && lengths[1] < lengths[2], `three increasing lengths: ${lengths.join(' < ')}`)

  await p.waitForFunction(() => document.getElementById('answer')!.dataset.state === 'done')
  const shown = await p.textContent('#answer')
  const expected = await expectedAnswer(served.base, prompt)
  t.equal(shown, expected.text, 'the page shows exactly the tokens /events sent, in order')
  t.ok(shown!.length > lengths[2], 'the answer kept growing after the samples')
  t.equal(await p.textContent('#tokens'), String(expected.tokens), 'the token count matches the events received')
  t.match(await p.textContent('#ttft'), /^\d+(\.\d+)? m?s$/, 'time to first token is shown')
  t.match(await p.textContent('#tps'), /^\d+\.\d$/, 'tokens per second is shown')
  t.match(await p.textContent('#model-name'), /demo-markov.*built-in demo model/, 'the demo model is named and labelled')
  t.match(await p.textContent('#finish'), /completion tokens/, 'the usage from the done event is shown')
  t.equal(await p.isDisabled('#stop'), true, 'Stop is disabled once done')

  const [request, ...more] = fromPage(served)
  t.same(more, [], 'one connection for one answer')
  t.equal(await request.closedEarly, false, 'which the server ended after done, and nothing asked again')
  t.equal(served.requests.filter((r) => r.url.startsWith('/v1/chat/completions')).length, 2, 'the model was asked once for the page, once for the test')
})

// With resumable answers (the service's default) a closed connection is a client that may come
// back, so Stop must also tell the server; without them, the close alone cancels the answer. A long
// grace period makes sure that in the first case only the stop request can abort the upstream in time.
for (const resume of ['on', 'off']) {
  t.test(`Stop ends the answer and the server cancels the upstream request (resumable answers ${resume})`, { skip }, async (t) => {
    const served = await serve(t, { DEMO_TOKEN_DELAY_MS: '40', EVENTS_RESUME: resume, RESUME_GRACE_MS: '600000' })
    const p = await page(t, served)
    await p.fill('#prompt', 'Write a long story about sockets.')
    await p.click('#generate')
    await p.waitForFunction(() => Number(document.getElementById('tokens')!.textContent) >= 3)
    t.equal(await p.isDisabled('#stop'), false, 'Stop is enabled while streaming')
    await p.click('#stop')

    t.match(await p.textContent('#gen-status'), /^Stopped after \d+ tokens?\.$/, 'the page says it stopped')
    t.equal(await answerState(p), 'stopped', 'the answer is marked stopped')

    const upstream = served.requests.find((r) => r.url.startsWith('/v1/chat/completions'))
    t.ok(upstream, '/events asked the demo model over HTTP')
    t.equal(await upstream!.closedEarly, true, 'the upstream request was aborted before the model finished')
    if (resume === 'on') {
      const stop = served.requests.find((r) => r.req.method === 'POST' && /^\/events\/[\w-]{22}\/stop$/.test(r.url))
      t.ok(stop, 'the page asked the server to stop its generation')
      await stop!.closedEarly
      t.equal(stop!.res.statusCode, 204, 'and the server stopped it')
    } else {
      // (With resuming the stop may end the response first: either way is right.)
      t.equal(await fromPage(served)[0].closedEarly, true, 'the page closed its /events request before it ended')
    }
  })
}

t.test('after the server drops the connection mid-answer, the page resumes it with no token lost or repeated', { skip }, async (t) => {
  const served = await serve(t, { DEMO_TOKEN_DELAY_MS: '30', EVENTS_RESUME: 'on' })
  const p = await page(t, served)
  const prompt = 'What happens when the network drops?'
  await p.fill('#prompt', prompt)
  await p.click('#generate')
  await p.waitForFunction(() => Number(document.getElementById('tokens')!.textContent) >= 5)
  const stream = served.requests.find((r) => r.url.startsWith('/events?'))!
  stream.req.socket.destroy()

  await p.waitForFunction(() => /reconnecting to resume/.test(document.getElementById('gen-status')!.textContent!))
  t.pass('the page says it is reconnecting')
  // Every status line from here on, however briefly shown.
  await p.evaluate(() => {
    const el = document.getElementById('gen-status')!
    const seen: string[] = [];
    (window as any).statuses = seen
    new MutationObserver(() => seen.push(el.textContent!)).observe(el, { childList: true, characterData: true, subtree: true })
  })
  await p.waitForFunction(() => document.getElementById('answer')!.dataset.state === 'done')
  const statuses: string[] = await p.evaluate(() => (window as any).statuses)
  t.ok(statuses.some((s) => /^Reconnected — resumed at token \d+$/.test(s)), `the page said where it resumed: ${JSON.stringify(statuses)}`)
  const expected = await expectedAnswer(served.base, prompt)
  t.equal(await p.textContent('#answer'), expected.text, 'the answer is whole and exact, as if never dropped')
  t.equal(await p.textContent('#tokens'), String(expected.tokens), 'every token counted once')
  t.equal(fromPage(served).length, 2, 'the page reconnected once')
  const resumed = fromPage(served)[1]
  t.match(resumed.req.headers['last-event-id'], /^[\w-]+:\d+$/, 'the reconnect carried the last id the page saw')
  t.equal(served.requests.filter((r) => r.url.startsWith('/v1/chat/completions')).length, 2,
    'the model was asked once for the page and once for the test: the resume did not ask again')
})

t.test('without resumable answers, a dropped connection leaves the partial answer marked incomplete', { skip }, async (t) => {
  const served = await serve(t, { DEMO_TOKEN_DELAY_MS: '30', EVENTS_RESUME: 'off' })
  const p = await page(t, served)
  await p.fill('#prompt', 'What happens when the network drops?')
  await p.click('#generate')
  await p.waitForFunction(() => Number(document.getElementById('tokens')!.textContent) >= 5)
  served.requests.find((r) => r.url.startsWith('/events?'))!.req.socket.destroy()

  await p.waitForFunction(() => document.getElementById('answer')!.dataset.state === 'failed')
  t.match(await p.textContent('#gen-error'), /lost after \d+ tokens.*incomplete/, 'the page says the answer is incomplete')
  t.ok((await answerLength(p)) > 0, 'the partial answer stays on screen')
  const reconnects = served.requests.filter((r) => r.url.startsWith('/events?'))
  t.equal(reconnects.length, 2, 'the browser tried once more')
  t.equal(reconnects[1].res.statusCode, 204, 'and the server ended it with 204 instead of running the prompt again')
  t.equal(served.requests.filter((r) => r.url.startsWith('/v1/chat/completions')).length, 1, 'the model was asked once')
})

t.test('errors are shown in words, and Ctrl+Enter submits from the keyboard', { skip }, async (t) => {
  const served = await serve(t, { EVENTS_MAX_PROMPT_CHARS: '40' })
  const p = await page(t, served)

  await p.fill('#prompt', '   ')
  await p.focus('#prompt')
  await p.keyboard.press('Control+Enter')
  t.equal(await p.textContent('#gen-error'), 'Type a prompt first.', 'an empty prompt is caught before any request')
  t.equal(served.requests.filter((r) => r.url.startsWith('/events')).length, 0, 'nothing was sent')

  await p.fill('#prompt', 'x'.repeat(41))
  await p.keyboard.press('Control+Enter')
  await p.waitForFunction(() => /HTTP 400/.test(document.getElementById('gen-error')!.textContent!))
  const error = await p.textContent('#gen-error')
  t.match(error, /prompt/, `the server's reason names the field: ${error}`)
  t.equal(await answerState(p), 'failed', 'the answer is marked failed')
  t.equal(await p.isDisabled('#stop'), true, 'nothing left to stop')
  t.equal(fromPage(served).length, 1, 'one request: the reason came with the refusal, and it is not retried')
})

t.test('the page is usable at a phone width and links to the API docs', { skip }, async (t) => {
  const served = await serve(t)
  const p = await page(t, served, { width: 360 })
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  t.equal(overflow, 0, 'no horizontal scrolling at 360 px')
  for (const label of ['Prompt', 'Minimum level', 'Max tokens', 'Temperature', 'System prompt (optional)']) {
    t.equal(await p.getByLabel(label, { exact: true }).count(), 1, `a control is labelled "${label}"`)
  }
  t.equal(await p.getAttribute('#answer', 'aria-live'), 'polite', 'screen readers hear the answer')
  const docs = await p.getAttribute('a[href$="docs"]', 'href')
  const res = await fetch(new URL(docs!, served.base + '/'))
  t.equal(res.status, 200, 'the docs link leads to Swagger UI')
  t.match(await res.text(), /swagger/i, 'and it is Swagger UI')
})
