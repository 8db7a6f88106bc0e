// Fan-out through Redis: `subscribers` clients split across two server processes sharing one
// redis-server (the Redis hub), `events` published back to back on the first; beside it the same
// load on one process with the in-memory hub. Same correctness check for both: every client gets
// every event exactly once, in publish order. Reports the time until the last client has the last
// event, deliveries per second, the first event's p50/p99 latency and the Redis commands per
// published event (INFO commandstats).
//
//   node bench/scenarios/redis-fanout.js [--subscribers 2000] [--events 200] [--size 64] [--interleaved]
//
// Needs a built dist/ (npm run build) and redis-server (Debian's package); without it the Redis
// case is reported as skipped. Also exported as `run(opts)` for bench/run.js.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import net from 'node:net'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { openMany, SseReader } from '../lib/sse-reader.js'
import { startNode, placement } from '../lib/spawn.js'
import { nowUs } from '../lib/payload.js'
import { quantile, sorted } from '../lib/stats.js'

const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server'
const self = fileURLToPath(import.meta.url)
const root = fileURLToPath(new URL('../../', import.meta.url))

// ── the server side: `node redis-fanout.js --serve memory|<redis url>` ──
async function serve (backplane) {
  const { default: Fastify } = await import('fastify')
  const { default: sse } = await import(root + 'dist/lib/index.js')
  const { createHub } = await import(root + 'dist/lib/hub/hub.js')
  const { createRedisHub } = await import(root + 'dist/lib/redis/hub.js')
  const { connectRedis } = await import(root + 'dist/lib/redis/connect.js')
  const { hubSource } = await import(root + 'dist/lib/hub/source.js')
  const redis = backplane === 'memory' ? undefined : await connectRedis(backplane)
  const hub = redis === undefined ? createHub({ historySize: 5000 }) : createRedisHub({ redis, historySize: 5000 })
  const app = Fastify()
  await app.register(sse, { heartbeatMs: 0 })
  app.get('/fan', (request, reply) => reply.sse(hubSource(hub, { topics: 'fan', overflow: 'disconnect' })))
  app.get('/subscribers', async () => ({ n: hub.stats().subscribers }))
  app.post('/publish', async (request) => {
    const { n, size, pattern } = request.query
    const pad = 'x'.repeat(Number(size))
    const ids = []
    const sent = []
    for (let i = 0; i < Number(n); i++) {
      // Sent in order on one connection, so Redis runs them in this order; back to back in one
      // tick, or one per turn of the event loop, as events from an upstream arrive.
      sent.push(hub.publish('fan', { data: `${i} ${pad}` }).then((id) => { ids[i] = id }))
      if (pattern === 'interleaved') await new Promise((resolve) => setImmediate(resolve))
    }
    await Promise.all(sent)
    return { first: ids[0], last: ids[ids.length - 1] }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  console.log(app.server.address().port)
}

// ── the client side ──
export async function freePort () {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  return port
}

async function request (port, method, path) {
  const req = http.request({ host: '127.0.0.1', port, method, path })
  req.end()
  const [res] = await once(req, 'response')
  let body = ''
  for await (const chunk of res) body += chunk
  return JSON.parse(body)
}

export async function startRedis () {
  const port = await freePort()
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true) }).on('error', () => resolve(false))
    })
    if (ok) return { child, port, url: `redis://127.0.0.1:${port}` }
    await sleep(25)
  }
  child.kill('SIGKILL')
  throw new Error('redis-server did not start')
}

async function redisCommands (port) {
  // RESP by hand: one INFO commandstats, summed calls.
  const socket = net.connect(port, '127.0.0.1')
  socket.write('INFO commandstats\r\n')
  let text = ''
  for await (const chunk of socket) {
    text += chunk
    if (text.endsWith('\r\n\r\n') || (/\r\n$/.test(text) && text.includes('cmdstat_') && text.split('\r\n').length > 3)) break
  }
  socket.destroy()
  let calls = 0
  for (const m of text.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) if (m[1] !== 'info') calls += Number(m[2])
  return calls
}

