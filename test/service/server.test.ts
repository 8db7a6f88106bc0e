// `npm start` as users run it: `node dist/service/server.js` in a child process. In CI `npm ci` has
// already built dist/ (`prepare`); locally it is rebuilt here when a source is newer.
import t from 'tap'
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { statSync } from 'node:fs'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { readEvents } from '../fixtures/service.js'
import { openStream } from '../helpers/http.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const SERVER = root + 'dist/service/server.js'
const SOURCES = ['service/server', 'service/app', 'service/config', 'service/package-root', 'routes/events/index',
  'routes/events/llm', 'routes/events/llm-errors', 'routes/events/upstream', 'routes/events/schema',
  'routes/demo-model/index', 'routes/demo-model/text']

function stale (): boolean {
  return SOURCES.some((name) => {
    try {
      return statSync(`${root}${name}.ts`).mtimeMs > statSync(`${root}dist/${name}.js`).mtimeMs
    } catch {
      return true
    }
  })
}

t.before(() => {
  if (!stale()) return
  // tsc still emits when another module has a type error; what matters is that ours are fresh.
  try { execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' }) } catch {}
  if (stale()) throw new Error('dist/service/server.js is older than its sources and `npm run build` did not refresh it')
})

interface Running { child: ChildProcess, url: string, output: () => string }

/** Starts the server on a free port and waits for the line telling where to point a browser. */
async function start (t: any, env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [SERVER], {
    cwd: root,
    env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', DEMO_TOKEN_DELAY_MS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const m = /Open (http:\/\/[^ ]+\/) for the demo page/.exec(output)
      if (m !== null) resolve(m[1])
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)))
  })
  return { child, url, output: () => output }
}

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
