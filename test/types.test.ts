// Type tests of the published declarations (dist/*.d.ts through the package's exports map, as a
// user's TypeScript sees them): test/types/*.test-d.ts must compile, and test/types/negative/ must
// fail with exactly the errors it is written to have, so the checks are known to bite.
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = root + 'node_modules/typescript/bin/tsc'

async function compile (project: string): Promise<{ code: number, output: string }> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', project, '--pretty', 'false'], { cwd: root }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err.code as number), output: stdout + stderr })
    })
  })
}

t.before(() => {
  if (!existsSync(root + 'dist/lib/index.d.ts')) throw new Error('dist/ is missing: run `npm run build` (npm test does)')
})

t.test('the published declarations type the plugin, the subpaths and the client as documented', async (t) => {
  const { code, output } = await compile('test/types/tsconfig.json')
  t.equal(output, '', 'no type errors')
  t.equal(code, 0)
})

t.test('a wrong type is caught: the negative file fails on each line marked WRONG, and only there', async (t) => {
  const { code, output } = await compile('test/types/negative/tsconfig.json')
  t.not(code, 0)
  const lines = [...output.matchAll(/^test\/types\/negative\/wrong\.ts\((\d+),\d+\): error/gm)].map((m) => Number(m[1]))
  t.same(lines, [9, 10], output)
})
