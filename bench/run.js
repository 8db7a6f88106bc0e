// `npm run bench` (or `node bench/run.js`): us against the peers and a raw node:http baseline.
// Each run starts a fresh server process (core 0) and a separate client process (core 1), and
// every case runs --runs times with the variants in a rotating order, so drift and noise spread
// over all of them instead of favouring whoever runs first.
//
//   node bench/run.js [--quick] [--runs N] [--scenarios S1,S2-5000-b2b,...] [--variants raw,ours,...]
//                     [--out file.json] [--cpu-prof] [--cpu-prof-client] [--heap-snapshot] [--strace] [--metrics]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { CEILINGS, cases, columns, EXTRA_VARIANTS, LABEL, NOT_PEERS, PROBED, TARGETS, VARIANTS } from './lib/cases.js'
import { caseChart } from './lib/chart.js'
import { summary } from './lib/stats.js'
import { ctl } from './lib/ctl.js'
import { table } from './lib/report.js'
import { fdLimit, hasStrace, placement, startNode } from './lib/spawn.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    scenarios: { type: 'string' },
    variants: { type: 'string' },
    out: { type: 'string' },
    // Where the SVG charts go (one per case); a full run writes them to bench/results/charts/.
    charts: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'cpu-prof-client': { type: 'boolean', default: false },
    'heap-snapshot': { type: 'boolean', default: false },
    // Counts the server's write/writev syscalls per event (S1, S2); timings under strace are void.
    strace: { type: 'boolean', default: false },
    // Fan-out through Redis with two instances beside the in-memory hub on one (scenarios/redis-fanout.js);
    // part of every full run, or alone with --scenarios redis.
    redis: { type: 'boolean', default: false },
    metrics: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (args.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(5, 7).map((l) => l.slice(3)).join('\n'))
  process.exit(0)
}

const quick = args.quick
const runs = Number(args.runs ?? (quick ? 1 : 3))
const variants = args.variants ? args.variants.split(',') : [...VARIANTS]
// --metrics: ours with and without fastify-sse-stream/metrics, side by side (docs/benchmarks.md, "Metrics").
if (args.metrics) for (const v of ['ours', 'ours-metrics']) if (!variants.includes(v)) variants.push(v)
const known = [...VARIANTS, ...EXTRA_VARIANTS]
for (const v of variants) if (!known.includes(v)) throw new Error(`unknown variant ${v}; known: ${known.join(', ')}`)
const wanted = args.scenarios?.split(',').map((s) => s.toLowerCase())
const withRedis = args.redis || wanted?.includes('redis') === true || (wanted === undefined && !quick)
// The LLM relay (scenarios/relay.js): part of every full run, or alone with --scenarios relay.
const withRelay = wanted?.includes('relay') === true || (wanted === undefined && !quick)
const selected = cases(quick).filter((c) => wanted === undefined ||
  wanted.some((w) => c.id.toLowerCase() === w || c.id.toLowerCase().startsWith(w + '-')))
if (selected.length === 0 && !withRedis && !withRelay) throw new Error(`no scenario matches ${args.scenarios}`)
const timeoutMs = quick ? 15_000 : 120_000
const hubBuilt = existsSync(join(root, 'dist/lib/hub/hub.js')) && existsSync(join(root, 'dist/lib/hub/source.js'))
const profileDir = join(here, 'profiles')
if (args['cpu-prof'] || args['cpu-prof-client'] || args['heap-snapshot'] || args.strace) mkdirSync(profileDir, { recursive: true })
if (args.strace && !hasStrace) throw new Error('--strace: strace is missing or cannot trace here')

function version (pkg) {
  try {
    return JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')).version
  } catch {
    return undefined
  }
}

