import t from 'tap'
import { corsFromEnv } from '../../service/cors.js'

t.test('CORS_ORIGINS takes exact origins; anything else is a coded config error naming the variable', async (t) => {
  t.equal(corsFromEnv({}), undefined, 'off by default')
  t.same(corsFromEnv({ CORS_ORIGINS: 'https://a.example, http://127.0.0.1:5173' }),
    { origins: ['https://a.example', 'http://127.0.0.1:5173'], credentials: false })
  t.same(corsFromEnv({ CORS_ORIGINS: 'https://a.example', CORS_CREDENTIALS: 'on' })?.credentials, true)
  for (const bad of ['*', 'https://a.example/', 'https://a.example/app', 'a.example', 'ftp://a.example']) {
    t.throws(() => corsFromEnv({ CORS_ORIGINS: bad }), { code: 'SSE_ERR_INVALID_CONFIG', message: /CORS_ORIGINS/ }, `refuses ${bad}`)
  }
  t.throws(() => corsFromEnv({ CORS_ORIGINS: 'https://a.example', CORS_CREDENTIALS: 'yes' }), { message: /CORS_CREDENTIALS/ })
})
