// Markdown tables of a run: per case, each variant's median with min–max over runs and the ratio
// of medians to raw, plus whether every run delivered every event in order.
import { columns, LABEL } from './cases.js'
import { summary } from './stats.js'

function fmt (v, decimals) {
  if (!Number.isFinite(v)) return v === Infinity ? '∞' : '–'
  return v.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals }).replace(/,/g, ' ')
}

function cell (runs, key, decimals) {
  const s = summary(runs.map((r) => r.metrics?.[key]))
  if (runs.length <= 1 || s.min === s.max) return fmt(s.median, decimals)
  return `${fmt(s.median, decimals)} (${fmt(s.min, decimals)}–${fmt(s.max, decimals)})`
}

export function table (c, results, variants) {
  const cols = columns(c)
  if (results.some((r) => r.metrics?.writeSyscallsPerEvent !== undefined)) cols.push(['writeSyscallsPerEvent', 'write syscalls/event', 3, false])
  const head = ['variant']
  for (const [, heading, , ratio] of cols) head.push(heading, ...(ratio ? ['× raw'] : []))
  head.push('correct')
  const lines = [`### ${c.title}`, '', '| ' + head.join(' | ') + ' |', '|' + head.map((h, i) => i === 0 ? '---' : '---:').join('|') + '|']
  const rawRuns = results.filter((r) => r.variant === 'raw')
  const notes = []
  for (const variant of variants) {
    const runs = results.filter((r) => r.variant === variant)
    if (runs.length === 0) continue
    const row = [LABEL[variant]]
    for (const [key, , decimals, ratio] of cols) {
      row.push(cell(runs, key, decimals))
      if (ratio) {
        const base = summary(rawRuns.map((r) => r.metrics?.[key])).median
        row.push(fmt(summary(runs.map((r) => r.metrics?.[key])).median / base, 2))
      }
    }
    const bad = runs.filter((r) => !r.ok)
    row.push(bad.length === 0 ? `✓ ${runs.length}/${runs.length}` : `✗ ${runs.length - bad.length}/${runs.length}`)
    for (const r of bad) notes.push(`- ${LABEL[variant]}: ${r.errors.join('; ').slice(0, 400)}`)
    lines.push('| ' + row.join(' | ') + ' |')
  }
  if (notes.length > 0) lines.push('', ...notes)
  return lines.join('\n')
}
