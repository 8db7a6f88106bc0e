import t, { type Test } from 'tap'
import { encodeWithId, GenerationStore, parseEventId } from '../../lib/generations/store.js'
import { controlled } from '../helpers/producer.js'
import { eventually } from '../helpers/eventually.js'

/** The store's timers are unref'd (they must not hold a server open); keep this test process alive meanwhile. */
function keepAlive (t: Test): void {
  const timer = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(timer))
}

async function until (ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((resolve) => setImmediate(resolve))
}

async function take (it: AsyncIterator<{ text: string }>, frames: number): Promise<string> {
  let text = ''
  for (let i = 0; i < frames; i++) {
    const step = await it.next()
    if (step.done === true) break
    text += step.value.text
  }
  return text
}

t.test('parses only our own event ids', async (t) => {
  t.same(parseEventId('AAAAAAAAAAAAAAAAAAAAAA:7'), { generation: 'AAAAAAAAAAAAAAAAAAAAAA', seq: 7 })
  for (const id of [undefined, '', '7', 'short:1', 'AAAAAAAAAAAAAAAAAAAAAA:', 'AAAAAAAAAAAAAAAAAAAAAA:x', 'AAAAAAAAAAAAAAAAAAAAAA:1234567890']) {
    t.equal(parseEventId(id), undefined, String(id))
  }
})

t.test('replays after a seq and follows live, with ids <generation>:<seq>, then ends', async (t) => {
  const store = new GenerationStore()
  t.teardown(() => store.close())
  const p = controlled()
  const g = store.start('me', p.produce)
  t.match(g.id, /^[A-Za-z0-9_-]{22}$/)
  p.push({ data: 'a' }, { data: 'b' }, { data: 'c' })
  await until(() => g.length === 3)
  const first = g.follow(0, new AbortController().signal)
  t.equal(await take(first, 1), `id: ${g.id}:1\ndata: a\n\nid: ${g.id}:2\ndata: b\n\nid: ${g.id}:3\ndata: c\n\n`,
    'what is ready comes as one frame')
  const resumed = g.follow(2, new AbortController().signal)
  t.equal(await take(resumed, 1), `id: ${g.id}:3\ndata: c\n\n`, 'a reconnect gets only what it missed')
  const live = take(resumed, 1)
  p.push({ event: 'done', data: { finish_reason: 'stop' } })
  t.equal(await live, `event: done\nid: ${g.id}:4\ndata: {"finish_reason":"stop"}\n\n`)
  p.end()
  t.same(await resumed.next(), { value: undefined, done: true })
  t.same(store.lookup(`${g.id}:4`, 'me'), { status: 'finished' })
  t.equal(store.lookup(`${g.id}:2`, 'me').status, 'resumable')
})

t.test('another owner, a guessed id or a seq beyond the end is unknown', async (t) => {
  const store = new GenerationStore()
  t.teardown(() => store.close())
  const p = controlled()
  const g = store.start('alice', p.produce)
  p.push({ data: 'secret' })
  p.end()
  t.same(store.lookup(`${g.id}:0`, 'mallory'), { status: 'unknown' })
  t.equal(store.get(g.id, 'mallory'), undefined)
  t.same(store.lookup(`${'A'.repeat(22)}:0`, 'alice'), { status: 'unknown' })
  t.same(store.lookup(`${g.id}:99`, 'alice'), { status: 'unknown' })
  t.same(store.lookup('not-ours', 'alice'), { status: 'unknown' })
})

t.test('with no client attached, a running generation is aborted after the grace period', async (t) => {
  keepAlive(t)
  const store = new GenerationStore({ graceMs: 20 })
  t.teardown(() => store.close())
  const p = controlled()
  const g = store.start('me', p.produce)
  const ac = new AbortController()
  const it = g.follow(0, ac.signal)
  p.push({ data: 'a' })
  await take(it, 1)
  const pending = it.next()
  ac.abort()
  await pending
  t.equal(g.attached, 0)
  t.match(await p.aborted, /grace period/)
  t.ok(g.signal.aborted)
})

t.test('a client attaching within the grace period keeps the generation running', async (t) => {
  keepAlive(t)
  const store = new GenerationStore({ graceMs: 30 })
  t.teardown(() => store.close())
  const p = controlled()
  const g = store.start('me', p.produce)
  const ac = new AbortController()
  const it = g.follow(0, ac.signal)
  const pending = it.next()
  ac.abort()
  await pending
  const back = g.follow(0, new AbortController().signal)
  const next = back.next()
  // Longer than the grace period, measured by the store's own timer on a second generation.
  const probe = controlled()
  const other = store.start('me', probe.produce)
  const o = new AbortController()
  const oit = other.follow(0, o.signal)
  const op = oit.next()
  o.abort()
  await op
  await probe.aborted
  t.notOk(g.signal.aborted, 'still running while a client is attached')
  p.push({ data: 'late' })
  t.match((await next).value?.text, /data: late/)
})

t.test('stop aborts at once even while a client is attached; the producer may say so last', async (t) => {
  const store = new GenerationStore()
  t.teardown(() => store.close())
  const p = controlled()
  const g = store.start('me', p.produce)
  const it = g.follow(0, new AbortController().signal)
  const next = it.next()
  g.stop()
  t.match(await p.aborted, /stopped/)
  t.match((await next).value?.text, /event: done\n.*\ndata: {"finish_reason":"stopped"}/)
  t.same(await it.next(), { value: undefined, done: true })
  t.ok(g.ended)
})

