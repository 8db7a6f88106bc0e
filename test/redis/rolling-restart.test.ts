// A generation whose answer ends in an error is never cut short silently: a client that reconnects
// gets the `error` event (with its code) and then the end, not a 204, whether the upstream failed
// or the instance running the generation shut down in a rolling restart.
import t from 'tap'
import { startFakeUpstream } from '../fixtures/fake-upstream.js'
import { startService, readEvents } from '../fixtures/service.js'
import { openStream } from '../helpers/http.js'
import { redisMissing, startRedis } from '../helpers/redis.js'

const TOKENS = Array.from({ length: 60 }, (_, i) => ` w${i}`)

async function resume (url: string, lastEventId: string): Promise<{ status: number, events: Awaited<ReturnType<typeof readEvents>> }> {
  const res = await fetch(`${url}/events?prompt=story`, { headers: { 'last-event-id': lastEventId } })
  return { status: res.status, events: res.status === 200 ? await readEvents(res) : [] }
}

for (const backplane of ['memory', 'redis'] as const) {
  const skip = backplane === 'redis' ? redisMissing() : false
  t.test(`${backplane}: after an upstream failure, a reconnect gets the error event, and one after the error gets 204`, { skip }, async (t) => {
    const fake = await startFakeUpstream({ kind: 'mid-error', tokens: ['a', 'b', 'c'], message: 'overloaded' })
    t.teardown(() => fake.close())
    const redis = backplane === 'redis' ? await startRedis(t) : undefined
    const { url } = await startService(t, { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm', ...(redis === undefined ? {} : { REDIS_URL: redis.url }) })
    const all = await readEvents(await fetch(`${url}/events?prompt=story`))
    t.same(all.map((e) => e.data).slice(0, 3), ['a', 'b', 'c'])
    const error = all[3]
    t.match(error, { event: 'error', id: all[2].id!.replace(/:3$/, ':4') }, 'the error is an event with the id after the last token')
    const { code } = JSON.parse(error.data)
    t.match(code, /^SSE_ERR_UPSTREAM/)

    // Cut right after the last token, before the error arrived: the reconnect must say what happened.
    const cut = await resume(url, all[2].id!)
    t.equal(cut.status, 200, 'not 204: the answer did not end well')
    t.same(cut.events, [error], 'the same error event, then the end')
    t.equal((await resume(url, error.id!)).status, 204, 'after the error there is nothing more')
    t.equal(fake.requests.length, 1, 'the upstream was not asked again')
  })
}

t.test('an instance shut down mid-generation (rolling restart): a reconnect to the other gets the tokens written, then SSE_ERR_GENERATION_INTERRUPTED', { skip: redisMissing() }, async (t) => {
  const fake = await startFakeUpstream({ kind: 'normal', tokens: TOKENS, delayMs: 30 })
  t.teardown(() => fake.close())
  const redis = await startRedis(t)
  const env = { LLM_BASE_URL: fake.baseURL, LLM_MODEL: 'm', REDIS_URL: redis.url }
  const a = await startService(t, env)
  const b = await startService(t, env)
  const first = await openStream(`${a.url}/events?prompt=story`)
  const head = await first.waitForEvents(3)
  first.destroy() // the client is away (say, on a train) while A is restarted
  await a.app.close()
  const upstream = await fake.requests[0].closed
  t.ok(upstream.aborted, 'A aborted its upstream request when it shut down')

  const back = await resume(b.url, head[2].id!)
  t.equal(back.status, 200)
  const tokens = back.events.filter((e) => e.event === undefined)
  const last = back.events.at(-1)!
  t.equal(last.event, 'error', 'the answer ends with an error, not silently')
  t.match(JSON.parse(last.data), { code: 'SSE_ERR_GENERATION_INTERRUPTED', message: /shut down/ })
  t.same([...head, ...tokens].map((e) => e.data), TOKENS.slice(0, 3 + tokens.length), 'what A wrote before it stopped, in order')
  t.ok(3 + tokens.length < TOKENS.length, 'and it was indeed cut short')
  t.notOk(back.events.some((e) => e.event === 'done'), 'no done event pretending it finished')
  t.equal((await resume(b.url, last.id!)).status, 204, 'after the error: 204, the EventSource stops')
})
