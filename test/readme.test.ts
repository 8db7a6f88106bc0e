import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { openStream } from './helpers/http.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

t.test('the README example runs as written and resumes after Last-Event-ID', async (t) => {
  const block = /## Example\n\n```js\n([\s\S]*?)```/.exec(readme)
  t.ok(block, 'the README has an Example code block')
  const listenLine = 'await app.listen({ port: 3000 })'
  t.ok(block![1].includes(listenLine))
  // Only the port changes: a free one, printed so the test can find it.
  const code = block![1].replace(listenLine,
    "await app.listen({ port: 0, host: '127.0.0.1' }); console.log(app.server.address().port)")
  // `-e` resolves `fastify-sse-stream` from the project root, as the package's own name (self-reference).
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill() })
  const [line] = await once(child.stdout, 'data') as [Buffer]
  const url = `http://127.0.0.1:${Number(String(line).trim())}/clock`

  const first = await openStream(url)
  const [a, b] = await first.waitForEvents(2)
  first.destroy()
  t.same([a.event, a.id, JSON.parse(a.data).n], ['tick', '1', 1])
  t.same([b.event, b.id, JSON.parse(b.data).n], ['tick', '2', 2])

  const resumed = await openStream(url, { 'last-event-id': '41' })
  const [c] = await resumed.waitForEvents(1)
  resumed.destroy()
  t.equal(c.id, '42')
})
