// Two instances of the service on one Redis (REDIS_URL), as behind a load balancer: broadcast
// fan-out across both, a generation resumed on the other instance, a stop that crosses over,
// Redis failures survived, and one ticker feed that moves to the survivor when its holder dies.
import t, { type Test } from 'tap'
import { spawn, execFileSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { startFakeUpstream } from '../fixtures/fake-upstream.js'
import { startService, type Service } from '../fixtures/service.js'
import { openStream, type OpenStream } from '../helpers/http.js'
import { redisMissing, startRedis, type RedisServer } from '../helpers/redis.js'

const skip = redisMissing()
const seqOf = (id: string | undefined): number => Number(id?.split(':')[1])
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const quotes = (s: OpenStream): number[] => s.events.filter((e) => e.event === 'quote').map((e) => seqOf(e.id))

/** Polls `check` every 50 ms until it holds; fails after `ms`. */
async function eventually (t: Test, what: string, check: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) { t.pass(what); return }
    await sleep(50)
  }
  t.fail(`${what}: not within ${ms} ms`)
}

async function health (url: string): Promise<{ status: number, body: any }> {
  try {
    const res = await fetch(url + '/health')
    return { status: res.status, body: await res.json() }
  } catch (err) {
    return { status: 0, body: { error: String(err) } }
  }
}

async function pair (t: Test, env: Record<string, string> = {}): Promise<{ a: Service, b: Service, redis: RedisServer }> {
  const redis = await startRedis(t)
  const common = { REDIS_URL: redis.url, TICKER_INTERVAL_MS: '50', ...env }
  const a = await startService(t, common)
  const b = await startService(t, common)
  return { a, b, redis }
}

t.test('a publish on one instance reaches 500 subscribers split across both, in order, without duplicates', { skip }, async (t) => {
  const { a, b } = await pair(t)
  const streams = await Promise.all(Array.from({ length: 500 }, async (_, i) => await openStream(`${i % 2 === 0 ? a.url : b.url}/ticker`)))
  t.teardown(() => { for (const s of streams) s.destroy() })
  await Promise.all(streams.map(async (s) => { while (quotes(s).length === 0) await s.waitForEvents(s.events.length + 1) }))
  // Every subscriber is live from here: the next 40 quotes must reach all of them identically.
  const from = Math.max(...streams.map((s) => quotes(s)[0]))
  const window = Array.from({ length: 40 }, (_, i) => from + 1 + i)
  await Promise.all(streams.map(async (s) => { while (quotes(s).at(-1)! < from + 40) await s.waitForEvents(s.events.length + 1) }))
  let identical = 0
  for (const s of streams) if (JSON.stringify(quotes(s).filter((q) => q > from && q <= from + 40)) === JSON.stringify(window)) identical++
  t.equal(identical, 500, 'all 500 got the same 40 consecutive ids, in order, none twice')
  const [ha, hb] = await Promise.all([health(a.url), health(b.url)])
  t.equal(ha.body.hub.backplane, 'redis')
  t.same([ha.body.feeds.ticker, hb.body.feeds.ticker].sort(), [false, true], 'one instance runs the feed')
  t.equal(ha.body.streams.open + hb.body.streams.open, 500)
})