async function fanOut ({ backplane, instances, subscribers, events, size, pattern, timeoutMs }) {
  const servers = []
  for (let i = 0; i < instances; i++) {
    const s = startNode([self, '--serve', backplane], placement?.server)
    servers.push({ child: s.child, port: Number(await s.nextLine(20_000)) })
  }
  try {
    const perEvent = []
    const readers = await openMany(subscribers, 200, (i) => new SseReader({
      port: servers[i % instances].port,
      path: '/fan',
      deferParse: true,
      onEvent: (event, reader) => {
        reader.ids ??= []
        reader.ids.push(event.id)
        if (reader.ids.length === 1) perEvent.push(reader.now)
      }
    }))
    for (const s of servers) {
      const want = Math.ceil(subscribers / instances) - (subscribers % instances !== 0 && servers.indexOf(s) >= subscribers % instances ? 1 : 0)
      for (let i = 0; i < 500 && (await request(s.port, 'GET', '/subscribers')).n < want; i++) await sleep(20)
    }
    const redisPort = backplane === 'memory' ? undefined : Number(new URL(backplane).port)
    const commandsBefore = redisPort === undefined ? 0 : await redisCommands(redisPort)
    const startedAt = nowUs()
    const { first, last } = await request(servers[0].port, 'POST', `/publish?n=${events}&size=${size}&pattern=${pattern}`)
    const commands = redisPort === undefined ? undefined : (await redisCommands(redisPort)) - commandsBefore - 1
    // Wait until every client has the last event (its id closes the last recorded chunks).
    const deadline = Date.now() + timeoutMs
    const tail = `id: ${last}\n`
    const done = (r) => r.chunks.length > 0 && (r.chunks.at(-1).includes(tail) || (r.chunks.at(-2) ?? '').concat(r.chunks.at(-1)).includes(tail))
    while (Date.now() < deadline && !readers.every(done)) await sleep(10)
    const lastAt = Math.max(...readers.map((r) => r.times.at(-1) ?? 0))
    for (const r of readers) r.parseRecorded()
    for (const r of readers) r.close()
    // The check: every client, every event, once, in publish order.
    const seq = (id) => Number(id.split(':')[1])
    const span = [seq(first), seq(last)]
    let bad = 0
    for (const r of readers) {
      const got = (r.ids ?? []).map(seq)
      const ok = got.length === events && got[0] === span[0] && got.at(-1) === span[1] && got.every((s, i) => i === 0 || s > got[i - 1])
      if (!ok) bad++
    }
    const allMs = (lastAt - startedAt) / 1000
    const firsts = sorted(perEvent.map((at) => (at - startedAt) / 1000))
    return {
      ok: bad === 0,
      failures: bad,
      allMs,
      deliveriesPerS: Math.round(subscribers * events / (allMs / 1000)),
      firstEventMs: { p50: quantile(firsts, 0.5), p99: quantile(firsts, 0.99) },
      redisCommandsPerEvent: commands === undefined ? undefined : Math.round(commands / events * 100) / 100
    }
  } finally {
    for (const s of servers) s.child.kill('SIGKILL')
  }
}

export async function run ({ subscribers = 2000, events = 200, size = 64, pattern = 'b2b', timeoutMs = 60_000 } = {}) {
  const results = { subscribers, events, size, pattern }
  results.memory = await fanOut({ backplane: 'memory', instances: 1, subscribers, events, size, pattern, timeoutMs })
  if (!existsSync(REDIS_SERVER)) {
    results.redis = { skipped: `redis-server not found at ${REDIS_SERVER}` }
    return results
  }
  const redis = await startRedis()
  try {
    results.redis = await fanOut({ backplane: redis.url, instances: 2, subscribers, events, size, pattern, timeoutMs })
  } finally {
    redis.child.kill('SIGKILL')
  }
  return results
}

if (process.argv[1] === self && process.argv[2] === '--serve') {
  await serve(process.argv[3])
} else if (process.argv[1] === self) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`)
    return i === -1 ? fallback : Number(process.argv[i + 1])
  }
  const pattern = process.argv.includes('--interleaved') ? 'interleaved' : 'b2b'
  const results = await run({ subscribers: arg('subscribers', 2000), events: arg('events', 200), size: arg('size', 64), pattern })
  console.log(JSON.stringify(results, null, 2))
  process.exit(results.memory.ok && (results.redis.ok ?? true) ? 0 : 1)
}
