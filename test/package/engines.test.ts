// An honest `engines`: every package the lockfile installs supports the Node versions this
// package claims, so `npm install` on the oldest of them prints no EBADENGINE warning. (Checked on
// the lockfile, where npm records each package's `engines`, instead of by a slow install.)
import t from 'tap'
import { readFileSync } from 'node:fs'
import semver from 'semver'

const read = (file: string): any => JSON.parse(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'))
const pkg = read('package.json') as { engines: { node: string } }
interface Entry { engines?: { node?: string } | string[], dependencies?: Record<string, string>, optionalDependencies?: Record<string, string> }
const lock = read('package-lock.json') as { packages: Record<string, Entry> }
const nodeRange = (entry: Entry): string | undefined => Array.isArray(entry.engines) ? undefined : entry.engines?.node

/** The lockfile path of `name` as required from the package at `from` (Node's lookup, upwards). */
function locate (name: string, from: string): string | undefined {
  for (let dir = from; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf('/node_modules/')))) {
    const path = (dir === '' ? '' : dir + '/') + 'node_modules/' + name
    if (path in lock.packages) return path
    if (dir === '') return undefined
  }
}

/** The packages a user installs with ours: the runtime dependencies and the peers, with theirs. */
function runtimeClosure (): string[] {
  const root = read('package.json') as { dependencies: Record<string, string>, peerDependencies: Record<string, string> }
  const seen = new Set<string>()
  const visit = (name: string, from: string): void => {
    const path = locate(name, from)
    if (path === undefined || seen.has(path)) return
    seen.add(path)
    const entry = lock.packages[path]
    for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) visit(dep, path)
  }
  for (const name of Object.keys({ ...root.dependencies, ...root.peerDependencies })) visit(name, '')
  return [...seen]
}

t.test('every package a user installs with ours supports every Node this package claims', async (t) => {
  const oldest = semver.minVersion(pkg.engines.node)!.version
  const closure = runtimeClosure()
  t.ok(closure.includes('node_modules/fastify') && closure.includes('node_modules/fastify-plugin'), `${closure.length} packages`)
  const wrong = closure.filter((path) => {
    const range = nodeRange(lock.packages[path])
    return range !== undefined && !semver.satisfies(oldest, range, { includePrerelease: true })
  }).map((path) => `${path} wants node ${nodeRange(lock.packages[path])}, not ${oldest} (engines: ${pkg.engines.node})`)
  t.same(wrong, [])
})

t.test('every package the repository installs supports the Node running it: npm install prints no EBADENGINE', async (t) => {
  t.ok(semver.satisfies(process.version, pkg.engines.node), `${process.version} satisfies ${pkg.engines.node}`)
  const wrong: string[] = []
  let checked = 0
  for (const [path, entry] of Object.entries(lock.packages)) {
    const range = nodeRange(entry)
    if (path === '' || range === undefined) continue
    checked++
    if (!semver.satisfies(process.version, range, { includePrerelease: true })) wrong.push(`${path} wants node ${range}, not ${process.version}`)
  }
  t.ok(checked > 50, `checked the engines of ${checked} packages`)
  t.same(wrong, [])
})