t.test('a generation started on A and cut after k tokens is resumed on B from one upstream request', { skip }, async (t) => {
  const tokens = ['Once', ' upon', ' a', ' time', ',\n', 'a', ' stream', ' 🌊', ' was', ' cut', '.', ' The', ' end', '.']
  const fake = await startFakeUpstream({ kind: 'normal', tokens, delayMs: 20 })
  t.teardown(() => fake.close())
  const { a, b } = await pair(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm' })
  const first = await openStream(`${a.url}/events?prompt=story`)
  const head = await first.waitForEvents(4)
  first.destroy()
  const second = await openStream(`${b.url}/events?prompt=story`, { 'last-event-id': head[3].id! })
  await second.ended
  t.equal(second.res.statusCode, 200)
  const rest = second.events.filter((e) => e.event === undefined)
  t.equal(head.map((e) => e.data).join('') + rest.map((e) => e.data).join(''), tokens.join(''), 'byte for byte')
  t.equal(rest[0].id, head[3].id!.replace(/:4$/, ':5'))
  t.match(JSON.parse(second.events.at(-1)!.data), { finish_reason: 'stop' })
  t.equal(fake.requests.length, 1, 'the upstream was asked once')
  const after = await fetch(`${a.url}/events?prompt=story`, { headers: { 'last-event-id': second.events.at(-1)!.id! } })
  t.equal(after.status, 204, 'after done, either instance says 204')
})

t.test('a stop sent to B aborts the upstream request running on A', { skip }, async (t) => {
  const fake = await startFakeUpstream({ kind: 'normal', tokens: Array.from({ length: 200 }, (_, i) => ` w${i}`), delayMs: 30 })
  t.teardown(() => fake.close())
  const { a, b } = await pair(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm' })
  const stream = await openStream(`${a.url}/events?prompt=long`)
  const [firstEvent] = await stream.waitForEvents(1)
  const upstream = await fake.nextRequest()
  const generation = firstEvent.id!.split(':')[0]
  const stopped = await fetch(`${b.url}/events/${generation}`, { method: 'DELETE' })
  t.equal(stopped.status, 204)
  // Not stopped, it would close by itself after the whole answer (6 s), not aborted.
  const closed = await upstream.closed
  t.equal(closed.aborted, true, 'the upstream request on A was aborted')
  await stream.ended
  t.match(JSON.parse(stream.events.at(-1)!.data), { finish_reason: 'stopped' })
  t.ok(stream.events.length < 201, 'before the answer (200 tokens and done) would have ended')
})

/** Reconnects like an EventSource with Last-Event-ID until the stream is live again; returns it. */
async function reconnect (url: string, lastId: string): Promise<OpenStream> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const s = await openStream(url, { 'last-event-id': lastId })
    if (s.res.statusCode === 200) {
      // The snapshot comes first; what follows says whether the hub took the subscription.
      await s.waitForEvents(2).catch(() => {})
      if (!s.events.some((e) => e.event === 'error')) return s
    }
    s.destroy()
    await sleep(100)
  }
  throw new Error('never reconnected')
}

t.test('Redis dropping every connection: subscribers get an error, reconnect, and miss nothing', { skip }, async (t) => {
  const { a, b, redis } = await pair(t)
  const clients = [await openStream(`${a.url}/ticker`), await openStream(`${b.url}/ticker`)]
  await Promise.all(clients.map(async (s) => { while (quotes(s).length < 3) await s.waitForEvents(s.events.length + 1) }))
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
  const seqs: number[][] = []
  for (const s of clients) {
    await s.ended
    const error = s.events.find((e) => e.event === 'error')
    t.match(JSON.parse(error?.data ?? '{}'), { code: 'SSE_ERR_HUB_UNAVAILABLE' }, 'told why, in an error event')
    seqs.push(quotes(s))
  }
  const again = await Promise.all(clients.map(async (s, i) => await reconnect(`${i === 0 ? a.url : b.url}/ticker`, s.events.filter((e) => e.event === 'quote').at(-1)!.id!)))
  t.teardown(() => { for (const s of again) s.destroy() })
  await Promise.all(again.map(async (s) => { while (quotes(s).length < 5) await s.waitForEvents(s.events.length + 1) }))
  again.forEach((s, i) => {
    t.notOk(s.events.some((e) => e.event === 'reset'), 'resumed, not reset')
    const all = [...seqs[i], ...quotes(s)]
    t.same(all, Array.from({ length: all.length }, (_, k) => all[0] + k), `client ${i}: ${all.length} quotes, consecutive ids, none twice`)
  })
  t.equal((await health(a.url)).status, 200)
  t.equal((await health(b.url)).status, 200)
})

