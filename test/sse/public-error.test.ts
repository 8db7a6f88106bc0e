// Which error text a client may see: one policy for the HTTP error body and the `event: error` frame.
import t from 'tap'
import createError from '@fastify/error'
import { publicError } from '../../lib/sse/public-error.js'
import { SSE_ERR_HUB_UNAVAILABLE, SSE_ERR_INVALID_LAST_EVENT_ID } from '../../lib/errors.js'

const INTERNAL = { statusCode: 500, code: 'SSE_ERR_INTERNAL', message: 'Internal Server Error' }

t.test('a 4xx error is shown as it is, and one without a code of its own carries SSE_ERR_REQUEST', async (t) => {
  t.same(publicError(new SSE_ERR_INVALID_LAST_EVENT_ID('too long')),
    { statusCode: 400, code: 'SSE_ERR_INVALID_LAST_EVENT_ID', message: 'Invalid Last-Event-ID: too long' })
  const Teapot = createError('APP_TEAPOT', 'short and stout', 418)
  t.same(publicError(new Teapot()), { statusCode: 418, code: 'APP_TEAPOT', message: 'short and stout' })
  t.same(publicError(Object.assign(new Error('no such thing'), { statusCode: 404 })),
    { statusCode: 404, code: 'SSE_ERR_REQUEST', message: 'no such thing' })
})

t.test('our own coded 5xx errors are shown: they are written for clients', async (t) => {
  t.same(publicError(new SSE_ERR_HUB_UNAVAILABLE('Redis is reconnecting')),
    { statusCode: 503, code: 'SSE_ERR_HUB_UNAVAILABLE', message: 'The event hub is unavailable: Redis is reconnecting' })
})

t.test('anything else is a bare 500 that shows nothing of the original', async (t) => {
  t.same(publicError(new Error('connect ECONNREFUSED 10.0.0.7:5432')), INTERNAL)
  t.same(publicError(Object.assign(new Error('db down'), { statusCode: 502, code: 'ECONNREFUSED' })), INTERNAL)
  t.same(publicError(Object.assign(new Error('odd status'), { statusCode: 700, code: 'SSE_ERR_X' })),
    { statusCode: 500, code: 'SSE_ERR_X', message: 'odd status' }, 'an out-of-range status becomes 500')
  t.same(publicError('a string was thrown'), INTERNAL)
  t.same(publicError(undefined), INTERNAL)
  t.same(publicError(null), INTERNAL)
})
