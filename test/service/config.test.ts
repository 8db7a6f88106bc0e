import t from 'tap'
import { loadConfig } from '../../service/config.js'

t.test('an empty environment gives the documented defaults: the demo model on 127.0.0.1:8080', async (t) => {
  const c = loadConfig({})
  t.equal(c.host, '127.0.0.1')
  t.equal(c.port, 8080)
  t.equal(c.logLevel, 'info')
  t.same(c.llm, { baseURL: undefined, apiKey: undefined, model: undefined, models: [], firstTokenTimeoutMs: 60000, idleTimeoutMs: 30000, maxRetries: 0 })
  t.equal(c.demoTokenDelayMs, 30)
  t.equal(c.maxPromptChars, 8000)
  t.same(c.rateLimit, { max: 30, timeWindowMs: 60000 })
  t.same(c.maxGenerations, { perClient: 3, total: 100 })
})

t.test('LLM_* variables win over the SDK\'s OPENAI_* ones, which are the fallback', async (t) => {
  const both = loadConfig({ LLM_BASE_URL: 'http://localhost:1234/v1/', OPENAI_BASE_URL: 'https://api.openai.com/v1', LLM_API_KEY: 'a', OPENAI_API_KEY: 'b', LLM_MODEL: 'qwen' })
  t.equal(both.llm.baseURL, 'http://localhost:1234/v1', 'trailing slash dropped')
  t.equal(both.llm.apiKey, 'a')
  t.equal(both.llm.model, 'qwen')
  const fallback = loadConfig({ OPENAI_BASE_URL: 'https://api.openai.com/v1', OPENAI_API_KEY: 'b' })
  t.equal(fallback.llm.baseURL, 'https://api.openai.com/v1')
  t.equal(fallback.llm.apiKey, 'b')
})

t.test('blank values count as unset', async (t) => {
  const c = loadConfig({ PORT: '', LLM_BASE_URL: '  ', LLM_MODEL: '' })
  t.equal(c.port, 8080)
  t.equal(c.llm.baseURL, undefined)
  t.equal(c.llm.model, undefined)
})

t.test('RATE_LIMIT_MAX=0 turns the rate limit off; PORT=0 picks a free port', async (t) => {
  t.equal(loadConfig({ RATE_LIMIT_MAX: '0' }).rateLimit, false)
  t.equal(loadConfig({ PORT: '0' }).port, 0)
})

const bad: Array<[Record<string, string>, string, RegExp]> = [
  [{ PORT: 'eighty' }, 'PORT', /integer from 0 to 65535, got "eighty"/],
  [{ PORT: '70000' }, 'PORT', /got "70000"/],
  [{ PORT: '-1' }, 'PORT', /got "-1"/],
  [{ PORT: '80.5' }, 'PORT', /got "80.5"/],
  [{ HOST: 'http://localhost' }, 'HOST', /host name or address/],
  [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /one of fatal, error, warn, info, debug, trace, silent/],
  [{ LLM_BASE_URL: 'localhost:1234' }, 'LLM_BASE_URL', /http\(s\) URL/],
  [{ LLM_BASE_URL: 'not a url' }, 'LLM_BASE_URL', /http\(s\) URL such as/],
  [{ OPENAI_BASE_URL: 'ftp://example.com' }, 'OPENAI_BASE_URL', /scheme "ftp:"/],
  [{ LLM_BASE_URL: 'http://user:sk-123@host/v1' }, 'LLM_BASE_URL', /must not carry credentials/],
  [{ LLM_FIRST_TOKEN_TIMEOUT_MS: '0' }, 'LLM_FIRST_TOKEN_TIMEOUT_MS', /from 1 to/],
  [{ LLM_IDLE_TIMEOUT_MS: 'soon' }, 'LLM_IDLE_TIMEOUT_MS', /got "soon"/],
  [{ LLM_MAX_RETRIES: '11' }, 'LLM_MAX_RETRIES', /from 0 to 10/],
  [{ DEMO_TOKEN_DELAY_MS: '1e3' }, 'DEMO_TOKEN_DELAY_MS', /got "1e3"/],
  [{ EVENTS_MAX_PROMPT_CHARS: '0' }, 'EVENTS_MAX_PROMPT_CHARS', /from 1/],
  [{ RATE_LIMIT_WINDOW_MS: '0' }, 'RATE_LIMIT_WINDOW_MS', /from 1/],
  [{ TRUST_PROXY: 'nginx' }, 'TRUST_PROXY', /a number of proxy hops, or proxy addresses/],
  // Fastify's `true` believes the left-most X-Forwarded-For entry, which the client writes itself.
  [{ TRUST_PROXY: 'true' }, 'TRUST_PROXY', /clients write themselves.*number of proxies/],
  [{ REDIS_COMMAND_TIMEOUT_MS: '0' }, 'REDIS_COMMAND_TIMEOUT_MS', /integer from 10/]
]
for (const [env, name, message] of bad) {
  t.test(`${name}=${Object.values(env)[0]} is refused with SSE_ERR_INVALID_CONFIG naming the variable`, async (t) => {
    const err: any = t.throws(() => loadConfig(env))
    t.equal(err.code, 'SSE_ERR_INVALID_CONFIG')
    t.match(err.message, new RegExp(`^Invalid configuration ${name}: `))
    t.match(err.message, message)
  })
}

t.test('a key in LLM_BASE_URL is refused without repeating it', async (t) => {
  const err: any = t.throws(() => loadConfig({ LLM_BASE_URL: 'http://user:sk-123@host/v1' }))
  t.notMatch(err.message, /sk-123/)
})

t.test('TRUST_PROXY: off by default; a hop count or a list of proxy addresses', async (t) => {
  t.equal(loadConfig({}).trustProxy, false)
  t.equal(loadConfig({ TRUST_PROXY: '1' }).trustProxy, 1)
  t.same(loadConfig({ TRUST_PROXY: '127.0.0.1, 10.0.0.0/8' }).trustProxy, ['127.0.0.1', '10.0.0.0/8'])
})