const env = {
  date: new Date().toISOString(),
  cpu: os.cpus()[0]?.model,
  cores: os.availableParallelism(),
  memoryGB: Math.round(os.totalmem() / 2 ** 30),
  os: `${os.type()} ${os.release()}`,
  node: process.version,
  placement: placement ?? 'unpinned (no taskset or a single core)',
  fdLimit: fdLimit(),
  // Other work on the machine skews timings: the 1-minute load average, sampled through the run.
  load: [],
  versions: {
    'fastify-sse-stream': JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version,
    fastify: version('fastify'),
    '@fastify/sse': version('@fastify/sse'),
    'fastify-sse-v2': version('fastify-sse-v2'),
    'better-sse': version('better-sse'),
    'eventsource-parser': version('eventsource-parser')
  }
}

async function startServer (variant, profileName, straceFile) {
  const nodeArgs = ['--expose-gc']
  if (profileName !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${profileName}.cpuprofile`)
  const prefix = straceFile !== undefined ? ['strace', '-f', '-qq', '-c', '-e', 'trace=write,writev,sendmsg', '-o', straceFile] : []
  const proc = startNode([...nodeArgs, join(here, 'server.js'), variant], placement?.server, prefix)
  try {
    return { proc, ...JSON.parse(await proc.nextLine(20_000)) }
  } catch (err) {
    proc.child.kill('SIGKILL')
    throw err
  }
}

async function stopServer (server) {
  try { await ctl(server.ctlPort, '/exit') } catch {}
  let timer
  const exited = await Promise.race([server.proc.exited, new Promise((resolve) => { timer = setTimeout(resolve, 10_000, null) })])
  clearTimeout(timer)
  if (exited === null) server.proc.child.kill('SIGKILL')
}

async function runClient (server, variant, c, profileName) {
  const opts = { scenario: c.scenario, variant, port: server.port, ctlPort: server.ctlPort, params: c.params, timeoutMs }
  // S3 writes heap snapshots before and after its connections (bench/heap-diff.js reads them).
  if (args['heap-snapshot']) opts.snapshotDir = profileDir
  const nodeArgs = []
  // Is the client keeping up? Its profile shows what it spends per event.
  if (args['cpu-prof-client'] && profileName !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${profileName}-client.cpuprofile`)
  const client = startNode([...nodeArgs, join(here, 'client.js'), JSON.stringify(opts)], placement?.client)
  try {
    const result = JSON.parse(await client.nextLine(timeoutMs * 3 + 30_000))
    // It exits by itself once it has answered (and writes its profile when asked to).
    let timer
    await Promise.race([client.exited, new Promise((resolve) => { timer = setTimeout(resolve, 5_000) })])
    clearTimeout(timer)
    return result
  } finally {
    client.child.kill('SIGKILL')
  }
}

/** write + writev + sendmsg calls in an `strace -c` summary. */
function writeSyscalls (file) {
  let calls = 0
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const cols = line.trim().split(/\s+/)
    if (['write', 'writev', 'sendmsg'].includes(cols.at(-1))) calls += Number(cols[3])
  }
  return calls
}

function eventsOf (c) {
  return c.scenario === 's1' ? c.params.n : c.scenario === 's2' ? c.params.conns * c.params.events : NaN
}

/** A server that died during the run failed it, whatever the client saw: say why. */
function crashed (server, result) {
  const { exitCode, signalCode } = server.proc.child
  if (exitCode === null && signalCode === null) return
  const lines = server.proc.stderr().split('\n')
  const why = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.find((l) => /error/i.test(l)) ?? `exit ${exitCode ?? signalCode}`
  result.ok = false
  result.errors = [`server process died: ${why.trim()}`, ...result.errors]
}

