// `ours-metrics`: `ours` with fastify-sse-stream/metrics collecting into a prom-client registry,
// scraped every second the way Prometheus would (more often than any real scrape interval), so
// `--metrics` measures what metrics cost on the hot path (issue 16; docs/benchmarks.md, "Metrics").
import { Registry } from 'prom-client'
import { sseMetrics } from '../../dist/lib/metrics/index.js'
import { create as createOurs } from './ours.js'

export async function create () {
  const registry = new Registry()
  await sseMetrics({ registry })
  setInterval(() => { registry.metrics().catch(() => {}) }, 1000).unref()
  return await createOurs()
}
