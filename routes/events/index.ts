// The /events route plugin: an LLM's answer as Server-Sent Events, token by token, through an
// `openai` client (the user's own, or one built from `{ baseURL, apiKey }`). GET is what a browser's
// EventSource can do (`?prompt=`), POST is what scripts do (`{ messages }`). Each token is a default
// `message` event carrying the raw text, so `onmessage = e => out += e.data` rebuilds the answer;
// a last `done` event carries the finish reason and usage. With resuming (the default) the answer
// runs decoupled from the connection and a reconnect with Last-Event-ID continues it.
//
// Nothing is asked upstream for a request that does not get a stream: the budget is checked and
// the generation started inside the stream's source, which `reply.sse` calls only once it has
// accepted the stream (not for a 503 at MAX_STREAMS, a 429, a 400, a HEAD or a 204).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { randomBytes } from 'node:crypto'
import sse from '../../lib/index.js'
import { loadPeer } from '../../lib/peer.js'
import { relayChat, type ChatMessage } from './llm.js'
import { metered } from './metered.js'
import { gathered, type Push } from './gather.js'
import type { UpstreamError } from './llm-errors.js'
import { checkModel, createUpstreamResolver } from './upstream.js'
import { createBudget } from './budget.js'
import { resolveEventsOptions, type EventsOptions } from './options.js'
import { SSE_ERR_GENERATION_NOT_FOUND, SSE_ERR_INVALID_TEXT, SSE_ERR_RATE_LIMITED } from './errors.js'
import { encodeWithId, parseEventId, retryLater, type GenerationEvent, type Generations } from '../../lib/generations/store.js'
import { SseFrame, type SseInput } from '../../lib/sse/encoder.js'
import { eventsResponses, postBody, querystring, stopResponses } from './schema.js'
import { DESCRIPTION, STOP_DESCRIPTION } from './descriptions.js'

export type { EventsOptions, EventsResumeOptions } from './options.js'
export type { OpenAIConfig } from './upstream.js'
export type { GenerationLimits } from './budget.js'

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

