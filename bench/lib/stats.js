// Order statistics for run results and latency samples.

export function quantile (sorted, q) {
  if (sorted.length === 0) return NaN
  const pos = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[pos]
}

/** Sorted copy of numbers (typed arrays sort numerically). */
export function sorted (values) {
  return Float64Array.from(values).sort()
}

/** Median, min and max of a metric over runs. */
export function summary (values) {
  const s = sorted(values.filter((v) => Number.isFinite(v)))
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN }
  const mid = s.length >> 1
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
  return { median, min: s[0], max: s[s.length - 1] }
}
