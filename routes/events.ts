// GET/POST /events: an LLM's answer as Server-Sent Events, token by token. GET is what a browser's
// EventSource can do (`?prompt=`), POST is what scripts do (`{ messages }`). Each token is a default
// `message` event carrying the raw text, so `onmessage = e => out += e.data` rebuilds the answer;
// a last `done` event carries the finish reason and usage. The client leaving aborts the upstream.
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { randomBytes } from 'node:crypto'
import { streamChat, type ChatMessage } from '../lib/llm.js'
import type { UpstreamError } from '../lib/llm-errors.js'
import type { UpstreamResolver } from '../lib/upstream.js'
import { SSE_ERR_RATE_LIMITED } from '../lib/errors.js'
import { eventsResponses, postBody, querystring } from '../lib/events-schema.js'

export interface EventsRouteOptions {
  /** Gives the SDK client and model for a request (lib/upstream.ts). */
  upstream: UpstreamResolver
  /** 504 (or an `error` event once streaming) when no first token arrives in time. @default 60000 */
  firstTokenTimeoutMs?: number
  /** An `error` event when the upstream goes silent between tokens this long. @default 30000 */
  idleTimeoutMs?: number
  /** The longest prompt, system prompt or message content, in characters. @default 8000 */
  maxPromptChars?: number
  /** Requests per window per client address; `false` turns it off. @default { max: 30, timeWindowMs: 60000 } */
  rateLimit?: { max: number, timeWindowMs: number } | false
}

/** What both routes boil down to. */
interface Chat {
  messages: ChatMessage[]
  model?: string
  temperature?: number
  max_tokens?: number
  format?: 'text' | 'json'
}

interface EventsQuery {
  prompt: string
  system?: string
  model?: string
  temperature?: number
  max_tokens?: number
  format?: 'text' | 'json'
}

// Ours: `<generation>:<seq>`, the generation 16 random bytes in base64url (22 characters).
const OUR_EVENT_ID = /^[A-Za-z0-9_-]{22}:\d+$/

const DESCRIPTION = `Streams an answer from the configured OpenAI-compatible LLM (or the built-in demo model) as
Server-Sent Events.

- Default \`message\` events: the raw text of one token (newlines and leading spaces included; with
  \`format=json\` a JSON string instead, exact even for \`\\r\`). Ids are \`<generation>:<seq>\`.
- \`done\`: \`{ finish_reason, usage, model, demo }\`, then the stream ends. Close your EventSource on it,
  or it reconnects.
- \`error\`: \`{ code, message, statusCode }\` when the upstream fails after the stream has started.

Failures before the stream starts are HTTP errors with a JSON body: 400 bad input, 429 rate limited
(here or upstream; \`retry-after\` is set), 502 upstream unreachable, misconfigured or failing,
504 no first token in time. A reconnect carrying one of our event ids gets 204: generations are not
resumable yet, and re-running the prompt would append a second answer to the first.`

const events: FastifyPluginAsync<EventsRouteOptions> = async (app, opts) => {
  const firstTokenTimeoutMs = opts.firstTokenTimeoutMs ?? 60_000
  const idleTimeoutMs = opts.idleTimeoutMs ?? 30_000
  const maxPromptChars = opts.maxPromptChars ?? 8000
  const limit = opts.rateLimit ?? { max: 30, timeWindowMs: 60_000 }

  // Registered inside this encapsulated plugin with `global: false`: it limits only these routes.
  if (limit !== false) {
    await app.register(rateLimit, {
      global: false,
      errorResponseBuilder: (_request, context) => new SSE_ERR_RATE_LIMITED(context.after)
    })
  }
  const config = limit === false ? {} : { rateLimit: { max: limit.max, timeWindow: limit.timeWindowMs } }

  const relay = (reply: FastifyReply, chat: Chat): Promise<void> | FastifyReply => {
    // An EventSource reconnecting after a dropped stream: stop it (204) rather than start over.
    const last = reply.request.lastEventId
    if (last !== undefined && OUR_EVENT_ID.test(last)) return reply.code(204).send()
    const generation = randomBytes(16).toString('base64url')
    const json = chat.format === 'json'
    return reply.sse<unknown>(async function * ({ signal }) {
      try {
        const upstream = await opts.upstream(signal, chat.model)
        let seq = 0
        const tokens = streamChat(upstream.client, {
          model: upstream.model,
          messages: chat.messages,
          ...(chat.temperature !== undefined ? { temperature: chat.temperature } : {}),
          ...(chat.max_tokens !== undefined ? { max_tokens: chat.max_tokens } : {})
        }, { signal, firstTokenTimeoutMs, idleTimeoutMs, apiKey: upstream.apiKey })
        for await (const event of tokens) {
          const id = `${generation}:${++seq}`
          if (event.type === 'token') {
            yield { id, data: json ? JSON.stringify(event.text) : event.text }
          } else {
            const { finish_reason: finishReason, usage, model } = event
            yield { id, event: 'done', data: { finish_reason: finishReason, usage, model, demo: upstream.demo } }
          }
        }
      } catch (err) {
        // Before the first frame this becomes the HTTP error, and a 429 must say when to come back.
        const retryAfter = (err as UpstreamError).retryAfter
        if (retryAfter !== undefined && !reply.sent) reply.header('retry-after', retryAfter)
        throw err
      }
    })
  }

  app.get<{ Querystring: EventsQuery }>('/events', {
    config,
    schema: {
      tags: ['streams'],
      summary: 'LLM answer as Server-Sent Events (EventSource)',
      description: DESCRIPTION,
      querystring: querystring(maxPromptChars),
      response: eventsResponses
    }
  }, (request, reply) => {
    const q = request.query
    const messages: ChatMessage[] = []
    if (q.system !== undefined) messages.push({ role: 'system', content: q.system })
    messages.push({ role: 'user', content: q.prompt })
    return relay(reply, { messages, model: q.model, temperature: q.temperature, max_tokens: q.max_tokens, format: q.format })
  })

  app.post<{ Body: Chat }>('/events', {
    config,
    schema: {
      tags: ['streams'],
      summary: 'LLM answer to a conversation as Server-Sent Events (scripts)',
      description: DESCRIPTION,
      body: postBody(maxPromptChars),
      response: eventsResponses
    }
  }, (request, reply) => relay(reply, request.body))
}

export default events
