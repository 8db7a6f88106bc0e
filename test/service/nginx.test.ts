// The service behind a real nginx, configured exactly as docs/deployment.md says (its `nginx` block
// and its TRUST_PROXY value, with only the ports changed): a client cannot choose the address the
// service sees by sending its own X-Forwarded-For, so it can neither resume nor stop another
// client's generation, nor dodge the rate limit. nginx sees every test client as a different
// loopback address (127.0.0.2, 127.0.0.3, …: Linux routes all of 127/8 to lo), as if they were
// different machines.
import t, { type Test } from 'tap'
import http from 'node:http'
import net from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createParser } from 'eventsource-parser'
import { startFakeUpstream } from '../fixtures/fake-upstream.js'
import { startService } from '../fixtures/service.js'
import { packageRoot } from '../../service/package-root.js'

const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx'
const skip = existsSync(NGINX)
  ? false
  : `nginx not found at ${NGINX}: install it (apt-get install nginx, as .ci/run does) or set NGINX_PATH to run this test`

/** The nginx config and the TRUST_PROXY value that docs/deployment.md tells operators to use. */
function documented (): { nginx: string, trustProxy: string } {
  const doc = readFileSync(join(packageRoot, 'docs', 'deployment.md'), 'utf8')
  const section = doc.slice(doc.indexOf('## nginx in front'))
  const nginx = /```nginx\n([\s\S]*?)```/.exec(section)?.[1]
  const sh = /```sh\n([\s\S]*?)```/.exec(section)?.[1]
  const trustProxy = sh === undefined ? undefined : /\bTRUST_PROXY=(\S+)/.exec(sh)?.[1]
  if (nginx === undefined || trustProxy === undefined) throw new Error('docs/deployment.md: the nginx section lost its nginx block or its TRUST_PROXY setting')
  return { nginx, trustProxy }
}

/** Replaces `what` in `text`, which must be there: a doc edit that breaks the substitution fails here. */
function replace (text: string, what: RegExp, by: string): string {
  if (!what.test(text)) throw new Error(`docs/deployment.md's nginx config no longer matches ${String(what)}`)
  return text.replace(what, by)
}

async function freePort (): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

interface Reply { status: number, body: string, events: Array<{ event?: string, id?: string, data: string }> }

/** A request through nginx from `from`, a loopback address of its own: another client. */
async function request (from: string, port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const req = http.request({ host: '127.0.0.1', port, method, path, localAddress: from, headers, agent: false })
  req.end()
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk
  const events: Reply['events'] = []
  createParser({ onEvent: (e) => events.push({ event: e.event, id: e.id, data: e.data }) }).feed(body)
  return { status: res.statusCode ?? 0, body, events }
}

/** Starts nginx with the documented config in front of `appPort`; stopped when `t` ends. */
async function startNginx (t: Test, appPort: number): Promise<number> {
  const { nginx } = documented()
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    let site = replace(nginx, /server 127\.0\.0\.1:8081\b/, `server 127.0.0.1:${appPort}`)
    site = replace(site, /^.*server 127\.0\.0\.1:8082\b.*\n/m, '')
    site = replace(site, /listen 80;/, `listen 127.0.0.1:${port};`)
    // What a distribution's nginx.conf provides around a site file, pointed at the temp directory.
    writeFileSync(join(dir, 'nginx.conf'), `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${site}
}
`)
    const child: ChildProcess = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    const exited = once(child, 'exit')
    t.teardown(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM') // nginx's fast shutdown: the master takes its workers with it
      await exited
    })
    // Up once a request through it reaches the service.
    for (let i = 0; i < 200 && child.exitCode === null; i++) {
      try {
        if ((await request('127.0.0.1', port, 'GET', '/health')).status === 200) return port
      } catch {}
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    if (child.exitCode === null) throw new Error(`nginx did not start: ${stderr}`)
    if (!/Address already in use/.test(stderr) || attempt >= 5) throw new Error(`nginx exited: ${stderr}`)
  }
}

t.test('behind the documented nginx config, a forged X-Forwarded-For neither resumes, nor stops, nor escapes the rate limit', { skip }, async (t) => {
  const fake = await startFakeUpstream({ kind: 'normal', tokens: ['Once', ' upon', ' a', ' time', '.'] })
  t.teardown(() => fake.close())
  const { app } = await startService(t, {
    LLM_BASE_URL: fake.baseURL,
    LLM_MODEL: 'm',
    TRUST_PROXY: documented().trustProxy,
    RATE_LIMIT_MAX: '3'
  })
  const port = await startNginx(t, (app.server.address() as net.AddressInfo).port)
  const alice = '127.0.0.2'
  const mallory = '127.0.0.3'

  const answer = await request(alice, port, 'GET', '/events?prompt=story')
  t.equal(answer.status, 200)
  const cursor = answer.events[1].id!
  const generation = cursor.split(':')[0]
  t.match(cursor, /^[A-Za-z0-9_-]{22}:2$/)

  for (const forged of [alice, `${alice}, ${alice}`, `${mallory}, ${alice}`]) {
    const stolen = await request(mallory, port, 'GET', '/events?prompt=story', { 'x-forwarded-for': forged, 'last-event-id': cursor })
    t.equal(stolen.status, 204, `X-Forwarded-For: ${forged} does not make Mallory Alice: nothing to resume`)
    t.equal(stolen.body, '')
  }
  const stop = await request(mallory, port, 'DELETE', `/events/${generation}`, { 'x-forwarded-for': alice })
  t.equal(stop.status, 404, 'nor can Mallory stop it')

  const back = await request(alice, port, 'GET', '/events?prompt=story', { 'last-event-id': cursor })
  t.equal(back.status, 200, 'Alice, through the same nginx, resumes her own generation')
  t.same(back.events.map((e) => e.data), answer.events.slice(2).map((e) => e.data))

  // The rate limit (3 per window) counts the address nginx saw, whatever each request claims.
  const limited = []
  for (let i = 0; i < 4; i++) {
    limited.push(await request('127.0.0.4', port, 'GET', '/events?prompt=hi', { 'x-forwarded-for': `198.51.100.${i + 1}` }))
  }
  t.same(limited.map((r) => r.status), [200, 200, 200, 429], 'a new forged address per request does not reset the count')
  t.match(JSON.parse(limited[3].body), { code: 'SSE_ERR_RATE_LIMITED' })
  t.equal((await request('127.0.0.5', port, 'GET', '/events?prompt=hi')).status, 200, 'another client is not limited: the key is the real address, not nginx\'s')
})
