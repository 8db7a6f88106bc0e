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
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import net from 'node:net'
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
  /** Starts it again on the same port, empty. */
  start: () => Promise<void>
  /** True while the process runs. */
  readonly running: boolean
}

async function freePort (): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

async function launch (port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER_PATH, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--protected-mode', 'yes', '--loglevel', 'warning', '--databases', '1'
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  // Ready once it accepts a connection and answers PING.
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${stderr}`)
    if (await pong(port)) return child
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  child.kill('SIGKILL')
  throw new Error(`redis-server did not answer on port ${port} within 5 s: ${stderr}`)
}

async function pong (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let reply = ''
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.setTimeout(1000, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d) => { reply += d.toString(); if (reply.includes('\r\n')) done(reply.startsWith('+PONG')) })
  })
}

/** Starts a redis-server on a free port; it is killed when `t` ends. */
export async function startRedis (t: Test): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined = await launch(port)
  const kill = async (): Promise<void> => {
    const c = child
    child = undefined
    if (c === undefined || c.exitCode !== null) return
    const exited = once(c, 'exit')
    c.kill('SIGKILL')
    await exited
  }
  t.teardown(kill)
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    start: async () => {
      if (child !== undefined) throw new Error('redis-server is already running')
      child = await launch(port)
    },
    get running () { return child !== undefined && child.exitCode === null }
  }
}
