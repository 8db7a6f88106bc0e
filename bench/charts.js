// `node bench/charts.js <results.json> <dir>`: the SVG charts of a saved run (bench/run.js writes
// them itself; this redraws them from any results file, an older full run with the peers say).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { caseChart } from './lib/chart.js'
import { CEILINGS, columns, LABEL, PROBED } from './lib/cases.js'

const [file, dir] = process.argv.slice(2)
if (dir === undefined) {
  console.error('usage: node bench/charts.js <results.json> <dir>')
  process.exit(2)
}
const run = JSON.parse(readFileSync(file, 'utf8'))
mkdirSync(dir, { recursive: true })
for (const c of run.cases) {
  const variants = [...new Set(c.results.map((r) => r.variant))]
  const order = Object.keys(LABEL).filter((v) => variants.includes(v))
  writeFileSync(join(dir, `${c.id}.svg`), caseChart(c, c.results, order, { columns, LABEL, ceilings: CEILINGS, probed: PROBED }))
}
console.error(`${run.cases.length} charts written to ${dir}`)
