// The LLM relay: `generations` concurrent `GET /events` answers relayed from a fast fake
// OpenAI-compatible upstream (bench/lib/fake-openai.js, real wire format, its own process). The
// /events route plugin is mounted as the demo service mounts it, through the real `openai` SDK:
// resumable answers off, on in memory, and on Redis; beside it the ceiling, a raw node:http server
// that reads the upstream's stream straight into its response (one write per upstream chunk).
//
// Phase 1: every generation is opened; the upstream sends each its first token at once and holds
// the rest. Time to first token added = when the client got it − when the upstream wrote it (one
// clock, CLOCK_MONOTONIC). Then, all open and waiting: heap and RSS per open generation (after GC).
// Phase 2: the upstream sends the rest as fast as it can; server CPU per relayed token. Every
// client must get every token, in order, and the end of its answer.
//
//   node bench/scenarios/relay.js [--generations 1000] [--tokens 200] [--modes raw,off,memory,redis]
//                                 [--cpu-prof] [--heap-snapshot]
//
// --cpu-prof writes the server's profile of each mode to bench/profiles/relay-<mode>.cpuprofile, with
// the window of phase 2 beside it (`node bench/profile-summary.js FILE` reads only that part).
// --heap-snapshot writes the server's heap before and after phase 1's opening to
// bench/profiles/relay-<mode>-{before,open}.heapsnapshot (`node bench/heap-diff.js BEFORE OPEN 1000`).
// run() takes the same as `{ profileDir, cpuProf, heapSnapshot }`.
//
// Needs a built dist/ (npm run build); redis-server for the Redis mode (skipped without it).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import v8 from 'node:v8'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { openMany, SseReader } from '../lib/sse-reader.js'
import { startNode, placement } from '../lib/spawn.js'
import { quantile, sorted } from '../lib/stats.js'
import { nowUs } from '../lib/payload.js'
import { startRedis } from './redis-fanout.js'

const self = fileURLToPath(import.meta.url)
const root = fileURLToPath(new URL('../../', import.meta.url))
const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server'
export const MODES = ['raw', 'off', 'memory', 'redis']
export const MODE_LABEL = {
  raw: 'ceiling: raw node:http pipe',
  off: 'ours, resume off',
  memory: 'ours, resume in memory',
  redis: 'ours, resume on Redis'
}

function stats () {
  if (typeof global.gc === 'function') { global.gc(); global.gc() }
  const m = process.memoryUsage()
  const cpu = process.cpuUsage()
  return { heap: m.heapUsed + m.external, rss: m.rss, cpuUs: cpu.user + cpu.system }
}

/** The server's control paths beside /events: stats, a heap snapshot, a clean exit (which writes --cpu-prof). */
function control (url, res) {
  if (url === '/stats') { res.end(JSON.stringify(stats())); return true }
  if (url.startsWith('/snapshot?')) {
    stats()
    v8.writeHeapSnapshot(new URL(url, 'http://x').searchParams.get('file'))
    res.end('{}')
    return true
  }
  if (url === '/exit') { res.end('{}', () => process.exit(0)); return true }
  return false
}

// ── the server side: `node relay.js --serve <mode> <upstream port> [redis url]` ──
async function serveRaw (upstreamPort) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
  const server = http.createServer((req, res) => {
    if (control(req.url, res)) return
    const prompt = new URL(req.url, 'http://x').searchParams.get('prompt') ?? ''
    const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: 'POST', path: '/v1/chat/completions', agent, headers: { 'content-type': 'application/json' } }, (upRes) => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
      upRes.setEncoding('utf8')
      let rest = ''
      upRes.on('data', (text) => {
        // The least a relay can do: find each chunk's token and write it as an SSE frame, one
        // write per upstream read.
        const blocks = (rest + text).split('\n\n')
        rest = blocks.pop()
        let out = ''
        for (const block of blocks) {
          const data = block.slice(6)
          if (data === '[DONE]') { out += 'event: done\ndata: {}\n\n'; continue }
          const content = JSON.parse(data).choices[0]?.delta?.content
          if (content) out += 'data: ' + content + '\n\n'
        }
        if (out !== '') res.write(out)
      })
      upRes.on('end', () => res.end())
    })
    up.on('error', () => res.destroy())
    res.on('close', () => up.destroy())
    up.end(JSON.stringify({ model: 'bench', stream: true, messages: [{ role: 'user', content: prompt }] }))
  })
  server.listen(0, '127.0.0.1', () => console.log(server.address().port))
}

