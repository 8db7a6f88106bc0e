// The subpaths' declarations: the hub, the generations, the client's typed events, the Redis
// backplane and the route plugins, as a user imports them.
import Fastify from 'fastify'
import OpenAI from 'openai'
import sse from 'fastify-sse-stream'
import { createHub, hubRoute, hubSource, type Hub, type HubStats } from 'fastify-sse-stream/hub'
import { createGenerations, type Generations } from 'fastify-sse-stream/generations'
import { generate, streamEvents, SseHttpError, type Done, type SseEvent } from 'fastify-sse-stream/client'
import { connectRedis, createRedisHub, createRedisGenerations } from 'fastify-sse-stream/redis'
import events from 'fastify-sse-stream/events'
import logs, { createLogStream } from 'fastify-sse-stream/logs'
import { expectExact } from './assert.js'

const hub = createHub({ historySize: 100 })
expectExact<Hub>()(hub)
expectExact<Promise<string>>()(hub.publish('quotes', { event: 'quote', data: { price: 1 } }))
// @ts-expect-error the hub assigns ids itself
void hub.publish('quotes', { id: 'mine', data: 1 })
expectExact<HubStats>()(hub.stats())

const app = Fastify()
await app.register(sse)
app.get('/quotes', (request, reply) => reply.sse(hubSource(hub, { topics: ['quotes'] })))
app.get('/news', hubRoute(hub, { topics: 'news', overflow: 'drop' }))
app.get('/topic', hubRoute(hub, (request) => ({ topics: String((request.query as { t?: string }).t) })))
// @ts-expect-error lastEventId comes from the request, not the options
app.get('/wrong', hubRoute(hub, { topics: 'news', lastEventId: '1' }))

const generations = createGenerations({ graceMs: 1000 })
const asInterface: Generations = generations
void asInterface

// The client: events typed by a map of event name to data.
interface Tick { n: number }
for await (const ev of streamEvents<{ tick: Tick, note: string }>('http://127.0.0.1/clock', { json: true })) {
  if (ev.event === 'tick') expectExact<Tick>()(ev.data)
  else expectExact<SseEvent<'note', string>>()(ev)
  // @ts-expect-error no such event in the map
  if (ev.event === 'tock') break
}
const answer = generate('http://127.0.0.1:8080', { prompt: 'hi' })
for await (const token of answer) expectExact<string>()(token)
expectExact<Promise<Done>>()(answer.done)
expectExact<number>()(new SseHttpError('http://127.0.0.1/x', 400, 'Bad Request', undefined, new Headers()).status)

// Redis: the client comes from the user (or connectRedis), and both stores take it.
const redis = await connectRedis('redis://127.0.0.1:6379')
const redisHub: Hub = createRedisHub({ redis, prefix: 'sse:' })
const redisGenerations: Generations = createRedisGenerations({ redis })
void redisHub
void redisGenerations
// @ts-expect-error createRedisHub needs a client
createRedisHub({ prefix: 'sse:' })

// The route plugins mount under a prefix like any Fastify plugin.
await app.register(events, { prefix: '/own', openai: new OpenAI({ apiKey: 'sk-x', baseURL: 'http://localhost:1234/v1' }) })
await app.register(events, { prefix: '/llm', openai: { baseURL: 'http://localhost:1234/v1' } })
// @ts-expect-error /events needs an OpenAI client or where to reach one
await app.register(events, { prefix: '/llm' })
const logHub = createHub()
const destination = createLogStream({ hub: logHub })
expectExact<(line: string) => void>()(destination.write)
await app.register(logs, { prefix: '/ops', hub: logHub, token: 'secret' })
// @ts-expect-error /logs needs the hub its log stream publishes into
await app.register(logs, { prefix: '/ops' })
