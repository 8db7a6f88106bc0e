// The upstream's API key never reaches a log line: not stdout, not /logs, not even when the
// upstream echoes it back in its 401 the way OpenAI does ("Incorrect API key provided: sk-…").
import t from 'tap'
import { startFakeUpstream } from '../fixtures/fake-upstream.js'
import { ensureBuilt, startServer } from '../fixtures/server-process.js'
import { openStream } from '../helpers/http.js'

t.before(ensureBuilt)

// Not shaped like an OpenAI key: only the configured value can give it away.
const KEY = 'gsk_configured_secret_987654321'
// Shaped like one, but not configured: caught by its shape.
const OTHER = 'sk-proj-AbCdEf0123456789xyz'

t.test('an upstream 401 echoing the key leaves it in neither stdout nor /logs', async (t) => {
  const fake = await startFakeUpstream({ kind: 'status', status: 401, message: `Incorrect API key provided: ${KEY}. Also tried ${OTHER}. You can find your API key at https://platform.openai.com/account/api-keys.` })
  t.teardown(() => fake.close())
  const { url, output } = await startServer(t, { LLM_BASE_URL: fake.baseURL, LLM_API_KEY: KEY, LLM_MODEL: 'm', LOG_LEVEL: 'trace' })
  const logs = await openStream(`${url}logs?level=trace`)
  t.teardown(logs.destroy)
  await logs.waitForComment()

  const res = await fetch(`${url}events?prompt=hi`)
  t.equal(res.status, 502)
  const body = await res.json()
  t.equal(body.code, 'SSE_ERR_UPSTREAM_AUTH')

  // The warning about the upstream is the last thing this request logs before completing.
  for (let n = 1; !logs.events.some((e) => e.data.includes('SSE_ERR_UPSTREAM_AUTH')); n++) await logs.waitForEvents(logs.events.length + 1)
  const warning = logs.events.map((e) => JSON.parse(e.data)).find((r) => r.code === 'SSE_ERR_UPSTREAM_AUTH')
  t.equal(warning.level, 40)
  t.match(warning.cause, /Incorrect API key provided: \[redacted\]/, 'the cause is logged, masked')
  t.equal(warning.upstream, fake.baseURL, 'the upstream address is in the log, for the operator')
  t.equal(fake.requests[0].headers.authorization, `Bearer ${KEY}`, 'the key did go upstream')

  for (const [where, text] of [['stdout', output()], ['/logs', logs.text()], ['the response', JSON.stringify(body)]]) {
    t.notOk(text.includes(KEY), `the configured key is not in ${where}`)
    t.notOk(text.includes(OTHER), `a key-shaped string is not in ${where}`)
  }
  t.match(output(), /SSE_ERR_UPSTREAM_AUTH/, 'stdout did get the warning')
})