/** One measured run: a fresh server process for this case alone, then a client process. */
async function runOne (variant, c, rep) {
  const name = args['cpu-prof'] || args['cpu-prof-client'] ? `${c.id}-${variant}-${rep}` : undefined
  const straceFile = args.strace ? join(profileDir, `${c.id}-${variant}-${rep}.strace`) : undefined
  let server
  try {
    server = await startServer(variant, args['cpu-prof'] ? name : undefined, straceFile)
    const result = await runClient(server, variant, c, name)
    crashed(server, result)
    await stopServer(server)
    server = undefined
    if (straceFile !== undefined) result.metrics.writeSyscallsPerEvent = writeSyscalls(straceFile) / eventsOf(c)
    if (name !== undefined && result.window !== undefined) {
      // The part of the profile to read: the scenario itself, not startup (profile-summary.js).
      writeFileSync(join(profileDir, `${name}.window.json`), JSON.stringify(result.window))
      writeFileSync(join(profileDir, `${name}-client.window.json`), JSON.stringify(result.window))
    }
    return result
  } catch (err) {
    return { ok: false, errors: [String(err.message ?? err)], metrics: {} }
  } finally {
    if (server !== undefined) await stopServer(server)
  }
}

// Progress: one line per finished run, `[done/total] elapsed, about N min left`.
let done = 0
let total = 0
function report (caseId, variant, rep, r, t) {
  results.get(caseId).push({ variant, rep, ...r })
  done++
  const elapsed = (performance.now() - started) / 1000
  const left = done < total ? `, about ${Math.ceil(elapsed / done * (total - done) / 60)} min left` : ''
  console.error(`[${done}/${total}] ${caseId} ${LABEL[variant]} run ${rep + 1}: ${r.ok ? 'ok' : 'FAILED ' + r.errors[0]?.slice(0, 200)} (${((performance.now() - t) / 1000).toFixed(1)} s; ${Math.round(elapsed)} s in${left})`)
}

const plan = selected.map((c) => ({
  case: c,
  variants: variants.filter((v) => !(v.startsWith('ours') && c.fanOut && !hubBuilt))
}))
if (!hubBuilt && variants.includes('ours')) console.error('note: dist/lib/hub/hub.js or hub-source.js is missing, so ours is left out of the fan-out cases')
console.error(`bench: ${quick ? 'quick' : 'full'}, ${runs} run(s), ${selected.map((c) => c.id).join(' ')}; ` +
  `server on core ${placement?.server ?? 'any'}, client on core ${placement?.client ?? 'any'}, open files ${env.fdLimit}`)

const results = new Map(plan.map((p) => [p.case.id, []]))
const started = performance.now()
total = plan.reduce((n, p) => n + p.variants.length, 0) * runs
env.load.push(os.loadavg()[0])
const loadTimer = setInterval(() => env.load.push(os.loadavg()[0]), 30_000)
for (let rep = 0; rep < runs; rep++) {
  if (quick) {
    // A smoke run: one server process per variant serves every case, which keeps it short.
    const k = rep % variants.length
    for (const variant of [...variants.slice(k), ...variants.slice(0, k)]) {
      let server
      try {
        server = await startServer(variant)
      } catch (err) {
        for (const p of plan) if (p.variants.includes(variant)) report(p.case.id, variant, rep, { ok: false, errors: [String(err.message)], metrics: {} }, performance.now())
        continue
      }
      for (const p of plan) {
        if (!p.variants.includes(variant)) continue
        const t = performance.now()
        let r
        try {
          r = await runClient(server, variant, p.case)
        } catch (err) {
          r = { ok: false, errors: [String(err.message ?? err)], metrics: {} }
        }
        crashed(server, r)
        report(p.case.id, variant, rep, r, t)
        if (r.errors[0]?.startsWith('server process died')) break
      }
      await stopServer(server)
    }
    continue
  }
  for (const [ci, p] of plan.entries()) {
    // Rotate the order per run and per case, so no variant always goes first or last.
    const k = (rep + ci) % p.variants.length
    const order = [...p.variants.slice(k), ...p.variants.slice(0, k)]
    for (const variant of order) {
      const t = performance.now()
      report(p.case.id, variant, rep, await runOne(variant, p.case, rep), t)
    }
  }
}
env.seconds = Math.round((performance.now() - started) / 1000)
clearInterval(loadTimer)
env.load.push(os.loadavg()[0])

