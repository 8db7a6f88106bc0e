// Test helpers: a real server on a real port, and a raw HTTP/1.1 reader for event streams.
import http, { type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { createParser, type EventSourceMessage } from 'eventsource-parser'

/** Listens on 127.0.0.1 and a free port; returns the base URL. */
export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return `http://127.0.0.1:${port}`
}

export interface OpenStream {
  res: IncomingMessage
  /** Everything received so far, exactly as sent (after chunked decoding). */
  text: () => string
  /** Events parsed so far by eventsource-parser. */
  events: EventSourceMessage[]
  comments: string[]
  /** Resolves once `count` events have arrived. */
  waitForEvents: (count: number) => Promise<EventSourceMessage[]>
  /** Resolves once a comment has arrived. */
  waitForComment: () => Promise<string>
  /** Resolves when the server ends the response. */
  ended: Promise<void>
  /** Destroys the socket: a real client disconnect. */
  destroy: () => void
}

/** GETs an event stream and parses it as it arrives. */
export async function openStream (url: string, headers: Record<string, string> = {}): Promise<OpenStream> {
  const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false })
  const [res] = await once(req, 'response') as [IncomingMessage]
  res.setEncoding('utf8')
  let text = ''
  const events: EventSourceMessage[] = []
  const comments: string[] = []
  let waiters: Array<() => void> = []
  const wake = (): void => { const w = waiters; waiters = []; for (const f of w) f() }
  const parser = createParser({
    onEvent: (ev) => { events.push(ev); wake() },
    onComment: (c) => { comments.push(c); wake() }
  })
  const ended = new Promise<void>((resolve) => {
    res.on('end', resolve)
    res.on('close', resolve)
    res.on('error', () => resolve())
  })
  ended.then(wake, wake)
  res.on('data', (chunk: string) => { text += chunk; parser.feed(chunk) })
  let finished = false
  ended.then(() => { finished = true }, () => {})
  const until = async (ok: () => boolean, what: string): Promise<void> => {
    while (!ok()) {
      if (finished) throw new Error(`stream ended before ${what}; got ${JSON.stringify(text)}`)
      await new Promise<void>((resolve) => waiters.push(resolve))
    }
  }
  return {
    res,
    text: () => text,
    events,
    comments,
    waitForEvents: async (count) => { await until(() => events.length >= count, `${count} events`); return events.slice(0, count) },
    waitForComment: async () => { await until(() => comments.length > 0, 'a comment'); return comments[0] },
    ended,
    destroy: () => { req.destroy(); res.destroy() }
  }
}

/** A promise with its resolve function, for waiting on a callback. */
export function deferred<T = void> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((_resolve) => { resolve = _resolve })
  return { promise, resolve }
}
