// The package as a user gets it: `npm pack`, then a fresh project with only `fastify` installed
// runs `npm install <tarball>` and uses the subpaths in child processes (real sockets, real
// packages from the registry, resolved through the exports map, nothing from this repository).
// Slow by nature (npm installs); one temporary project serves every subtest.
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { redisMissing, startRedis } from '../helpers/redis.js'

t.setTimeout(300_000)

const root = fileURLToPath(new URL('../..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string, version: string, devDependencies: Record<string, string>
}

interface Run { code: number, stdout: string, stderr: string }

async function run (cmd: string, args: string[], cwd: string): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
  })
}

async function npm (args: string[], cwd: string): Promise<Run> {
  const r = await run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], cwd)
  if (r.code !== 0) throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${r.stderr}`)
  return r
}

/** Runs an ES module in the consumer project; its last stdout line is JSON. */
async function script (project: string, name: string, code: string): Promise<{ run: Run, result: any }> {
  await writeFile(join(project, name), code)
  const r = await run(process.execPath, [name], project)
  const last = r.stdout.trim().split('\n').at(-1) ?? ''
  let result: any
  try { result = JSON.parse(last) } catch { result = undefined }
  return { run: r, result }
}

const installedCount = (project: string): number =>
  Object.keys((JSON.parse(readFileSync(join(project, 'node_modules/.package-lock.json'), 'utf8')) as { packages: object }).packages).length

let project = ''
let files: string[] = []
let added = 0

t.before(async () => {
  if (!existsSync(join(root, 'dist/lib/index.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does)')
  const dir = await mkdtemp(join(tmpdir(), 'sse-consumer-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // dist/ is already built: skip `prepare`, which would rebuild it.
  const packed = await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir], root)
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
  files = info.files.map((f) => f.path)
  project = join(dir, 'app')
  await run('mkdir', [project], dir)
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  await npm(['install', `fastify@${pkg.devDependencies.fastify}`], project)
  const before = installedCount(project)
  await npm(['install', join(dir, info.filename)], project)
  added = installedCount(project) - before
})

t.test('the tarball holds the library and its docs, and nothing of the demo service', async (t) => {
  for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/lib/index.js', 'dist/lib/index.d.ts',
    'dist/lib/hub/index.js', 'dist/lib/redis/index.js', 'dist/lib/client/client.js', 'dist/lib/client/cli.js',
    'dist/routes/events/index.js', 'dist/routes/events/index.d.ts', 'dist/routes/logs/index.js']) {
    t.ok(files.includes(f), f)
  }
  // The browser module for sharing streams between tabs is the one part of static/ that ships.
  const browser = /^static\/shared-stream(-hub|-worker)?\.js$/
  t.same(files.filter((f) => browser.test(f)).sort(), ['static/shared-stream-hub.js', 'static/shared-stream-worker.js', 'static/shared-stream.js'])
  const allowed = /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/lib\/.+|dist\/routes\/(events|logs)\/.+)$/
  t.same(files.filter((f) => !allowed.test(f) && !browser.test(f)), [], 'only the library')
  t.same(files.filter((f) => /service|demo-model|ticker|static|docs|\.map$|\.ts$/.test(f) && !f.endsWith('.d.ts') && !browser.test(f)), [],
    'no service, demo model, ticker, page, docs, sources or source maps')
})

t.test('the browser module for shared streams resolves by its subpath, with its worker and hub beside it', async (t) => {
  const { run: r, result } = await script(project, 'browser.mjs', `
    import { existsSync, readFileSync } from 'node:fs'
    import { fileURLToPath } from 'node:url'
    const url = import.meta.resolve('fastify-sse-stream/browser/shared-stream')
    const beside = (name) => existsSync(fileURLToPath(new URL(name, url)))
    const source = readFileSync(fileURLToPath(url), 'utf8')
    console.log(JSON.stringify({ exports: /export function openSharedStream/.test(source), worker: beside('./shared-stream-worker.js'), hub: beside('./shared-stream-hub.js') }))
  `)
  t.equal(r.code, 0, r.stderr)
  t.same(result, { exports: true, worker: true, hub: true })
})

t.test('installing the tarball next to fastify adds only a handful of packages', async (t) => {
  t.ok(added >= 1 && added <= 5, `added ${added} packages`)
  t.notOk(existsSync(join(project, 'node_modules/ioredis')), 'no ioredis')
  t.notOk(existsSync(join(project, 'node_modules/openai')), 'no openai')
})

t.test('the plugin streams over a real socket, with the hub, read by the package client', async (t) => {
  const { run: r, result } = await script(project, 'stream.mjs', `
    import Fastify from 'fastify'
    import sse from 'fastify-sse-stream'
    import { createHub, hubRoute } from 'fastify-sse-stream/hub'
    import { streamEvents } from 'fastify-sse-stream/client'
    const app = Fastify()
    await app.register(sse)
    const hub = createHub()
    app.get('/count', (request, reply) => reply.sse(async function * () {
      for (let n = 1; n <= 3; n++) yield { event: 'n', id: n, data: { n } }
    }))
    app.get('/news', hubRoute(hub, { topics: ['news'] }))
    await app.listen({ port: 0, host: '127.0.0.1' })
    const base = 'http://127.0.0.1:' + app.server.address().port
    const counted = []
    for await (const ev of streamEvents(base + '/count', { json: true, reconnect: false })) counted.push([ev.event, ev.id, ev.data.n])
    // Resuming after a first publish, so what follows is replayed however late the subscription starts.
    const start = await hub.publish('news', { data: { title: 'zero' } })
    const ac = new AbortController()
    const news = []
    const reading = (async () => {
      try {
        for await (const ev of streamEvents(base + '/news', { json: true, signal: ac.signal, lastEventId: start })) {
          news.push(ev.data)
          if (news.length === 2) ac.abort()
        }
      } catch (err) { if (!ac.signal.aborted) throw err }
    })()
    await hub.publish('news', { data: { title: 'one' } })
    await hub.publish('news', { data: { title: 'two' } })
    await reading
    await hub.close()
    await app.close()
    console.log(JSON.stringify({ counted, news }))
  `)
  t.equal(r.code, 0, r.stderr)
  t.same(result, {
    counted: [['n', '1', 1], ['n', '2', 2], ['n', '3', 3]],
    news: [{ title: 'one' }, { title: 'two' }]
  })
})

t.test('the installed bin runs the CLI from the package', async (t) => {
  const r = await run(join(project, 'node_modules/.bin/fastify-sse-stream'), ['--version'], project)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, pkg.version)
})

t.test("'./redis' without ioredis fails with SSE_ERR_MISSING_PEER naming the package to install", async (t) => {
  const { run: r, result } = await script(project, 'no-redis.mjs', `
    try {
      await import('fastify-sse-stream/redis')
      console.log(JSON.stringify({ loaded: true }))
    } catch (err) {
      console.log(JSON.stringify({ code: err.code, message: err.message }))
    }
  `)
  t.equal(r.code, 0, r.stderr)
  t.same(result, {
    code: 'SSE_ERR_MISSING_PEER',
    message: 'fastify-sse-stream/redis needs the optional peer dependency ioredis: npm i ioredis'
  })
})

t.test('with ioredis installed, ./redis works against a real redis-server', { skip: redisMissing() }, async (t) => {
  await npm(['install', `ioredis@${pkg.devDependencies.ioredis}`], project)
  const server = await startRedis(t)
  const { run: r, result } = await script(project, 'redis.mjs', `
    import { connectRedis, createRedisHub } from 'fastify-sse-stream/redis'
    const redis = await connectRedis(${JSON.stringify(server.url)})
    const hub = createRedisHub({ redis, prefix: 'consumer:' })
    // Resuming after a first publish, so what follows is replayed however late the reader starts.
    const start = await hub.publish('t', { data: 'zero' })
    const ac = new AbortController()
    const sub = hub.subscribe({ topics: ['t'], lastEventId: start, signal: ac.signal })
    const got = []
    const reading = (async () => {
      for await (const frame of sub) {
        got.push(frame.text)
        if (got.join('').includes('second')) break
      }
    })()
    await hub.publish('t', { data: 'first' })
    await hub.publish('t', { data: 'second' })
    await reading
    await hub.close()
    redis.disconnect()
    console.log(JSON.stringify({ text: got.join('') }))
  `)
  t.equal(r.code, 0, r.stderr)
  t.match(result?.text, /data: first\n\n[^]*data: second\n\n/)
  t.notMatch(result?.text, /zero/, 'nothing before the resume point')
})
