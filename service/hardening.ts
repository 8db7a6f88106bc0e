// Small defences of the HTTP server itself, outside any route.
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * A body over the limit announced with `Expect: 100-continue` gets its 413 before the client
 * sends it. Node answers `100 Continue` by itself when nobody listens for `checkContinue`; the
 * client then streams a body that Fastify refuses unread, and the client sees a broken pipe
 * instead of the 413.
 */
export function refuseLargeBodiesEarly (app: FastifyInstance): void {
  const limit = app.initialConfig.bodyLimit ?? 1024 * 1024
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const length = Number(req.headers['content-length'])
    if (Number.isFinite(length) && length > limit) {
      const body = JSON.stringify({
        statusCode: 413,
        code: 'FST_ERR_CTP_BODY_TOO_LARGE',
        error: 'Payload Too Large',
        message: 'Request body is too large'
      })
      res.writeHead(413, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
      res.end(body)
      return
    }
    res.writeContinue()
    app.server.emit('request', req, res)
  })
}

/**
 * @fastify/swagger-ui redirects `<prefix>/static/index.html` to the UI by rewriting a URL that
 * ends in `/static/index.html`; with a query string the rewrite misses and the redirect points at
 * itself, forever. Such requests go to the UI's own page instead.
 */
export function breakSwaggerUiRedirectLoop (app: FastifyInstance, prefix: string): void {
  const page = `${prefix}/static/index.html?`
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith(page)) await reply.redirect(`${prefix}/`)
  })
}
