// One SVG bar chart per case: every variant's median of the case's headline metric, raw marked as
// the 1× line and, where we measured one, the ceiling (the fastest way we know to do the same work
// on a raw node:http server) as a dashed line. Hand-written SVG: no dependency, and the file diffs
// as text.
import { summary } from './stats.js'

const ROW = 26
const LABEL_W = 190
const BAR_W = 430
const VALUE_W = 150
const TOP = 52
const COLORS = { ours: '#1f6feb', raw: '#57606a', peer: '#afb8c1' }

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function fmt (v) {
  if (!Number.isFinite(v)) return '–'
  const abs = Math.abs(v)
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2
  return v.toLocaleString('en-US', { maximumFractionDigits: digits }).replace(/,/g, ' ')
}

/**
 * `bars`: [{ label, value, kind: 'ours' | 'raw' | 'peer', note? }]; `raw`: the raw value (drawn as
 * the 1× line); `ceiling`: { value, label } or undefined; `unit`: the metric's heading;
 * `better`: 'higher' | 'lower'.
 */
export function barChart ({ title, subtitle, unit, better, bars, raw, ceiling }) {
  const values = bars.map((b) => b.value).filter(Number.isFinite)
  if (ceiling !== undefined) values.push(ceiling.value)
  const max = Math.max(...values, 0) * 1.05 || 1
  const x = (v) => LABEL_W + (Math.max(0, v) / max) * BAR_W
  const height = TOP + bars.length * ROW + 40
  const width = LABEL_W + BAR_W + VALUE_W
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="#ffffff"/>',
    `<text x="10" y="20" font-size="14" font-weight="600">${esc(title)}</text>`,
    `<text x="10" y="38" fill="#57606a">${esc(subtitle ?? `${unit}, ${better} is better`)}</text>`
  ]
  bars.forEach((b, i) => {
    const y = TOP + i * ROW
    const w = Number.isFinite(b.value) ? x(b.value) - LABEL_W : 0
    const ratio = Number.isFinite(raw) && raw > 0 && Number.isFinite(b.value) ? ` (${fmt(b.value / raw)}×)` : ''
    out.push(
      `<text x="${LABEL_W - 8}" y="${y + 16}" text-anchor="end"${b.kind === 'ours' ? ' font-weight="600"' : ''}>${esc(b.label)}</text>`,
      `<rect x="${LABEL_W}" y="${y + 4}" width="${w.toFixed(1)}" height="${ROW - 8}" fill="${COLORS[b.kind]}" rx="2"/>`,
      `<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + 16}">${esc(Number.isFinite(b.value) ? fmt(b.value) + ratio : (b.note ?? 'failed'))}</text>`
    )
  })
  const bottom = TOP + bars.length * ROW
  if (Number.isFinite(raw)) {
    out.push(`<line x1="${x(raw).toFixed(1)}" y1="${TOP - 4}" x2="${x(raw).toFixed(1)}" y2="${bottom + 4}" stroke="${COLORS.raw}" stroke-width="1"/>`)
  }
  if (ceiling !== undefined) {
    const cx = x(ceiling.value).toFixed(1)
    out.push(
      `<line x1="${cx}" y1="${TOP - 4}" x2="${cx}" y2="${bottom + 4}" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="5 3"/>`,
      `<text x="${cx}" y="${bottom + 18}" fill="#cf222e" text-anchor="${x(ceiling.value) < LABEL_W + BAR_W / 2 ? 'start' : 'end'}">ceiling ${esc(fmt(ceiling.value))}: ${esc(ceiling.label)}</text>`
    )
  }
  out.push(`<text x="10" y="${height - 6}" fill="#57606a">grey line: raw node:http (1×)</text>`, '</svg>')
  return out.join('\n') + '\n'
}

/** The chart of one case from bench/run.js's results: its first ratio column (or first column). */
export function caseChart (c, results, variants, { columns, LABEL, ceilings, probed = [] }) {
  const cols = columns(c)
  const [key, heading] = cols.find((col) => col[3]) ?? cols[0]
  const median = (variant) => summary(results.filter((r) => r.variant === variant && r.ok).map((r) => r.metrics?.[key])).median
  // The ceiling probe is drawn as the ceiling line, not as a bar.
  const bars = variants.filter((v) => v !== 'raw-joined').map((v) => ({
    label: LABEL[v],
    value: median(v),
    kind: v === 'ours' ? 'ours' : v === 'raw' ? 'raw' : 'peer'
  }))
  const raw = median('raw')
  const known = ceilings[c.id]
  const probe = probed.includes(c.scenario) ? median('raw-joined') : NaN
  const ceiling = Number.isFinite(probe)
    ? { value: probe, label: 'measured by the probe (raw, joined)' }
    : known !== undefined && Number.isFinite(raw) ? { value: raw * known.ratio, label: known.label } : undefined
  const better = /ms|KB|MB/.test(heading) ? 'lower' : 'higher'
  return barChart({ title: c.title, unit: heading, better, bars, raw, ceiling })
}
