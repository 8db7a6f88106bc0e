// POST /v1/chat/completions: the built-in demo model. With no LLM configured, `/events` reaches it
// through the `openai` SDK over real HTTP, exactly as it would reach LM Studio or OpenAI, so the
// demo exercises the whole relay. It speaks the OpenAI wire format (chunks, the usage chunk,
// `data: [DONE]`) and streams with our own `reply.sse()`: a second wire format, dogfooded.
import type { FastifyError, FastifyPluginAsync } from 'fastify'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadCorpus, MarkovText } from './text.js'
import { packageRoot } from '../../service/package-root.js'

/** The name the built-in demo model reports in its chunks (and /events in its `done` event). */
export const DEMO_MODEL = 'demo-markov'

export interface DemoModelOptions {
  /** Pause before each token, so the answer visibly grows. @default 30 */
  tokenDelayMs?: number
  /** The text the chain learns from. @default README.md and docs/*.md of this package */
  corpus?: string
  /** Answer length when the request sets no `max_tokens`. @default 120 */
  defaultMaxTokens?: number
}

interface ContentPart { type: string, text?: string }
interface DemoRequest {
  model: string
  messages: Array<{ role: string, content: string | ContentPart[] | null }>
  stream?: boolean
  stream_options?: { include_usage?: boolean } | null
  max_tokens?: number | null
  max_completion_tokens?: number | null
}

/** The largest request body, in bytes: a long conversation fits, a flood does not. */
const BODY_LIMIT = 256 * 1024
const MAX_CONTENT = 32_000

const usageSchema = {
  type: 'object',
  properties: { prompt_tokens: { type: 'integer' }, completion_tokens: { type: 'integer' }, total_tokens: { type: 'integer' } }
}

const completionSchema = {
  type: 'object',
  description: 'A `chat.completion` object (non-streaming).',
  properties: {
    id: { type: 'string' },
    object: { type: 'string', enum: ['chat.completion'] },
    created: { type: 'integer' },
    model: { type: 'string' },
    system_fingerprint: { type: 'string' },
    choices: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          index: { type: 'integer' },
          message: {
            type: 'object',
            properties: { role: { type: 'string' }, content: { type: 'string' }, refusal: { type: 'null' } }
          },
          logprobs: { type: 'null' },
          finish_reason: { type: 'string', enum: ['stop', 'length'] }
        }
      }
    },
    usage: usageSchema
  }
}

const chunkEvent = {
  title: 'chat.completion.chunk',
  type: 'object',
  required: ['data'],
  description: 'One `chat.completion.chunk` as JSON; with `stream_options.include_usage` the last one has `choices: []` and `usage`.',
  properties: {
    data: { type: 'string', contentMediaType: 'application/json', contentSchema: { type: 'object', required: ['id', 'object', 'choices'] } }
  }
}

const doneEvent = {
  title: '[DONE]',
  type: 'object',
  required: ['data'],
  description: 'The end of the stream.',
  properties: { data: { const: '[DONE]' } }
}

const openAiError = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { message: { type: 'string' }, type: { type: 'string' }, param: { type: ['string', 'null'] }, code: { type: ['string', 'null'] } }
    }
  }
}

