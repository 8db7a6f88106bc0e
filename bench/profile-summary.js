// `node bench/profile-summary.js file.cpuprofile [top]`: where a server's CPU went. Self time per
// function (with its file), and totals for our library, Node internals, GC and idle, so a
// `--cpu-prof` run (see `bench/run.js --cpu-prof`) can be read without DevTools. When the run
// left a `<name>.window.json` beside the profile, only samples inside the scenario count (V8's
// profile clock and the bench's `process.hrtime` are both CLOCK_MONOTONIC on Linux).
import { existsSync, readFileSync } from 'node:fs'

const [file, topArg] = process.argv.slice(2)
if (file === undefined) {
  console.error('usage: node bench/profile-summary.js <file.cpuprofile> [top=25]')
  process.exit(2)
}
const top = Number(topArg ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const windowFile = file.replace(/\.cpuprofile$/, '.window.json')
const [from, to] = existsSync(windowFile) ? JSON.parse(readFileSync(windowFile, 'utf8')) : [-Infinity, Infinity]
const self = new Map()
// timeDeltas[i] is the time before sample i; attribute it to that sample's node.
let at = profile.startTime
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i] ?? 0
  if (at < from || at > to) continue
  const id = profile.samples[i]
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
}
const total = [...self.values()].reduce((a, b) => a + b, 0)

function where (cf) {
  const url = cf.url.replace(/^file:\/\//, '').replace(/.*\/(node_modules\/)/, '$1').replace(/.*\/(dist|bench)\//, '$1/')
  return url === '' ? '' : `${url}:${cf.lineNumber + 1}`
}
function group (cf) {
  if (cf.functionName === '(idle)') return 'idle'
  if (cf.functionName === '(garbage collector)') return 'GC'
  if (cf.functionName === '(program)') return 'native (program)'
  if (cf.url.includes('/dist/lib/')) return 'fastify-sse-stream'
  if (cf.url.includes('/bench/')) return 'bench (source, control)'
  if (cf.url.includes('node_modules')) return 'dependencies'
  if (cf.url.startsWith('node:') || cf.url === '') return 'node internals + builtins'
  return 'other'
}

const fns = new Map()
const groups = new Map()
for (const [id, us] of self) {
  const cf = byId.get(id).callFrame
  const key = `${cf.functionName || '(anonymous)'}  ${where(cf)}`
  fns.set(key, (fns.get(key) ?? 0) + us)
  const g = group(cf)
  groups.set(g, (groups.get(g) ?? 0) + us)
}
const pct = (us) => (100 * us / total).toFixed(1).padStart(5) + ' %'
const ms = (us) => (us / 1000).toFixed(1).padStart(8) + ' ms'
const span = Number.isFinite(from) ? ` in the scenario's ${((to - from) / 1000).toFixed(0)} ms window` : ''
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled${span}`)
for (const [g, us] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`${ms(us)} ${pct(us)}  ${g}`)
console.log('')
for (const [k, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(us)} ${pct(us)}  ${k}`)
