// The CLI as users run it: `node dist/lib/client/cli.js` in a child process, against real servers. In CI
// `npm ci` has already built dist/ (`prepare`); locally it is rebuilt here when a source is newer.
import t, { type Test } from 'tap'
import { spawn, execFileSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import sse from '../../lib/index.js'
import { SSE_ERR_UPSTREAM_FAILED } from '../../routes/events/errors.js'
import { buildApp } from '../../service/app.js'
import { loadConfig } from '../../service/config.js'
import { generate } from '../../lib/client/client.js'
import { deferred, listen } from '../helpers/http.js'
import { startFakeUpstream } from '../fixtures/fake-upstream.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const CLI = root + 'dist/lib/client/cli.js'

function stale (): boolean {
  return ['cli', 'client'].some((name) => {
    try {
      return statSync(`${root}lib/client/${name}.ts`).mtimeMs > statSync(`${root}dist/lib/client/${name}.js`).mtimeMs
    } catch {
      return true
    }
  })
}

t.before(() => {
  if (!stale()) return
  // tsc still emits when another module has a type error; what matters is that ours are fresh.
  try { execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' }) } catch {}
  if (stale()) throw new Error('dist/lib/client/cli.js is older than its sources and `npm run build` did not refresh it')
})

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs the CLI; `onStdout` sees stdout as it grows (to act mid-stream). */
async function cli (args: string[], onStdout?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; onStdout?.(stdout, child) })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  return await new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

async function server (t: Test): Promise<FastifyInstance> {
  const app = Fastify({ forceCloseConnections: true })
  await app.register(sse, { heartbeatMs: 0 })
  t.teardown(() => app.close())
  return app
}

t.test("ask prints the built-in demo model's deterministic answer, with timing and usage on stderr", async (t) => {
  const app = await buildApp(loadConfig({ DEMO_TOKEN_DELAY_MS: '0', RATE_LIMIT_MAX: '0', LOG_LEVEL: 'silent' }))
  t.teardown(() => app.close())
  const base = await listen(app)
  let expected = ''
  for await (const token of generate(base, { prompt: 'How do I stream tokens?' })) expected += token
  t.ok(expected.length > 20, 'the demo model answered')

  const run = await cli(['ask', 'How do I stream tokens?', '--url', base])
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, expected.endsWith('\n') ? expected : expected + '\n', 'the same answer, byte for byte, ending with a newline for a file')
  t.match(run.stderr, /^first token \d+ ms · \d+ tokens in \d+\.\d s \([\d.-]+ tokens\/s\) · usage \d+ prompt \+ \d+ completion = \d+ · finish \w+ · model demo-markov \(built-in demo model\)\n$/)
  t.notMatch(run.stderr, '\x1b', 'no live status line when stderr is not a terminal')
})

t.test('ask sends --system, --model, --max-tokens and --header, and exits 1 on an error event', async (t) => {
  const app = await server(t)
  let request: { body: unknown, headers: Record<string, unknown> } | undefined
  app.post('/api/events', (req, reply) => {
    request = { body: req.body, headers: req.headers }
    return reply.sse(async function * () {
      yield { id: 'g:1', data: JSON.stringify('Half an ans') }
      throw new SSE_ERR_UPSTREAM_FAILED('connection reset')
    })
  })
  const base = await listen(app)
  const run = await cli(['ask', 'two', 'words', '--url', base + '/api', '--system', 'terse', '--model', 'm2',
    '--max-tokens', '7', '--header', 'Authorization: Bearer s3cret'])
  t.equal(run.code, 1)
  t.equal(run.stdout, 'Half an ans')
  t.match(run.stderr, 'the server reported SSE_ERR_UPSTREAM_FAILED: The LLM server failed: connection reset')
  t.same(request?.body, {
    messages: [{ role: 'system', content: 'terse' }, { role: 'user', content: 'two words' }],
    model: 'm2',
    max_tokens: 7,
    format: 'json'
  })
  t.equal(request?.headers.authorization, 'Bearer s3cret')
})

t.test('tail --json prints one JSON object a line and stops after done', async (t) => {
  const app = await server(t)
  const sent = [
    { id: '1', data: 'plain' },
    { event: 'tick', data: { price: 1.5 }, retry: 500 },
    { id: '3', data: 'two\nlines' },
    { event: 'done', data: { ok: true } }
  ]
  let lastEventId: string | undefined
  app.get('/feed', (request, reply) => { lastEventId = request.lastEventId; return reply.sse<unknown>(sent) })
  const base = await listen(app)
  const run = await cli(['tail', base + '/feed', '--json', '--last-event-id', '0', '--header', 'x-trace: abc'])
  t.equal(run.code, 0, run.stderr)
  t.equal(lastEventId, '0', '--last-event-id is sent')
  const lines = run.stdout.split('\n')
  t.equal(lines.pop(), '', 'every line ends with a newline')
  t.same(lines.map((line) => JSON.parse(line)), [
    { event: 'message', data: 'plain', id: '1' },
    { event: 'tick', data: '{"price":1.5}', retry: 500 },
    { event: 'message', data: 'two\nlines', id: '3' },
    { event: 'done', data: '{"ok":true}' }
  ])
})

