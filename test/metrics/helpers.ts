// Reading metrics back in tests: one sample of a registry's metric, by name and labels.
import type { Registry } from 'prom-client'

/**
 * The value of the sample `name` (a histogram's `…_count` or `…_sum` too) with exactly these
 * labels, or 0 when there is none yet.
 */
export async function sample (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const base = name.replace(/_(count|sum)$/, '')
  const metric = registry.getSingleMetric(base) ?? registry.getSingleMetric(name)
  if (metric === undefined) throw new Error(`no metric ${name} in the registry`)
  const { values } = await metric.get()
  const wanted = Object.entries(labels)
  return values
    .filter((v) => ((v as { metricName?: string }).metricName ?? base) === name)
    .filter((v) => {
      const own = Object.keys(v.labels)
      return own.length === wanted.length && wanted.every(([k, value]) => String(v.labels[k]) === value)
    })
    .reduce((sum, v) => sum + v.value, 0)
}