t.test('redis-server killed and started again: both instances report it, recover, and old ids reset', { skip }, async (t) => {
  const { a, b, redis } = await pair(t)
  const clients = [await openStream(`${a.url}/ticker`), await openStream(`${b.url}/ticker`)]
  await Promise.all(clients.map(async (s) => { while (quotes(s).length < 2) await s.waitForEvents(s.events.length + 1) }))
  await redis.kill()
  for (const s of clients) await s.ended
  t.ok(clients.every((s) => s.events.some((e) => e.event === 'error')), 'both streams ended with an error event')
  const down = await Promise.all([health(a.url), health(b.url)])
  t.same(down.map((h) => [h.status, h.body.hub.state]), [[503, 'down'], [503, 'down']], 'health says so, and the apps still answer')
  const refused = await openStream(`${a.url}/ticker`)
  await refused.ended
  t.match(refused.text(), /retry: \d+\n\n[^]*event: error/, 'a stream opened meanwhile is told to retry, not a dead 503')
  await redis.start()
  await eventually(t, 'both healthy again', async () => (await health(a.url)).status === 200 && (await health(b.url)).status === 200)
  const old = clients[0].events.filter((e) => e.event === 'quote').at(-1)!.id!
  const back = await reconnect(`${b.url}/ticker`, old)
  t.teardown(() => back.destroy())
  while (quotes(back).length < 2) await back.waitForEvents(back.events.length + 1)
  const reset = back.events.find((e) => e.event === 'reset')
  t.same(JSON.parse(reset?.data ?? '{}'), { reason: 'epoch' }, 'an id from before the data loss is recognised as stale')
})

const root = fileURLToPath(new URL('../..', import.meta.url))
const SOURCES = ['service/server', 'service/app', 'service/config', 'lib/redis/hub', 'lib/redis/lock', 'routes/ticker/feed', 'routes/health/index']
const distStale = (): boolean => SOURCES.some((name) => {
  try { return statSync(`${root}${name}.ts`).mtimeMs > statSync(`${root}dist/${name}.js`).mtimeMs } catch { return true }
})

t.test('the ticker feed runs on one of two npm start processes, and moves to the other when its holder is killed', { skip }, async (t) => {
  if (distStale()) { try { execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' }) } catch {} }
  if (distStale()) { t.fail('dist/ is older than its sources and `npm run build` did not refresh it'); return }
  const redis = await startRedis(t)
  const start = async (): Promise<{ url: string, kill: () => void }> => {
    const child = spawn(process.execPath, [root + 'dist/service/server.js'], {
      cwd: root,
      env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', REDIS_URL: redis.url, TICKER_INTERVAL_MS: '50' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    let output = ''
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString()
        const m = /Open (http:\/\/[^ ]+)\/ for the demo page/.exec(output)
        if (m !== null) resolve(m[1])
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', onData)
      child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)))
    })
    return { url, kill: () => child.kill('SIGKILL') }
  }
  const servers = [await start(), await start()]
  // Someone watches on each, so each is ready to run the feed.
  const watching = await Promise.all(servers.map(async (s) => await openStream(`${s.url}/ticker`)))
  t.teardown(() => { for (const s of watching) s.destroy() })
  let holder = -1
  await eventually(t, 'exactly one runs the feed', async () => {
    const h = await Promise.all(servers.map(async (s) => (await health(s.url)).body.feeds?.ticker))
    holder = h.indexOf(true)
    return h.filter((x) => x === true).length === 1
  })
  const other = 1 - holder
  servers[holder].kill()
  const seen = quotes(watching[other]).length
  await eventually(t, 'the survivor took the feed over', async () => (await health(servers[other].url)).body.feeds?.ticker === true, 12_000)
  await eventually(t, 'and its clients get quotes again', () => quotes(watching[other]).length > seen + 3, 5000)
})
