// GET/POST /events: an LLM's answer as Server-Sent Events, token by token. GET is what a browser's
// EventSource can do (`?prompt=`), POST is what scripts do (`{ messages }`). Each token is a default
// `message` event carrying the raw text, so `onmessage = e => out += e.data` rebuilds the answer;
// a last `done` event carries the finish reason and usage. The client leaving aborts the upstream.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { randomBytes } from 'node:crypto'
import { streamChat, type ChatMessage } from './llm.js'
import type { UpstreamError } from './llm-errors.js'
import type { UpstreamResolver } from './upstream.js'
import { SSE_ERR_GENERATION_NOT_FOUND, SSE_ERR_RATE_LIMITED } from './errors.js'
import { parseEventId, type GenerationEvent, type Generations } from '../../lib/generations/store.js'
import type { SseInput } from '../../lib/sse/encoder.js'
import { eventsResponses, postBody, querystring, stopResponses } from './schema.js'

export interface EventsRouteOptions {
  /** Gives the SDK client and model for a request (routes/events/upstream.ts). */
  upstream: UpstreamResolver
  /** 504 (or an `error` event once streaming) when no first token arrives in time. @default 60000 */
  firstTokenTimeoutMs?: number
  /** An `error` event when the upstream goes silent between tokens this long. @default 30000 */
  idleTimeoutMs?: number
  /** The longest prompt, system prompt or message content, in characters. @default 8000 */
  maxPromptChars?: number
  /** Requests per window per client address; `false` turns it off. @default { max: 30, timeWindowMs: 60000 } */
  rateLimit?: { max: number, timeWindowMs: number } | false
  /**
   * Resumable generations: the answer runs decoupled from the connection, and a reconnect with
   * Last-Event-ID continues it. `false`: a disconnect aborts the upstream at once.
   * @default false
   */
  resume?: false | {
    generations: Generations
    /** Who may resume or stop a generation: the one who started it. @default request.ip */
    owner?: (request: FastifyRequest) => string
    /**
     * `retry:` sent to clients: how soon a dropped EventSource comes back (browsers wait ~3 s).
     * @default 1000
     */
    retryMs?: number
  }
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


const DESCRIPTION = `Streams an answer from the configured OpenAI-compatible LLM (or the built-in demo model) as
Server-Sent Events.

- Default \`message\` events: the raw text of one token (newlines and leading spaces included; with
  \`format=json\` a JSON string instead, exact even for \`\\r\`). Ids are \`<generation>:<seq>\`.
- \`done\`: \`{ finish_reason, usage, model, demo }\`, then the stream ends. Close your EventSource on it,
  or it reconnects. \`finish_reason\` is \`stopped\` after a stop.
- \`error\`: \`{ code, message, statusCode }\` when the upstream fails after the stream has started.

Failures before the stream starts are HTTP errors with a JSON body: 400 bad input, 429 rate limited
(here or upstream; \`retry-after\` is set), 502 upstream unreachable, misconfigured or failing,
504 no first token in time.

Resuming (on in the demo service): the generation runs on without the connection. A reconnect carrying
\`Last-Event-ID: <generation>:<n>\` (header, or \`?lastEventId=\` for a first request) replays the tokens
after \`n\` and follows live, without asking the upstream again. A reconnect to a finished generation,
or to one that is unknown, expired or started by another client, gets 204 (which stops an EventSource)
— or 404 \`SSE_ERR_GENERATION_NOT_FOUND\` for a POST that asked to resume explicitly. A generation with
no client attached is aborted upstream after \`RESUME_GRACE_MS\`; \`DELETE /events/{generation}\` stops it
at once. Without resuming, a reconnect carrying one of our ids gets 204 and a disconnect aborts the
upstream at once.`

const STOP_DESCRIPTION = `Stops a resumable generation at once, whoever is attached: its upstream request is
aborted and attached clients get \`done\` with \`finish_reason: "stopped"\`. Only the client that started it may
stop it; any other id is 404. Stop is not a disconnect: closing the stream alone keeps the generation
running for the grace period, so the client can come back.`

const events: FastifyPluginAsync<EventsRouteOptions> = async (app, opts) => {
  const firstTokenTimeoutMs = opts.firstTokenTimeoutMs ?? 60_000
  const idleTimeoutMs = opts.idleTimeoutMs ?? 30_000
  const maxPromptChars = opts.maxPromptChars ?? 8000
  const limit = opts.rateLimit ?? { max: 30, timeWindowMs: 60_000 }
  const resume = opts.resume === undefined || opts.resume === false ? undefined : opts.resume
  const ownerOf = resume?.owner ?? ((request: FastifyRequest) => request.ip)
  const retryMs = resume?.retryMs ?? 1000

  // Registered inside this encapsulated plugin with `global: false`: it limits only these routes.
  if (limit !== false) {
    await app.register(rateLimit, {
      global: false,
      errorResponseBuilder: (_request, context) => new SSE_ERR_RATE_LIMITED(context.after)
    })
  }
  const config = limit === false ? {} : { rateLimit: { max: limit.max, timeWindow: limit.timeWindowMs } }

  /** The answer's events, without ids: tokens, then `done` (also after a stop, saying so). */
  async function * answer (chat: Chat, signal: AbortSignal): AsyncGenerator<GenerationEvent> {
    const json = chat.format === 'json'
    const upstream = await opts.upstream(signal, chat.model)
    const tokens = streamChat(upstream.client, {
      model: upstream.model,
      messages: chat.messages,
      ...(chat.temperature !== undefined ? { temperature: chat.temperature } : {}),
      ...(chat.max_tokens !== undefined ? { max_tokens: chat.max_tokens } : {})
    }, { signal, firstTokenTimeoutMs, idleTimeoutMs, apiKey: upstream.apiKey })
    for await (const event of tokens) {
      if (event.type === 'token') {
        yield { data: json ? JSON.stringify(event.text) : event.text }
      } else {
        const { finish_reason: finishReason, usage, model } = event
        yield { event: 'done', data: { finish_reason: finishReason, usage, model, demo: upstream.demo } }
        return
      }
    }
    // The upstream was aborted: by an explicit stop (or an abandoned generation), since a plain
    // disconnect without resuming leaves nobody to read this.
    if (signal.aborted) yield { event: 'done', data: { finish_reason: 'stopped', usage: null, model: upstream.model, demo: upstream.demo } }
  }

  /** A 429 must say when to come back, also when it reaches the client through the stream's start. */
  async function * withRetryAfter (reply: FastifyReply, source: AsyncIterable<SseInput>): AsyncGenerator<SseInput> {
    try {
      yield * source
    } catch (err) {
      const retryAfter = (err as UpstreamError).retryAfter
      if (retryAfter !== undefined && !reply.sent) reply.header('retry-after', retryAfter)
      throw err
    }
  }

  /** Without resuming: the answer lives and dies with this connection. */
  const relay = (reply: FastifyReply, chat: Chat): Promise<void> | FastifyReply => {
    // An EventSource reconnecting after a dropped stream: stop it (204) rather than start over.
    if (parseEventId(reply.request.lastEventId) !== undefined) return reply.code(204).send()
    const generation = randomBytes(16).toString('base64url')
    return reply.sse(({ signal }) => withRetryAfter(reply, (async function * () {
      let seq = 0
      for await (const event of answer(chat, signal)) yield { ...event, id: `${generation}:${++seq}` }
    })()))
  }

  /** With resuming: the answer runs in the generation store; this connection follows it. */
  const resumable = async (reply: FastifyReply, chat: Chat, generations: Generations): Promise<void> => {
    const request = reply.request
    const owner = ownerOf(request)
    const last = request.lastEventId
    let id: string
    let after = 0
    let fresh = false
    if (parseEventId(last) !== undefined) {
      const found = await generations.lookup(last, owner)
      if (found.status === 'resumable') {
        id = found.id
        after = found.after
      } else if (found.status === 'unknown' && request.method === 'POST') {
        // A script asked to resume this generation explicitly: say it is gone, never re-run it.
        throw new SSE_ERR_GENERATION_NOT_FOUND()
      } else {
        // Finished (the client has it all), or unknown to a browser's EventSource: 204 stops its
        // reconnecting. Starting the prompt again would append a second answer to the first.
        await reply.code(204).send()
        return
      }
    } else {
      id = await generations.start(owner, (signal) => answer(chat, signal))
      fresh = true
    }
    return await reply.sse(({ signal }) => {
      const frames = generations.follow(id, after, signal)
      return withRetryAfter(reply, fresh ? stopIfUnseen(generations, id, owner, frames) : frames)
    }, { retryMs })
  }

  /**
   * A client that leaves before its first frame never learnt the generation's id, so nobody can
   * resume it: stop it at once instead of paying for the grace period.
   */
  async function * stopIfUnseen (generations: Generations, id: string, owner: string, frames: AsyncIterable<SseInput>): AsyncGenerator<SseInput> {
    let seen = false
    try {
      for await (const frame of frames) {
        seen = true
        yield frame
      }
    } finally {
      if (!seen) await generations.stop(id, owner)
    }
  }

  const handle = (reply: FastifyReply, chat: Chat): Promise<void> | FastifyReply =>
    resume === undefined ? relay(reply, chat) : resumable(reply, chat, resume.generations)

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
    return handle(reply, { messages, model: q.model, temperature: q.temperature, max_tokens: q.max_tokens, format: q.format })
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
  }, (request, reply) => handle(reply, request.body))

  if (resume === undefined) return
  const { generations } = resume
  const stopSchema = (summary: string, description: string) => ({
    tags: ['streams'],
    summary,
    description,
    params: {
      type: 'object',
      properties: { generation: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$', description: 'The part of an event id before the colon.' } },
      required: ['generation']
    },
    response: stopResponses
  })
  const stop = async (request: FastifyRequest<{ Params: { generation: string } }>, reply: FastifyReply): Promise<void> => {
    if (!await generations.stop(request.params.generation, ownerOf(request))) throw new SSE_ERR_GENERATION_NOT_FOUND()
    await reply.code(204).send()
  }
  app.delete<{ Params: { generation: string } }>('/events/:generation', {
    schema: stopSchema('Stop a generation', STOP_DESCRIPTION)
  }, stop)
  // navigator.sendBeacon() can only POST: the page calls this on Stop and on `pagehide`.
  app.post<{ Params: { generation: string } }>('/events/:generation/stop', {
    schema: stopSchema('Stop a generation (for navigator.sendBeacon)', STOP_DESCRIPTION)
  }, stop)
}

export default events
