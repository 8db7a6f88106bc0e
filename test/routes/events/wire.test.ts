// Tokens that break naive SSE code (newlines, CRLF, leading spaces, emoji and ZWJ sequences)
// arrive exactly, through the `eventsource` client and through `eventsource-parser`.
import t from 'tap'
import { EventSource } from 'eventsource'
import { startFakeUpstream } from '../../fixtures/fake-upstream.js'
import { startService, readEvents } from '../../fixtures/service.js'

const TOKENS = ['Line one\n', '\nLine three', ' leading space', '  two spaces', 'tab\there', '😀', ' 👩‍💻 done', 'é', '\n', 'crlf\r\nend', 'lone\rcr', ' ']
// The SSE parser turns CR and CRLF into LF (WHATWG HTML §9.2.6), whoever wrote the stream.
const AS_TEXT = TOKENS.map((tok) => tok.replace(/\r\n|\r/g, '\n'))

async function setup (t: any): Promise<string> {
  const fake = await startFakeUpstream({ kind: 'normal', tokens: TOKENS })
  t.teardown(() => fake.close())
  const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm' })
  return url
}

function viaEventSource (url: string): Promise<{ tokens: string[], done: any }> {
  return new Promise((resolve, reject) => {
    const es = new EventSource(url)
    const tokens: string[] = []
    es.onmessage = (e) => { tokens.push(e.data) }
    es.addEventListener('done', (e) => { es.close(); resolve({ tokens, done: JSON.parse(e.data) }) })
    es.onerror = (e) => { es.close(); reject(new Error(`EventSource error: ${e.message ?? 'unknown'}`)) }
  })
}

t.test('through the eventsource client: every token as sent, CR and CRLF as LF', async (t) => {
  const url = await setup(t)
  const { tokens, done } = await viaEventSource(`${url}/events?prompt=hi`)
  t.same(tokens, AS_TEXT)
  t.equal(tokens.join(''), AS_TEXT.join(''), 'out += e.data rebuilds the answer')
  t.equal(done.finish_reason, 'stop')
})

t.test('through eventsource-parser: every token as sent, CR and CRLF as LF', async (t) => {
  const url = await setup(t)
  const events = await readEvents(await fetch(`${url}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] })
  }))
  t.same(events.filter((e) => e.event === undefined).map((e) => e.data), AS_TEXT)
})

t.test('format=json carries every token exactly, CR included, through both clients', async (t) => {
  const url = await setup(t)
  const { tokens } = await viaEventSource(`${url}/events?prompt=hi&format=json`)
  t.same(tokens.map((d) => JSON.parse(d)), TOKENS)
  const events = await readEvents(await fetch(`${url}/events?prompt=hi&format=json`))
  t.same(events.filter((e) => e.event === undefined).map((e) => JSON.parse(e.data)), TOKENS)
})