const schema = {
  tags: ['demo model'],
  summary: 'Built-in OpenAI-compatible demo model',
  description: 'A deterministic word-level Markov chain over this project\'s own docs: the same messages give the same answer. ' +
    'Streams (`"stream": true`) in the exact OpenAI chunk format ending with `data: [DONE]`, at a configurable pace ' +
    '(`DEMO_TOKEN_DELAY_MS`). Any `model` is accepted and reported as `' + DEMO_MODEL + '`; `temperature` is ignored.',
  body: {
    type: 'object',
    required: ['model', 'messages'],
    properties: {
      model: { type: 'string', maxLength: 200 },
      messages: {
        type: 'array',
        minItems: 1,
        maxItems: 100,
        items: {
          type: 'object',
          required: ['role'],
          properties: {
            role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant', 'tool'] },
            content: {
              anyOf: [
                { type: 'string', maxLength: MAX_CONTENT },
                { type: 'array', maxItems: 100, items: { type: 'object', properties: { type: { type: 'string' }, text: { type: 'string', maxLength: MAX_CONTENT } } } },
                { type: 'null' }
              ]
            }
          }
        }
      },
      stream: { type: 'boolean' },
      stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } } },
      max_tokens: { type: ['integer', 'null'], minimum: 1, maximum: 4096 },
      max_completion_tokens: { type: ['integer', 'null'], minimum: 1, maximum: 4096 },
      temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 }
    }
  },
  response: {
    200: {
      description: 'The answer: JSON, or with `"stream": true` a stream of chunks.',
      content: {
        'application/json': { schema: completionSchema },
        'text/event-stream': { schema: { type: 'string' }, itemSchema: { oneOf: [chunkEvent, doneEvent] } }
      }
    },
    400: { description: 'Invalid request, in the OpenAI error format.', content: { 'application/json': { schema: openAiError } } }
  }
}

/** The prompt the chain is seeded with: every message's text, so a different conversation gives a different answer. */
function promptOf (messages: DemoRequest['messages']): string {
  return messages.map((m) => {
    const text = typeof m.content === 'string'
      ? m.content
      : (m.content ?? []).map((p) => p.text ?? '').join('')
    return m.role + ': ' + text
  }).join('\n')
}

function countWords (text: string): number {
  const trimmed = text.trim()
  return trimmed === '' ? 0 : trimmed.split(/\s+/).length
}

const demoModel: FastifyPluginAsync<DemoModelOptions> = async (app, opts) => {
  const delay = opts.tokenDelayMs ?? 30
  const defaultMaxTokens = opts.defaultMaxTokens ?? 120
  const chain = new MarkovText(opts.corpus ?? loadCorpus(packageRoot))

  // The SDK reads errors as `{ error: { message, type, param, code } }`; answer in kind.
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode < 500 ? err.statusCode : 500
    if (status >= 500) request.log.error({ err }, 'demo model failed')
    return reply.code(status).send({
      error: {
        message: status < 500 ? err.message : 'The demo model failed',
        type: status < 500 ? 'invalid_request_error' : 'server_error',
        param: null,
        code: status < 500 ? (err.code ?? null) : null
      }
    })
  })

  // Bounded input: the chain's work grows with the prompt, and this endpoint is not rate limited.
  app.post<{ Body: DemoRequest }>('/v1/chat/completions', { schema, bodyLimit: BODY_LIMIT }, async (request, reply) => {
    const body = request.body
    const prompt = promptOf(body.messages)
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? defaultMaxTokens
    const generation = chain.generate(prompt, { maxTokens })
    const id = 'chatcmpl-' + randomBytes(12).toString('base64url')
    const created = Math.floor(Date.now() / 1000)
    const promptTokens = countWords(prompt)
    const base = { id, created, model: DEMO_MODEL, system_fingerprint: 'fp_demo_markov' }

    if (body.stream !== true) {
      const tokens = [...generation.tokens]
      const text = tokens.join('')
      const completionTokens = tokens.length
      return reply.type('application/json').send({
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: generation.finishReason }],
        usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens }
      })
    }

    const withUsage = body.stream_options?.include_usage === true
    // With include_usage OpenAI puts `"usage": null` on every chunk and totals on a last one.
    const chunk = (delta: object, finishReason: string | null): object => ({
      ...base,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(withUsage ? { usage: null } : {})
    })
    return reply.sse<unknown>(async function * ({ signal }) {
      yield { data: chunk({ role: 'assistant', content: '', refusal: null }, null) }
      let completionTokens = 0
      for (const token of generation.tokens) {
        if (delay > 0) await sleep(delay, undefined, { signal })
        completionTokens++
        yield { data: chunk({ content: token }, null) }
      }
      yield { data: chunk({}, generation.finishReason) }
      if (withUsage) {
        yield {
          data: {
            ...base,
            object: 'chat.completion.chunk',
            choices: [],
            usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens }
          }
        }
      }
      yield { data: '[DONE]' }
    })
  })
}

export default demoModel