let redisResults
if (withRedis) {
  const { run } = await import('./scenarios/redis-fanout.js')
  const subscribers = quick ? 200 : 5000
  const events = quick ? 20 : 100
  redisResults = {}
  const row = (name, r) => r?.skipped !== undefined
    ? `| ${name} | skipped: ${r.skipped} | | | | |`
    : `| ${name} | ${r.allMs.toFixed(0)} | ${r.deliveriesPerS.toLocaleString('en')} | ${r.firstEventMs.p50.toFixed(1)} / ${r.firstEventMs.p99.toFixed(1)} | ${r.redisCommandsPerEvent ?? '–'} | ${r.ok ? '✓' : `✗ ${r.failures} clients`} |`
  for (const pattern of ['b2b', 'interleaved']) {
    const t = performance.now()
    const r = redisResults[pattern] = await run({ subscribers, events, pattern })
    console.error(`redis fan-out ${pattern}: ${r.memory.ok && r.redis.ok !== false ? 'ok' : 'FAILED'} (${((performance.now() - t) / 1000).toFixed(1)} s)`)
    console.log([
      `### Fan-out through Redis: ${subscribers} clients, ${events} events ${pattern === 'b2b' ? 'back to back' : 'one per event-loop turn'}`, '',
      '| hub | ms until every client has all | deliveries/s | first event p50 / p99 ms | Redis commands/event | correct |',
      '|---|---:|---:|---:|---:|---:|',
      row('in-memory, 1 instance', r.memory),
      row('Redis Streams, 2 instances', r.redis), ''
    ].join('\n'))
  }
}

let relayResults
if (withRelay) {
  const { run, relayTable } = await import('./scenarios/relay.js')
  relayResults = await run({
    generations: quick ? 50 : 1000,
    tokens: quick ? 20 : 200,
    // Profiles of the relay's server land in bench/profiles/relay-<mode>.* (see bench/scenarios/relay.js).
    cpuProf: args['cpu-prof'],
    heapSnapshot: args['heap-snapshot'],
    profileDir,
    onProgress: (mode, r, ms) => console.error(`relay ${mode}: ${r.ok ? 'ok' : r.skipped ?? 'FAILED ' + r.firstError} (${(ms / 1000).toFixed(1)} s)`)
  })
  console.log(relayTable(relayResults) + '\n')
}