t.test('tail without --json prints data, [event] prefixes, and --event filters', async (t) => {
  const app = await server(t)
  app.get('/feed', (request, reply) => reply.sse<unknown>([
    'hello', { event: 'tick', data: { n: 1 } }, { event: 'tick', data: { n: 2 } }, { event: 'done', data: {} }
  ]))
  const base = await listen(app)
  const all = await cli(['tail', base + '/feed'])
  t.equal(all.stdout, 'hello\n[tick] {"n":1}\n[tick] {"n":2}\n[done] {}\n')
  const ticks = await cli(['tail', base + '/feed', '--event', 'tick'])
  t.equal(ticks.stdout, '{"n":1}\n{"n":2}\n')
  t.equal(ticks.code, 0)
})

t.test('SIGINT exits 130 and the server sees the disconnect', async (t) => {
  const app = await server(t)
  const closed = deferred()
  app.get('/forever', (request, reply) => reply.sse(async function * ({ signal }) {
    try {
      for (let i = 0; !signal.aborted; i++) {
        yield String(i)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    } finally {
      closed.resolve()
    }
  }))
  const base = await listen(app)
  let sent = false
  const run = await cli(['tail', base + '/forever'], (stdout, child) => {
    if (!sent && stdout.includes('\n')) { sent = true; child.kill('SIGINT') }
  })
  t.equal(run.code, 130)
  await closed.promise
  t.ok(run.stdout.startsWith('0\n'))
})

t.test('an unreachable URL exits 4 with a message naming the URL', async (t) => {
  const app = await server(t)
  const base = await listen(app)
  await app.close()
  const run = await cli(['tail', base + '/events'])
  t.equal(run.code, 4)
  t.match(run.stderr, `Cannot reach ${base}/events: `)
  const asked = await cli(['ask', 'hi', '--url', base])
  t.equal(asked.code, 4)
  t.match(asked.stderr, `Cannot reach ${base}/events: `)
  t.match(asked.stderr, 'is the server running?')
})

t.test('an HTTP error status exits 3 with the status and the server message', async (t) => {
  const app = await server(t)
  app.get('/nope', async (request, reply) => reply.code(401).send({ message: 'token required' }))
  const base = await listen(app)
  const run = await cli(['tail', base + '/nope'])
  t.equal(run.code, 3)
  t.equal(run.stderr, `fastify-sse-stream: HTTP 401 Unauthorized from ${base}/nope: token required\n`)
})

t.test('usage errors exit 2; --help on each command exits 0', async (t) => {
  for (const args of [[], ['frobnicate'], ['ask'], ['ask', 'hi', '--bogus'], ['tail', 'not a url'],
    ['tail', 'http://127.0.0.1:9/', '--header', 'no-colon']]) {
    const run = await cli(args)
    t.equal(run.code, 2, `${JSON.stringify(args)} exits 2`)
    t.match(run.stderr, /Usage:|--help/)
    t.equal(run.stdout, '')
  }
  for (const [args, heading] of [[['--help'], 'Usage: fastify-sse-stream <command>'], [['ask', '--help'], 'Usage: fastify-sse-stream ask'],
    [['tail', '-h'], 'Usage: fastify-sse-stream tail']] as const) {
    const run = await cli([...args])
    t.equal(run.code, 0)
    t.ok(run.stdout.startsWith(heading), `${args.join(' ')} prints ${heading}`)
    t.match(run.stdout, 'Exit codes: 0 done, 1')
  }
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${signal} during ask stops the generation on the server and exits 130 with one line`, async (t) => {
    const fake = await startFakeUpstream({ kind: 'normal', tokens: Array.from({ length: 2000 }, (_, i) => ` t${i}`), delayMs: 20 })
    t.teardown(() => fake.close())
    // Resuming on, with a grace period longer than the test: a disconnect alone would not end it.
    const app = await buildApp(loadConfig({ LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm', RESUME_GRACE_MS: '600000', RATE_LIMIT_MAX: '0', LOG_LEVEL: 'silent' }))
    t.teardown(() => app.close())
    const base = await listen(app)
    let sent = false
    const run = await cli(['ask', 'count', '--url', base], (stdout, child) => {
      if (!sent && stdout.split(' t').length > 3) { sent = true; child.kill(signal) }
    })
    t.equal(run.code, 130)
    t.equal(run.stderr, `fastify-sse-stream: interrupted (${signal}); the generation was stopped\n`)
    const end = await fake.requests[0].closed
    t.equal(end.aborted, true, 'the upstream request was cut short, not run to its end')
  })
}

t.test('tail takes a path on the default server or --url, and --version needs no service', async (t) => {
  const app = await server(t)
  app.get('/feed', (request, reply) => reply.sse<unknown>([{ event: 'done', data: {} }]))
  const base = await listen(app)
  const run = await cli(['tail', '/feed', '--url', base])
  t.equal(run.stdout, '[done] {}\n', run.stderr)
  const unreachable = await cli(['tail', '/ticker', '--url', 'http://127.0.0.1:9'])
  t.equal(unreachable.code, 4)
  t.match(unreachable.stderr, 'Cannot reach http://127.0.0.1:9/ticker')
  const version = await cli(['--version'])
  t.match(version.stdout, /^\d+\.\d+\.\d+/)
})
