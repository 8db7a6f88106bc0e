// `node bench/heap-diff.js before.heapsnapshot after.heapsnapshot [connections] [top]`: what the
// heap gained between two snapshots, by node type and constructor name, per connection. Written by
// `bench/run.js --heap-snapshot --scenarios S3` (one pair per variant), to see what an idle stream
// costs and where.
import { readFileSync } from 'node:fs'

const [beforeFile, afterFile, connsArg, topArg] = process.argv.slice(2)
if (afterFile === undefined) {
  console.error('usage: node bench/heap-diff.js <before.heapsnapshot> <after.heapsnapshot> [connections=1] [top=25]')
  process.exit(2)
}
const conns = Number(connsArg ?? 1)
const top = Number(topArg ?? 25)

/** Self size and count per "type name" of every node in a snapshot. */
function tally (file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'))
  const meta = snap.snapshot.meta
  const fields = meta.node_fields
  const width = fields.length
  const typeAt = fields.indexOf('type')
  const nameAt = fields.indexOf('name')
  const sizeAt = fields.indexOf('self_size')
  const types = meta.node_types[typeAt]
  const out = new Map()
  let total = 0
  const nodes = snap.nodes
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]]
    let name = snap.strings[nodes[i + nameAt]]
    // Strings and code are named by their content: group them by type alone.
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'code' || type === 'number') name = ''
    if (type === 'closure') name = `${name || '(anonymous)'}()`
    const key = name === '' ? `(${type})` : `${name} [${type}]`
    const size = nodes[i + sizeAt]
    total += size
    const t = out.get(key)
    if (t === undefined) out.set(key, { size, count: 1 })
    else { t.size += size; t.count++ }
  }
  return { out, total }
}

const a = tally(beforeFile)
const b = tally(afterFile)
const rows = []
for (const [key, t] of b.out) {
  const before = a.out.get(key) ?? { size: 0, count: 0 }
  const size = t.size - before.size
  const count = t.count - before.count
  if (size !== 0 || count !== 0) rows.push({ key, size, count })
}
rows.sort((x, y) => y.size - x.size)
const per = (v) => (v / conns).toFixed(v / conns < 10 ? 2 : 0)
console.log(`${afterFile}: heap ${((b.total - a.total) / conns / 1024).toFixed(2)} KB per connection over ${conns} connections`)
console.log('bytes/conn  objects/conn  what')
for (const r of rows.slice(0, top)) console.log(`${per(r.size).padStart(10)}  ${per(r.count).padStart(12)}  ${r.key}`)
