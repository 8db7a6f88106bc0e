// How many event streams this instance has open right now, for GET /health: every request is
// tracked until its socket closes, and a stream is a reply that `reply.sse()` took over (hijacked)
// and has not ended. Counted on demand, so the hot path pays one Set insert per request.
import type { FastifyInstance, FastifyReply } from 'fastify'

/** Adds the tracking hook to `app` (call it before the routes); returns the counter. */
export function trackOpenStreams (app: FastifyInstance): () => number {
  const inflight = new Set<FastifyReply>()
  app.addHook('onRequest', (request, reply, done) => {
    inflight.add(reply)
    reply.raw.once('close', () => inflight.delete(reply))
    done()
  })
  return () => {
    let open = 0
    // `sent` is true for a hijacked reply from the moment it is taken over; an ordinary reply is
    // also `sent` once ended, which `writableEnded` tells apart.
    for (const reply of inflight) if (reply.sent && !reply.raw.writableEnded && reply.raw.headersSent) open++
    return open
  }
}