t.test('a producer error after events is an error event with the next id, delivered again on resume, then finished', async (t) => {
  const store = new GenerationStore()
  t.teardown(() => store.close())
  const g = store.start('me', async function * () {
    yield { data: 'partial' }
    throw Object.assign(new Error('upstream died'), { code: 'SSE_ERR_UPSTREAM_FAILED', statusCode: 502 })
  })
  const it = g.follow(0, new AbortController().signal)
  t.match((await it.next()).value?.text, /data: partial/)
  const error = `event: error\nid: ${g.id}:2\ndata: {"code":"SSE_ERR_UPSTREAM_FAILED","message":"upstream died","statusCode":502}\n\n`
  t.equal((await it.next()).value?.text, error, 'the error, with the id after the last frame')
  t.same(await it.next(), { value: undefined, done: true })
  // A client cut before the error comes back with the last frame's id: it gets the error, not a 204.
  t.same(store.lookup(`${g.id}:1`, 'me'), { status: 'resumable', id: g.id, after: 1 })
  const resumed = g.follow(1, new AbortController().signal)
  t.equal((await resumed.next()).value?.text, error)
  t.same(await resumed.next(), { value: undefined, done: true })
  t.same(store.lookup(`${g.id}:2`, 'me'), { status: 'finished' }, 'after the error: nothing more (204)')
})

t.test('a producer error before any event is thrown to a fresh follower: an HTTP error status', async (t) => {
  const store = new GenerationStore()
  t.teardown(() => store.close())
  const g = store.start('me', async function * () {
    throw Object.assign(new Error('rate limited'), { code: 'SSE_ERR_UPSTREAM_RATE_LIMITED', statusCode: 429 })
  })
  await t.rejects(g.follow(0, new AbortController().signal).next(), { code: 'SSE_ERR_UPSTREAM_RATE_LIMITED' })
})

t.test('finished generations expire after ttlMs; close stops running ones', async (t) => {
  keepAlive(t)
  const store = new GenerationStore({ ttlMs: 500 }) // long enough to still be there at the first check on a busy machine
  const p = controlled()
  const g = store.start('me', p.produce)
  p.end()
  const it = g.follow(0, new AbortController().signal)
  await it.next()
  t.equal(store.size, 1)
  await eventually(() => store.size === 0, 'the finished generation expired')
  t.equal(store.size, 0, 'expired')
  const running = controlled()
  store.start('me', running.produce)
  store.close()
  t.match(await running.aborted, /closing/)
  t.equal(store.size, 0)
})

t.test('a runaway producer fails at maxEvents', async (t) => {
  const store = new GenerationStore({ maxEvents: 3 })
  t.teardown(() => store.close())
  const g = store.start('me', async function * () { while (true) yield { data: 'x' } })
  const it = g.follow(0, new AbortController().signal)
  let text = ''
  for (let s = await it.next(); s.done !== true; s = await it.next()) text += s.value.text
  t.equal(text.split('data: x').length - 1, 3)
  t.match(text, /event: error\nid: [^\n]+:4\ndata: {"code":"SSE_ERR_INTERNAL"/, 'ends with an error, without internal detail')
})

t.test('events a producer yields together as an array each get their own id, and followers get them at once', async (t) => {
  const store = new GenerationStore({ maxEvents: 5 })
  t.teardown(() => store.close())
  const g = store.start('me', async function * () {
    yield [{ data: 'a' }, { data: 'b' }]
    yield { data: 'c' }
    yield [{ data: 'd' }, { data: 'e' }, { data: 'f' }]
  })
  const it = g.follow(0, new AbortController().signal)[Symbol.asyncIterator]()
  let text = ''
  for (let step = await it.next(); step.done !== true; step = await it.next()) text += step.value.text
  const frames = ['a', 'b', 'c', 'd', 'e'].map((data, i) => `id: ${g.id}:${i + 1}\ndata: ${data}\n\n`).join('')
  t.equal(text.slice(0, frames.length), frames, 'ids per event')
  t.match(text.slice(frames.length), `event: error\nid: ${g.id}:6\n`, 'maxEvents counts events, not arrays')
})

t.test('a frame carries the generation\'s id whatever the event has: fields, none, or an id of its own', async (t) => {
  t.equal(encodeWithId({ event: 'done', data: { ok: true } }, 'g:2'), 'event: done\nid: g:2\ndata: {"ok":true}\n\n')
  t.equal(encodeWithId({ data: 'x', retry: 5 }, 'g:2'), 'id: g:2\nretry: 5\ndata: x\n\n')
  t.equal(encodeWithId({ data: 'two\nlines' }, 'g:3'), 'id: g:3\ndata: two\ndata: lines\n\n')
  t.equal(encodeWithId({}, 'g:4'), 'id: g:4\n\n')
  t.equal(encodeWithId({ data: 'x', id: 'theirs' } as any, 'g:5'), 'id: g:5\ndata: x\n\n')
  t.throws(() => encodeWithId({ event: 'a\nb' }, 'g:6'), { code: 'SSE_ERR_INVALID_FIELD' }, 'still checked by the encoder')
})