async function serveOurs (mode, upstreamPort, redisUrl) {
  const { default: Fastify } = await import('fastify')
  const { default: sse } = await import(root + 'dist/lib/index.js')
  const { default: events } = await import(root + 'dist/routes/events/index.js')
  let resume = mode !== 'off'
  if (mode === 'redis') {
    const { connectRedis } = await import(root + 'dist/lib/redis/connect.js')
    const { createRedisGenerations } = await import(root + 'dist/lib/redis/generations.js')
    resume = { generations: createRedisGenerations({ redis: await connectRedis(redisUrl) }) }
  }
  const app = Fastify()
  // As the demo service registers them (service/app.ts), without its rate limit and caps.
  await app.register(sse, { retryMs: 1000 })
  await app.register(events, {
    openai: { baseURL: `http://127.0.0.1:${upstreamPort}/v1`, apiKey: 'bench', maxRetries: 0 },
    model: 'bench',
    rateLimit: false,
    maxGenerations: { perClient: 0, total: 0 },
    resume
  })
  for (const path of ['/stats', '/snapshot', '/exit']) app.get(path, (request, reply) => { reply.hijack(); control(request.url, reply.raw) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  console.log(app.server.address().port)
}

// ── the client side ──
async function get (port, path) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`)
  return res.json()
}

async function measure ({ mode, generations, tokens, redisUrl, timeoutMs, profileDir, cpuProf, heapSnapshot }) {
  const upstream = startNode([root + 'bench/lib/fake-openai.js', String(tokens)], placement?.client)
  const upstreamPort = Number(await upstream.nextLine(20_000))
  const name = `relay-${mode}`
  const prof = cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []
  const server = startNode(['--expose-gc', ...prof, self, '--serve', mode, String(upstreamPort), redisUrl ?? ''], placement?.server)
  let port
  const snapshot = async (which) => { if (heapSnapshot) await get(port, `/snapshot?file=${encodeURIComponent(join(profileDir, `${name}-${which}.heapsnapshot`))}`) }
  try {
    port = Number(await server.nextLine(20_000))
    // Warm up (JIT, the SDK's first request, connection pools), as a server that has been running is.
    const warm = await openMany(50, 50, (i) => new SseReader({ port, path: `/events?prompt=warm%20w${i}`, deferParse: true, onEvent: () => {} }))
    await sleep(300)
    await get(upstreamPort, '/go')
    await Promise.race([Promise.all(warm.map((r) => r.closed)), sleep(20_000)])
    for (const r of warm) r.close()
    await get(upstreamPort, '/reset')
    await snapshot('before')
    const base = await get(port, '/stats')
    let first = 0
    let done = 0
    const readers = await openMany(generations, 100, (i) => {
      const reader = new SseReader({
        port,
        path: `/events?prompt=${encodeURIComponent('count for g' + i)}`,
        deferParse: true,
        onChunk: (chunk, r) => {
          if (r.firstAt === undefined && chunk.includes('t0\n')) { r.firstAt = r.now; first++ }
          if (r.finished !== true && chunk.includes('event: done')) { r.finished = true; done++ }
        },
        onEvent: (event, r) => {
          if (event.event === 'done') { r.doneEvent = true; return }
          if (event.event !== undefined && event.event !== 'message') { r.bad = `${event.event} ${event.data.slice(0, 120)}`; return }
          r.tokens ??= []
          r.tokens.push(event.data)
        }
      })
      reader.name = 'g' + i
      return reader
    })
    const deadline = Date.now() + timeoutMs
    while (first < generations && Date.now() < deadline) await sleep(20)
    // All open, each with its first token, the rest held back by the upstream.
    await sleep(200)
    const open = await get(port, '/stats')
    await snapshot('open')
    const phase2 = nowUs()
    await get(upstreamPort, '/go')
    while (done < generations && Date.now() < deadline) await sleep(20)
    const end = await get(port, '/stats')
    // The part of the profile to read (bench/profile-summary.js): phase 2, the tokens relayed.
    if (cpuProf) writeFileSync(join(profileDir, `${name}.window.json`), JSON.stringify([phase2, nowUs()]))
    const { firstAt } = await get(upstreamPort, '/stats')
    let bad = 0
    let firstError
    const added = []
    for (const r of readers) {
      r.parseRecorded()
      const want = Array.from({ length: tokens }, (_, k) => ` ${r.name}t${k}`)
      const got = r.tokens ?? []
      const ok = r.status === 200 && r.doneEvent === true && r.bad === undefined && got.length === tokens && got.every((tok, k) => tok === want[k])
      if (!ok) { bad++; firstError ??= `${r.name}: status ${r.status}, ${got.length} tokens, done ${r.doneEvent === true}${r.bad ? ', ' + r.bad : ''}${r.error ? ', ' + r.error.message : ''}` }
      if (r.firstAt !== undefined && firstAt[r.name] !== undefined) added.push((r.firstAt - firstAt[r.name]) / 1000)
      r.close()
    }
    const a = sorted(added)
    const relayed = generations * (tokens - 1)
    return {
      ok: bad === 0,
      failures: bad,
      firstError,
      ttftAddedMs: { p50: quantile(a, 0.5), p99: quantile(a, 0.99) },
      cpuUsPerToken: (end.cpuUs - open.cpuUs) / relayed,
      cpuMsPerGenerationStart: (open.cpuUs - base.cpuUs) / 1000 / generations,
      heapKBPerOpenGeneration: (open.heap - base.heap) / 1024 / generations,
      rssKBPerOpenGeneration: (open.rss - base.rss) / 1024 / generations
    }
  } finally {
    // A clean exit writes the profile; a kill would not.
    if (cpuProf && port !== undefined) {
      await get(port, '/exit').catch(() => {})
      await Promise.race([server.exited, sleep(20_000)])
    }
    server.child.kill('SIGKILL')
    upstream.child.kill('SIGKILL')
  }
}

export async function run ({ generations = 1000, tokens = 200, modes = MODES, timeoutMs = 120_000, onProgress, profileDir = join(root, 'bench/profiles'), cpuProf = false, heapSnapshot = false } = {}) {
  const results = { generations, tokens }
  if (cpuProf || heapSnapshot) mkdirSync(profileDir, { recursive: true })
  let redis
  try {
    for (const mode of modes) {
      if (mode === 'redis' && !existsSync(REDIS_SERVER)) { results[mode] = { skipped: `redis-server not found at ${REDIS_SERVER}` }; continue }
      if (mode === 'redis') redis ??= await startRedis()
      const t = performance.now()
      try {
        results[mode] = await measure({ mode, generations, tokens, redisUrl: redis?.url, timeoutMs, profileDir, cpuProf, heapSnapshot })
      } catch (err) {
        results[mode] = { ok: false, failures: generations, firstError: String(err.message ?? err) }
      }
      onProgress?.(mode, results[mode], performance.now() - t)
    }
  } finally {
    redis?.child.kill('SIGKILL')
  }
  return results
}

/** The markdown table of a run. */
export function relayTable (r) {
  const f = (v, d = 1) => Number.isFinite(v) ? v.toFixed(d) : '–'
  const lines = [
    `### LLM relay: ${r.generations} concurrent generations of ${r.tokens} tokens from a fast fake upstream`, '',
    '| relay | first token added p50 / p99 ms | server CPU µs per token | CPU ms per generation start | heap KB per open generation | RSS KB per open generation | correct |',
    '|---|---:|---:|---:|---:|---:|---:|'
  ]
  for (const mode of MODES) {
    const x = r[mode]
    if (x === undefined) continue
    if (x.skipped !== undefined) { lines.push(`| ${MODE_LABEL[mode]} | skipped: ${x.skipped} | | | | | |`); continue }
    lines.push(`| ${MODE_LABEL[mode]} | ${f(x.ttftAddedMs?.p50)} / ${f(x.ttftAddedMs?.p99)} | ${f(x.cpuUsPerToken, 2)} | ${f(x.cpuMsPerGenerationStart, 2)} | ${f(x.heapKBPerOpenGeneration)} | ${f(x.rssKBPerOpenGeneration)} | ${x.ok ? '✓' : `✗ ${x.failures}: ${x.firstError}`} |`)
  }
  return lines.join('\n')
}