const events: FastifyPluginAsync<EventsOptions> = async (app, opts) => {
  const o = resolveEventsOptions(opts)
  const { firstTokenTimeoutMs, idleTimeoutMs, maxPromptChars, resume } = o
  const clientOf = o.client
  const demo = opts.demo === true
  const choice = { openai: opts.openai, model: opts.model, models: opts.models ?? [] }
  const upstreamFor = createUpstreamResolver(choice)
  const budget = createBudget(o.limits)

  // `reply.sse` comes from the core plugin; mounted alone, the route brings it.
  if (!app.hasReplyDecorator('sse')) await app.register(sse)
  if (resume?.owned === true) app.addHook('onClose', () => resume.generations.close())

  // One budget per client across GET, HEAD and POST: a limiter of our own (not a per-route config,
  // which @fastify/rate-limit counts per route and method), registered in this plugin's context only.
  let limited: Array<ReturnType<typeof app.rateLimit>> = []
  if (o.rateLimit !== false) {
    // An optional peer: needed only with a rate limit (`rateLimit: false` mounts without it).
    const { default: rateLimit } = await loadPeer('fastify-sse-stream/events', '@fastify/rate-limit', async () => await import('@fastify/rate-limit'))
    await app.register(rateLimit, {
      global: false,
      keyGenerator: clientOf,
      errorResponseBuilder: (_request, context) => new SSE_ERR_RATE_LIMITED(context.after)
    })
    limited = [app.rateLimit({ max: o.rateLimit.max, timeWindow: o.rateLimit.timeWindowMs })]
  }

  /**
   * The answer's events, without ids, pushed as they come: tokens, then `done` (also after a stop,
   * saying so). Resolves when the answer is over.
   */
  async function answer (chat: Chat, signal: AbortSignal, push: Push<GenerationEvent>): Promise<void> {
    const json = chat.format === 'json'
    const upstream = await upstreamFor(signal, chat.model)
    let finished = false
    const meter = metered((event) => {
      if (event.type === 'token') return push({ data: json ? JSON.stringify(event.text) : event.text })
      finished = true
      const { finish_reason: finishReason, usage, model } = event
      return push({ event: 'done', data: { finish_reason: finishReason, usage, model, demo } })
    })
    try {
      await relayChat(upstream.client, {
        model: upstream.model,
        messages: chat.messages,
        ...(chat.temperature !== undefined ? { temperature: chat.temperature } : {}),
        ...(chat.max_tokens !== undefined ? { max_tokens: chat.max_tokens } : {})
      }, { signal, firstTokenTimeoutMs, idleTimeoutMs, apiKey: upstream.apiKey }, meter.sink)
    } catch (err) {
      meter.end(err)
      throw err
    }
    meter.end()
    // The upstream was aborted: by an explicit stop (or an abandoned generation), since a plain
    // disconnect without resuming leaves nobody to read this.
    if (!finished && signal.aborted) await push({ event: 'done', data: { finish_reason: 'stopped', usage: null, model: upstream.model, demo } })
  }

  /**
   * Takes a slot of the client's budget (or throws a 429) and gives the producer that frees it when
   * the answer ends; `release` frees it at once, for a producer that will never run. The producer
   * yields what the upstream sent within one turn of the event loop as one array (gather.ts).
   */
  function budgeted (request: FastifyRequest, chat: Chat): { produce: (signal: AbortSignal) => AsyncGenerator<GenerationEvent[]>, release: () => void } {
    const release = budget.take(clientOf(request))
    return {
      release,
      produce: (signal) => gathered<GenerationEvent>(signal, async (push, inner) => {
        try {
          await answer(chat, inner, push)
        } finally {
          release()
        }
      })
    }
  }

  /** A 429 must say when to come back, also when it reaches the client through the stream's start. */
  async function * withRetryAfter (reply: FastifyReply, source: () => AsyncIterable<SseInput>): AsyncGenerator<SseInput> {
    try {
      yield * source()
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
    return reply.sse(({ signal }) => withRetryAfter(reply, async function * () {
      let seq = 0
      for await (const batch of budgeted(reply.request, chat).produce(signal)) {
        // Tokens are encoded here, a batch as one frame: one pull of the stream per upstream read.
        // `done` goes as a message, through the stream's own `serialize`.
        let text = ''
        for (const event of batch) {
          const id = `${generation}:${++seq}`
          if (typeof event.data === 'string') {
            text += encodeWithId(event, id)
            continue
          }
          if (text !== '') yield new SseFrame(text)
          text = ''
          yield { ...event, id }
        }
        if (text !== '') yield new SseFrame(text)
      }
    }))
  }

  /**
   * The store's Redis is away: an EventSource (GET) gets 200, `retry:` and the error, and comes back
   * by itself; a 503 would make it give up for good. Scripts (POST) get the 503 with retry-after.
   */
  const comeBackLater = (request: FastifyRequest, err: unknown): boolean =>
    request.method === 'GET' && (err as { code?: unknown }).code === 'SSE_ERR_HUB_UNAVAILABLE'

  /** With resuming: the answer runs in the generation store; this connection follows it. */
  const resumable = async (reply: FastifyReply, chat: Chat, generations: Generations, retryMs: number): Promise<void> => {
    const request = reply.request
    const owner = clientOf(request)
    const last = request.lastEventId
    if (parseEventId(last) !== undefined) {
      let found
      try {
        found = await generations.lookup(last, owner)
      } catch (err) {
        if (!comeBackLater(request, err)) throw err
        return await reply.sse(retryLater(err as Error))
      }
      if (found.status === 'resumable') {
        return await reply.sse(({ signal }) => withRetryAfter(reply, () => generations.follow(found.id, found.after, signal)), { retryMs })
      }
      if (found.status === 'unknown' && request.method === 'POST') {
        // A script asked to resume this generation explicitly: say it is gone, never re-run it.
        throw new SSE_ERR_GENERATION_NOT_FOUND()
      }
      // Finished (the client has it all), or unknown to a browser's EventSource: 204 stops its
      // reconnecting. Starting the prompt again would append a second answer to the first.
      await reply.code(204).send()
      return
    }
    return await reply.sse(({ signal }) => withRetryAfter(reply, async function * () {
      // Started only now that the stream is accepted; see the top of this file.
      let id: string
      const { produce, release } = budgeted(request, chat)
      try {
        id = await generations.start(owner, produce)
      } catch (err) {
        release()
        if (!comeBackLater(request, err)) throw err
        return yield * retryLater(err as Error)
      }
      yield * stopIfUnseen(generations, id, owner, generations.follow(id, 0, signal))
    }), { retryMs })
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

  const handle = (reply: FastifyReply, chat: Chat): Promise<void> | FastifyReply => {
    // HEAD (Fastify answers it with the GET handler) says what GET would serve, and starts nothing.
    if (reply.request.method === 'HEAD') {
      return reply.type('text/event-stream; charset=utf-8').header('cache-control', 'no-cache').send()
    }
    // Before any stream: a bad choice is a 400, not an `error` event after an upstream round trip.
    checkModel(choice, chat.model)
    chat.messages.forEach((m, i) => {
      if (!m.content.isWellFormed()) throw new SSE_ERR_INVALID_TEXT(`messages[${i}].content`)
    })
    return resume === undefined ? relay(reply, chat) : resumable(reply, chat, resume.generations, resume.retryMs)
  }

  app.get<{ Querystring: EventsQuery }>('/events', {
    onRequest: limited,
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
    onRequest: limited,
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
    if (!await generations.stop(request.params.generation, clientOf(request))) throw new SSE_ERR_GENERATION_NOT_FOUND()
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
