// The demo service's GET /metrics over a real socket: valid for Prometheus' own checker, the
// families the docs promise, LLM relay metrics that move with real generations, and METRICS_TOKEN.
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { startService } from '../fixtures/service.js'
import { startFakeUpstream } from '../fixtures/fake-upstream.js'
import { openStream } from '../helpers/http.js'
import { parseExposition, valueOf } from './exposition.js'

const promtool = spawnSync('promtool', ['--version']).error === undefined

/** `promtool check metrics` on `text`: its exit code and what it said. */
async function check (text: string): Promise<{ code: number, output: string }> {
  return await new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, output: stdout + stderr })
    })
    child.stdin?.end(text)
  })
}

async function scrape (url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(url + '/metrics', { headers })
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  return await res.text()
}

const FAMILIES = [
  'streams_open', 'streams_started_total', 'streams_ended_total', 'events_written_total', 'bytes_written_total',
  'backpressure_waits_total', 'backpressure_seconds_total',
  'hub_subscribers', 'hub_queued_bytes', 'hub_up', 'hub_published_total', 'hub_fanout_batch_messages',
  'hub_overflows_total', 'hub_dropped_messages_total', 'hub_replays_total', 'hub_replayed_messages_total', 'hub_resets_total',
  'redis_reader_lag_seconds', 'redis_errors_total',
  'llm_generations_active', 'llm_generations_started_total', 'llm_time_to_first_token_seconds', 'llm_tokens_per_second',
  'llm_upstream_errors_total', 'generations_resumed_total', 'generations_stopped_total'
].map((n) => 'fastify_sse_stream_' + n)

t.test('GET /metrics passes `promtool check metrics` and has every documented family, with samples after real traffic', async (t) => {
  const { url } = await startService(t)
  const ticker = await openStream(url + '/ticker?symbols=ACME')
  await ticker.waitForEvents(1)
  const answer = await fetch(url + '/events?prompt=hello')
  t.equal(answer.status, 200)
  await answer.text()
  const res = await fetch(url + '/metrics')
  t.equal(res.status, 200)
  t.match(res.headers['get']('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  ticker.destroy()

  const { families } = parseExposition(text)
  t.same(FAMILIES.filter((f) => !families.has(f)), [], 'every family is exposed')
  t.equal(valueOf(text, 'fastify_sse_stream_streams_open', { route: '/ticker' }), 1)
  t.equal(valueOf(text, 'fastify_sse_stream_hub_up', { backplane: 'memory' }), 1)
  t.ok(valueOf(text, 'fastify_sse_stream_events_written_total', { route: '/events' }) > 0)
  t.equal(parseExposition(text).samples.filter((s) => s.labels.route?.includes('?') === true).length, 0, 'no query string in a route label')

  await t.test('and Prometheus\' own checker accepts it', { skip: promtool ? false : 'promtool is missing (apt-get install prometheus; .ci/run installs it)' }, async (t) => {
    const result = await check(text)
    t.equal(result.code, 0, `promtool check metrics: ${result.output}`)
    t.equal(result.output.trim(), '', 'no lint complaints')
  })
})

t.test('the time-to-first-token histogram counts one observation per generation', async (t) => {
  const { url } = await startService(t)
  const before = await scrape(url)
  for (let i = 0; i < 3; i++) await (await fetch(url + '/events?prompt=count+me')).text()
  const after = await scrape(url)
  const delta = (name: string): number => valueOf(after, name) - valueOf(before, name)
  t.equal(delta('fastify_sse_stream_llm_generations_started_total'), 3)
  t.equal(delta('fastify_sse_stream_llm_time_to_first_token_seconds_count'), 3)
  t.equal(valueOf(after, 'fastify_sse_stream_llm_generations_active'), 0, 'none left running')
  t.equal(delta('fastify_sse_stream_llm_upstream_errors_total'), 0)
})

t.test('an upstream 429 moves the upstream error counter under its code, and starts no first-token clock', async (t) => {
  const fake = await startFakeUpstream({ kind: 'status', status: 429, retryAfter: '7' })
  t.teardown(() => fake.close())
  const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm', EVENTS_RESUME: 'off' })
  const res = await fetch(url + '/events?prompt=hi')
  t.equal(res.status, 429)
  await res.text()
  const text = await scrape(url)
  t.equal(valueOf(text, 'fastify_sse_stream_llm_upstream_errors_total', { code: 'SSE_ERR_UPSTREAM_RATE_LIMITED' }), 1)
  t.equal(valueOf(text, 'fastify_sse_stream_llm_time_to_first_token_seconds_count'), 0)
  t.equal(valueOf(text, 'fastify_sse_stream_streams_ended_total', { route: '/events', reason: 'error' }), 1)
})

t.test('with METRICS_TOKEN, /metrics needs it as a bearer token, and is not rate-limited like /events', async (t) => {
  const { url } = await startService(t, { METRICS_TOKEN: 's3cret-token', RATE_LIMIT_MAX: '1' })
  const denied = await fetch(url + '/metrics')
  t.equal(denied.status, 401)
  t.match(await denied.json(), { code: 'SSE_ERR_UNAUTHORIZED', message: /METRICS_TOKEN/ })
  t.equal((await fetch(url + '/metrics', { headers: { authorization: 'Bearer wrong' } })).status, 401)
  for (let i = 0; i < 3; i++) {
    const ok = await fetch(url + '/metrics', { headers: { authorization: 'Bearer s3cret-token' } })
    t.equal(ok.status, 200)
    await ok.text()
  }
})

t.test('the Grafana dashboard is dashboard JSON whose every query names metrics the exposition has', async (t) => {
  const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8'))
  t.type(dashboard.title, 'string')
  t.type(dashboard.schemaVersion, 'number')
  t.ok(Array.isArray(dashboard.panels) && dashboard.panels.length >= 4)
  const { url } = await startService(t)
  const { families } = parseExposition(await scrape(url))
  const known = (name: string): boolean => families.has(name) || families.has(name.replace(/_(bucket|count|sum)$/, ''))
  const titles: string[] = []
  for (const panel of dashboard.panels) {
    t.type(panel.title, 'string')
    t.match(panel.gridPos, { h: Number, w: Number, x: Number, y: Number }, `${panel.title}: gridPos`)
    t.ok(Array.isArray(panel.targets) && panel.targets.length > 0, `${panel.title}: has queries`)
    for (const target of panel.targets) {
      const names = [...new Set<string>(target.expr.match(/\bfastify_sse_stream_[a-z_]+/g) ?? [])]
      t.ok(names.length > 0, `${panel.title}: ${target.expr} queries our metrics`)
      t.same(names.filter((n) => !known(n)), [], `${panel.title}: every metric exists`)
    }
    titles.push(panel.title)
  }
  for (const wanted of [/open streams/i, /events/i, /first token/i, /upstream errors/i]) t.ok(titles.some((x) => wanted.test(x)), `a panel for ${wanted}`)
})
