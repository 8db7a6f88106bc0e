// Child processes for the runner: each pinned to its own core with `taskset` when the machine has
// two or more, and with the open-files limit raised to the hard limit first (5 000 connections
// need more descriptors than the usual soft limit of 1 024).
import { spawn, spawnSync } from 'node:child_process'
import os from 'node:os'

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0
const cores = os.availableParallelism()

/** Where servers and clients run: core 0 and core 1, or anywhere on a single-core machine. */
export const placement = hasTaskset && cores >= 2 ? { server: '0', client: '1' } : undefined

export function fdLimit () {
  const r = spawnSync('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; ulimit -n'], { encoding: 'utf8' })
  return Number(r.stdout.trim())
}

/** Whether `strace` can trace a child here (containers may forbid ptrace). */
export const hasStrace = spawnSync('strace', ['-f', '-qq', '-c', '-o', '/dev/null', 'true']).status === 0

/**
 * Starts `node <args>` on `core`; the child's stdout is read line by line. Returns the child and
 * a function that resolves with the next stdout line (or rejects when the child exits first).
 */
export function startNode (args, core, prefix = []) {
  const pin = core !== undefined ? `exec taskset -c ${core} "$0" "$@"` : 'exec "$0" "$@"'
  // `prefix` runs node under another command (strace), still pinned and with the raised limit.
  const argv = prefix.length > 0 ? [...prefix, process.execPath, ...args] : [process.execPath, ...args]
  const child = spawn('sh', ['-c', `ulimit -n "$(ulimit -Hn)" 2>/dev/null; ${pin}`, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  let buffered = ''
  const waiting = []
  const lines = []
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000) })
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk) => {
    buffered += chunk
    let nl
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      const w = waiting.shift()
      if (w !== undefined) w.resolve(line)
      else lines.push(line)
    }
  })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  exited.then(({ code, signal }) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`process exited (${code ?? signal}) before answering: ${stderr.trim()}`))
  })
  function nextLine (timeoutMs) {
    if (lines.length > 0) return Promise.resolve(lines.shift())
    if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`process exited: ${stderr.trim()}`))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs)
      waiting.push({
        resolve: (line) => { clearTimeout(timer); resolve(line) },
        reject: (err) => { clearTimeout(timer); reject(err) }
      })
    })
  }
  return { child, nextLine, exited, stderr: () => stderr }
}
