// The package boundary, checked on the sources and on what Node actually loads: the library (lib/)
// never imports the demo service or the route plugins, a package it imports for its values is a
// runtime dependency (or fastify, a peer) so that optional peers are only ever loaded on demand,
// and `import 'fastify-sse-stream'` loads no Redis, no OpenAI and nothing outside lib/.
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

const root = fileURLToPath(new URL('../..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  peerDependenciesMeta: Record<string, { optional?: boolean }>
}

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return sources(path)
    return e.name.endsWith('.ts') ? [path] : []
  })
}

interface Import { file: string, specifier: string, typeOnly: boolean, dynamic: boolean }

/** Every import of a TypeScript file: static (`import … from`, `export … from`, `import '…'`) and `import('…')`. */
function importsOf (file: string): Import[] {
  const text = readFileSync(file, 'utf8')
  const found: Import[] = []
  for (const m of text.matchAll(/^(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)'/gm)) {
    found.push({ file, specifier: m[3], typeOnly: m[2] !== undefined, dynamic: false })
  }
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) {
    // `typeof import('x')` in a type position loads nothing.
    const before = text.slice(Math.max(0, m.index - 7), m.index)
    found.push({ file, specifier: m[1], typeOnly: before === 'typeof ', dynamic: true })
  }
  return found
}

const packageName = (specifier: string): string =>
  specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/')

const libImports = sources(join(root, 'lib')).flatMap(importsOf)

t.test('the import scan sees the imports it checks', async (t) => {
  // Guards the checks below against a scan that silently finds nothing.
  const specifiers = new Set(libImports.map((i) => i.specifier))
  for (const s of ['fastify-plugin', '@fastify/error', './errors.js', '../errors.js', 'ioredis']) t.ok(specifiers.has(s), s)
  t.ok(libImports.some((i) => i.specifier === 'ioredis' && i.dynamic && !i.typeOnly), 'ioredis is imported dynamically')
})

t.test('no file in lib/ imports the service, the route plugins or anything outside lib/', async (t) => {
  const lib = join(root, 'lib')
  const outside = libImports
    .filter((i) => i.specifier.startsWith('.'))
    .filter((i) => relative(lib, resolve(dirname(i.file), i.specifier)).startsWith('..'))
    .map((i) => `${relative(root, i.file)} imports ${i.specifier}`)
  t.same(outside, [])
})

t.test('lib/ loads optional peers only dynamically, and statically only its dependencies and fastify', async (t) => {
  const allowed = new Set([...Object.keys(pkg.dependencies), 'fastify'])
  const optional = new Set(Object.keys(pkg.peerDependenciesMeta).filter((n) => pkg.peerDependenciesMeta[n].optional === true))
  const builtins = new Set(builtinModules)
  const wrong = libImports
    .filter((i) => !i.specifier.startsWith('.') && !i.specifier.startsWith('node:') && !builtins.has(i.specifier) && !i.typeOnly)
    .filter((i) => i.dynamic ? !optional.has(packageName(i.specifier)) && !allowed.has(packageName(i.specifier)) : !allowed.has(packageName(i.specifier)))
    .map((i) => `${relative(root, i.file)} imports ${i.specifier}${i.dynamic ? ' dynamically' : ''}`)
  t.same(wrong, [])
  // fastify is a peer and the plugin only needs its types: keep it that way.
  t.same(libImports.filter((i) => i.specifier === 'fastify' && !i.typeOnly).map((i) => relative(root, i.file)), [])
})

// Records every module Node loads while importing `entry`: ESM through a resolve hook (which runs on
// its own thread, so it appends to a file), CommonJS through require.cache.
const RECORDER = `
import { register } from 'node:module'
import { appendFileSync } from 'node:fs'
const log = process.env.LOADED_LOG
const hooks = 'data:text/javascript,' + encodeURIComponent(\`
import { appendFileSync } from 'node:fs'
export async function resolve (specifier, context, next) {
  const result = await next(specifier, context)
  appendFileSync(\${JSON.stringify(log)}, result.url + '\\\\n')
  return result
}\`)
register(hooks)
`

async function loadedBy (entry: string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'sse-loaded-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const log = join(dir, 'loaded.txt')
  // Only what the import adds: under tap, the child also preloads tap's own coverage hooks.
  const script = `
    import { createRequire } from 'node:module'
    import { appendFileSync } from 'node:fs'
    const cache = createRequire(import.meta.url).cache
    const before = new Set(Object.keys(cache))
    appendFileSync(process.env.LOADED_LOG, '--- import\\n')
    await import(${JSON.stringify(pathToFileURL(entry).href)})
    const cjs = Object.keys(cache).filter((f) => !before.has(f))
    appendFileSync(process.env.LOADED_LOG, cjs.map((f) => 'file://' + f).join('\\n') + '\\n')`
  await promisify(execFile)(process.execPath, [
    '--import', 'data:text/javascript,' + encodeURIComponent(RECORDER), '--input-type=module', '-e', script
  ], { cwd: root, env: { ...process.env, LOADED_LOG: log, NODE_OPTIONS: '' } })
  const lines = readFileSync(log, 'utf8').split('\n')
  return [...new Set(lines.slice(lines.indexOf('--- import')).filter((l) => l.startsWith('file://')))]
}

t.test("importing '.' loads no Redis, no OpenAI, no prom-client, and nothing of the service or the routes", async (t) => {
  const entry = join(root, 'dist/lib/index.js')
  if (!existsSync(entry)) throw new Error('dist/lib/index.js is missing: run `npm run build` (npm test does)')
  const loaded = (await loadedBy(entry)).map((url) => relative(root, fileURLToPath(url)))
  t.ok(loaded.includes('dist/lib/index.js') && loaded.includes('dist/lib/sse/stream.js'), 'the recorder saw the plugin load')
  t.ok(loaded.some((f) => f.includes('node_modules/fastify-plugin/')), 'the recorder saw a CommonJS dependency load')
  const unwanted = loaded.filter((f) => /node_modules\/(ioredis|openai|@fastify\/rate-limit|prom-client)\/|^dist\/(service|routes)\//.test(f) ||
    (!f.startsWith('dist/lib/') && !f.startsWith('node_modules/')))
  t.same(unwanted, [])
  const packages = [...new Set(loaded.filter((f) => f.startsWith('node_modules/')).map((f) => packageName(f.slice('node_modules/'.length))))]
  t.same(packages.filter((p) => !(p in pkg.dependencies)), [], 'every package loaded is a runtime dependency')
})

t.test("'.' exports the plugin, the encoder and the library's errors, and no internals or service errors", async (t) => {
  const entry = join(root, 'dist/lib/index.js')
  const mod = await import(pathToFileURL(entry).href) as Record<string, unknown> & { errors: Record<string, unknown> }
  t.same(Object.keys(mod).sort(), ['SseFrame', 'default', 'encode', 'encodeComment', 'encodeData', 'encodeFrame', 'errors', 'fastifySseStream'])
  for (const internal of ['resolveOptions', 'GenerationStore', 'parseEventId', 'createHub', 'createRedisHub']) t.notOk(internal in mod, internal)
  const codes = Object.keys(mod.errors)
  t.ok(codes.includes('SSE_ERR_INVALID_FIELD') && codes.includes('SSE_ERR_MISSING_PEER'))
  for (const other of ['SSE_ERR_UNKNOWN_SYMBOL', 'SSE_ERR_INVALID_CONFIG', 'SSE_ERR_UPSTREAM_FAILED']) t.notOk(codes.includes(other), other)
})
