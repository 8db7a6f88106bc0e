// `npm start` as users run it (test/fixtures/server-process.ts).
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readEvents } from '../fixtures/service.js'
import { ensureBuilt, root, SERVER, startServer as start } from '../fixtures/server-process.js'
import { openStream } from '../helpers/http.js'

t.before(ensureBuilt)

t.test('npm start serves the demo page, Swagger UI and a streaming /events with no LLM installed', async (t) => {
  const { url } = await start(t)
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  const page = await fetch(url)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /text\/html/)
  await page.text()
  const docs = await fetch(`${url}docs`)
  t.equal(docs.status, 200)
  await docs.text()
  const res = await fetch(`${url}events?prompt=Hello`)
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  const events = await readEvents(res)
  t.ok(events.filter((e) => e.event === undefined).length > 3, 'tokens streamed')
  t.equal(events.at(-1)?.event, 'done')
  t.equal(JSON.parse(events.at(-1)?.data ?? '{}').demo, true)
})

t.test('SIGTERM closes gracefully: an open stream ends and the process exits with 0', async (t) => {
  const { child, url } = await start(t, { DEMO_TOKEN_DELAY_MS: '500' })
  const stream = await openStream(`${url}events?prompt=Hello`)
  await stream.waitForEvents(1)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  await stream.ended
  // 0: closed gracefully. A stream that held the close would have been cut by close-with-grace's
  // timeout, which exits with 1.
  t.equal(code, 0)
})

t.test('a bad environment variable stops the start with a message naming it', async (t) => {
  const child = spawn(process.execPath, [SERVER], { cwd: root, env: { PATH: process.env.PATH, PORT: 'eighty' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const [code] = await once(child, 'exit')
  t.equal(code, 1)
  t.match(stderr, /^SSE_ERR_INVALID_CONFIG: .*PORT.*"eighty"/, 'the code comes first, as the docs list it')
})
