// A real redis-server for the Redis tests: started on a free port with persistence off, stopped at
// teardown, and restartable on the same port to test what happens when Redis goes away.
//
//   t.test('…', { skip: redisMissing() }, async (t) => {
//     const server = await startRedis(t)      // stopped when t ends
//     const redis = new Redis(server.url)
//   })
//
// Where the binary is missing the tests are skipped with a message saying how to get it; `.ci/run`
// installs Debian's `redis-server`, so CI always runs them.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import type { Test } from 'tap'

/** Where the server is looked for; `REDIS_SERVER_PATH` overrides it. */
export const REDIS_SERVER_PATH = process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server'

/** Why Redis tests cannot run here, or `false` when they can: tap's `skip` option. */
export function redisMissing (): string | false {
  if (existsSync(REDIS_SERVER_PATH)) return false
  return `redis-server not found at ${REDIS_SERVER_PATH}: install it (apt-get install redis-server, as .ci/run does) ` +
    'or set REDIS_SERVER_PATH to run the Redis tests'
}

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string
  port: number
  /** Kills the server at once (SIGKILL): what a crash looks like to clients. Its data is gone. */
  kill: () => Promise<void>
  /** Starts it again on the same port: empty, or with its data when started with `aof`. */
  start: () => Promise<void>
  /** Shuts it down cleanly (SIGTERM): with `aof`, everything written so far is on disk. */
  stop: () => Promise<void>
  /** SIGSTOP: the process hangs with its connections open, answering nothing. */
  pause: () => void
  /** SIGCONT: it goes on where it stopped. */
  resume: () => void
  /** True while the process runs. */
  readonly running: boolean
}

// Test files run in parallel, each with its own servers. A port from `listen(0)` is free only until
// someone else takes it, and a PING answered on it may come from another file's server; so ports are
// drawn below Linux's ephemeral range (where `listen(0)` never lands) and a server counts as ours
// only once it says itself that it is ready. A port taken meanwhile is simply drawn again.
const PORTS = { from: 20_000, to: 32_000 }

function randomPort (): number {
  return PORTS.from + Math.floor(Math.random() * (PORTS.to - PORTS.from))
}

/** Starts redis-server on `port`; resolves once it reports ready, rejects when it exits first. */
async function launch (port: number, aofDir?: string): Promise<ChildProcess> {
  const persistence = aofDir === undefined
    ? ['--appendonly', 'no']
    : ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', aofDir]
  const child = spawn(REDIS_SERVER_PATH, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence,
    '--protected-mode', 'yes', '--loglevel', 'notice', '--databases', '1'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const collect = (s: string): void => { output += s }
  child.stdout?.setEncoding('utf8').on('data', collect)
  child.stderr?.setEncoding('utf8').on('data', collect)
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000)
    const check = (): void => { if (output.includes('Ready to accept connections')) { clearTimeout(timer); resolve(true) } }
    child.stdout?.on('data', check)
    child.stderr?.on('data', check)
    child.once('exit', () => { clearTimeout(timer); resolve(false) })
  })
  if (!ready) {
    child.kill('SIGKILL')
    const error = new Error(`redis-server on port ${port} did not start: ${output.trim().split('\n').slice(-3).join(' | ')}`)
    ;(error as any).portTaken = /Address already in use/.test(output)
    throw error
  }
  // Nothing more is read; keep the pipes from filling up.
  child.stdout?.resume()
  child.stderr?.resume()
  return child
}

/**
 * Starts a redis-server on a free port; it is killed when `t` ends. `aof`: with append-only-file
 * persistence (fsync on every write) in a temporary directory, so a restart keeps the data.
 */
export async function startRedis (t: Test, opts: { aof?: boolean } = {}): Promise<RedisServer> {
  let port = 0
  let child: ChildProcess | undefined
  const aofDir = opts.aof === true ? mkdtempSync(join(tmpdir(), 'redis-aof-')) : undefined
  if (aofDir !== undefined) t.teardown(() => rmSync(aofDir, { recursive: true, force: true }))
  for (let attempt = 0; child === undefined; attempt++) {
    port = randomPort()
    try {
      child = await launch(port, aofDir)
    } catch (err) {
      if ((err as any).portTaken !== true || attempt >= 20) throw err
    }
  }
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child
    child = undefined
    if (c === undefined || c.exitCode !== null) return
    const exited = once(c, 'exit')
    c.kill(signal)
    await exited
  }
  const kill = async (): Promise<void> => { await end('SIGKILL') }
  t.teardown(kill)
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    start: async () => {
      if (child !== undefined) throw new Error('redis-server is already running')
      child = await launch(port, aofDir)
    },
    stop: async () => { await end('SIGTERM') },
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') },
    get running () { return child !== undefined && child.exitCode === null }
  }
}
