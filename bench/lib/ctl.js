// The client's side of a server's control API (see server.js).
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

export function ctl (port, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { body += chunk })
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`control ${path}: ${res.statusCode} ${body}`))
        else resolve(JSON.parse(body))
      })
    }).on('error', reject)
  })
}

/** Polls `check()` every `everyMs` until it returns true; throws after `timeoutMs`. */
export async function waitFor (what, check, timeoutMs, everyMs = 20) {
  const deadline = performance.now() + timeoutMs
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** A server shared by several cases (`--quick`) may still be closing the last case's subscribers. */
export function noSubscribers (port, timeoutMs) {
  return waitFor('the previous subscribers to go', async () => (await ctl(port, '/stats')).subscribers === 0, timeoutMs)
}
