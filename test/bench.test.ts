// The benchmark harness (bench/run.js) as CI may run it: `--quick`, a few variants, in child
// processes on real sockets. Only correctness is asserted, never a timing.
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

interface RunResult {
  variant: string
  ok: boolean
  errors: string[]
  metrics: Record<string, number>
}
interface Report {
  quick: boolean
  cases: Array<{ id: string, results: RunResult[] }>
}

function bench (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bench/run.js', ...args], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as any).code ?? null, stdout, stderr })
    })
  })
}

const built = existsSync(root + 'dist/lib/index.js')

t.test('bench --quick delivers every event in order for raw node:http and for us', { skip: built ? false : 'dist/ is not built (npm run build)' }, async (t) => {
  const out = t.testdir() + '/quick.json'
  const hub = existsSync(root + 'dist/lib/hub/hub.js')
  const scenarios = hub ? 'S1-tokens,S2-50-b2b' : 'S1-tokens'
  const run = await bench(['--quick', '--scenarios', scenarios, '--variants', 'raw,ours', '--out', out])
  t.equal(run.code, 0, run.stderr)
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report
  t.equal(report.quick, true)
  t.same(report.cases.map((c) => c.id), scenarios.split(','))
  for (const c of report.cases) {
    t.same(c.results.map((r) => r.variant).sort(), ['ours', 'raw'], `${c.id}: one run per variant`)
    for (const r of c.results) {
      t.same(r.errors, [], `${c.id} ${r.variant}: no correctness errors`)
      t.equal(r.ok, true, `${c.id} ${r.variant}: all events, in order`)
    }
  }
  const s1 = report.cases[0].results.find((r) => r.variant === 'ours')
  t.ok(s1 !== undefined && s1.metrics.eventsPerSec > 0, 'S1 measured a rate')
  t.match(run.stdout, /\| fastify-sse-stream \|/, 'the table has our row')
})

t.test('bench refuses an unknown variant instead of measuring nothing', async (t) => {
  const run = await bench(['--quick', '--variants', 'nope'])
  t.not(run.code, 0)
  t.match(run.stderr, /unknown variant nope/)
})