/** One screen: per case, our headline figure against raw's, the best peer's, the ceiling and the target. */
function onScreen () {
  const lines = ['', 'Summary (medians; × raw):', '']
  for (const p of plan) {
    const rs = results.get(p.case.id)
    const [key, heading] = columns(p.case).find((col) => col[3]) ?? columns(p.case)[0]
    const med = (v) => summary(rs.filter((r) => r.variant === v && r.ok).map((r) => r.metrics?.[key])).median
    const raw = med('raw')
    const ours = med('ours')
    const lower = /ms|KB|MB/.test(heading)
    const peers = p.variants.filter((v) => !NOT_PEERS.includes(v)).map((v) => [v, med(v)]).filter(([, m]) => Number.isFinite(m))
    const best = peers.sort((a, b) => lower ? a[1] - b[1] : b[1] - a[1])[0]
    const x = (m) => Number.isFinite(m) && Number.isFinite(raw) ? (m / raw).toFixed(2) + '×' : '–'
    const target = TARGETS[p.case.id]
    const verdict = target === undefined || target[0] !== key || !Number.isFinite(ours / raw)
      ? ''
      : `  target ${target[2] === 'max' ? '≤' : '≥'} ${target[1]}× ${(target[2] === 'max' ? ours / raw <= target[1] : ours / raw >= target[1]) ? 'met' : 'MISSED'}`
    const probe = PROBED.includes(p.case.scenario) ? med('raw-joined') : NaN
    const ceiling = Number.isFinite(probe) && Number.isFinite(raw)
      ? `  ceiling ${x(probe)} (measured)`
      : CEILINGS[p.case.id] === undefined ? '' : `  ceiling ${CEILINGS[p.case.id].ratio}× (noted)`
    // With --metrics: what collecting metrics costs on our headline figure.
    const metered = med('ours-metrics')
    const cost = Number.isFinite(metered) && Number.isFinite(ours)
      ? `  metrics on ${((lower ? metered / ours - 1 : ours / metered - 1) * 100).toFixed(1)}% slower`
      : ''
    lines.push(`${p.case.id.padEnd(22)} ${heading.padEnd(18)} ours ${x(ours).padStart(7)}  best peer ${best === undefined ? '–' : `${x(best[1])} (${LABEL[best[0]]})`}${ceiling}${verdict}${cost}`)
  }
  if (redisResults !== undefined) {
    for (const [pattern, r] of Object.entries(redisResults)) {
      lines.push(`redis fan-out ${pattern.padEnd(12)} all delivered ms: in memory ${r.memory.allMs?.toFixed(0)}, Redis 2 instances ${r.redis.allMs?.toFixed(0) ?? r.redis.skipped}`)
    }
  }
  if (relayResults !== undefined) {
    for (const mode of ['raw', 'off', 'memory', 'redis']) {
      const x = relayResults[mode]
      if (x?.ttftAddedMs !== undefined) lines.push(`relay ${mode.padEnd(7)} first token added p50/p99 ${x.ttftAddedMs.p50.toFixed(1)}/${x.ttftAddedMs.p99.toFixed(1)} ms, ${x.cpuUsPerToken.toFixed(2)} µs CPU/token, ${x.heapKBPerOpenGeneration.toFixed(1)} KB/open generation`)
    }
  }
  return lines.join('\n')
}

const md = [
  `Node ${env.node}, ${env.cpu} × ${env.cores}, ${env.os}; ${runs} run(s) per variant, median (min–max); ` +
  `${env.seconds} s in all; load average ${Math.min(...env.load).toFixed(1)}–${Math.max(...env.load).toFixed(1)} on ${env.cores} cores.`,
  '',
  ...plan.map((p) => table(p.case, results.get(p.case.id), p.variants) + '\n')
].join('\n')
console.log(md)
console.error(onScreen())

const out = args.out ?? (quick ? undefined : join(here, 'results', 'latest.json'))
if (out !== undefined) {
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, JSON.stringify({ env, quick, runs, cases: plan.map((p) => ({ ...p.case, results: results.get(p.case.id) })), redis: redisResults, relay: relayResults }, null, 2) + '\n')
  console.error(`results written to ${out}`)
}

const chartDir = args.charts ?? (quick ? undefined : join(here, 'results', 'charts'))
if (chartDir !== undefined) {
  mkdirSync(chartDir, { recursive: true })
  for (const p of plan) {
    writeFileSync(join(chartDir, `${p.case.id}.svg`), caseChart(p.case, results.get(p.case.id), p.variants, { columns, LABEL, ceilings: CEILINGS, probed: PROBED }))
  }
  console.error(`charts written to ${chartDir}`)
}

// Only our own correctness fails the run: a peer's wrong answer is a finding for the tables.
const ourFailures = [...results.values()].flat().filter((r) => (r.variant === 'ours' || r.variant === 'raw') && !r.ok)
const redisFailed = redisResults !== undefined && Object.values(redisResults).some((r) => !r.memory.ok || r.redis.ok === false)
const relayFailed = relayResults !== undefined && ['raw', 'off', 'memory', 'redis'].some((m) => relayResults[m]?.ok === false)
process.exitCode = ourFailures.length > 0 || redisFailed || relayFailed ? 1 : 0