if (process.argv[1] === self && process.argv[2] === '--serve') {
  const [, , , mode, upstreamPort, redisUrl] = process.argv
  if (mode === 'raw') await serveRaw(Number(upstreamPort))
  else await serveOurs(mode, Number(upstreamPort), redisUrl)
} else if (process.argv[1] === self) {
  const { values } = parseArgs({ options: { generations: { type: 'string' }, tokens: { type: 'string' }, modes: { type: 'string' }, 'cpu-prof': { type: 'boolean' }, 'heap-snapshot': { type: 'boolean' } } })
  const r = await run({
    generations: Number(values.generations ?? 1000),
    tokens: Number(values.tokens ?? 200),
    modes: values.modes?.split(',') ?? MODES,
    cpuProf: values['cpu-prof'] === true,
    heapSnapshot: values['heap-snapshot'] === true,
    onProgress: (mode, x, ms) => console.error(`relay ${mode}: ${x.ok ? 'ok' : 'FAILED ' + x.firstError} (${(ms / 1000).toFixed(1)} s)`)
  })
  console.log(relayTable(r))
  console.log(JSON.stringify(r, null, 2))
  process.exit(MODES.every((m) => r[m] === undefined || r[m].skipped !== undefined || r[m].ok) ? 0 : 1)
}
