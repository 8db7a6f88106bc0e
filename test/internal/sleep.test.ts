// The library's one abortable wait (the Redis lock, the ticker feed, the client's reconnect delay).
import t from 'tap'
import { sleep } from '../../lib/internal/sleep.js'

t.test('resolves true once the time has passed, never earlier than asked', async (t) => {
  const start = performance.now()
  t.equal(await sleep(20), true)
  t.ok(performance.now() - start >= 20)
})

t.test('resolves false at once when the signal aborts, and leaves no listener behind', async (t) => {
  const ac = new AbortController()
  let listeners = 0
  const add = ac.signal.addEventListener.bind(ac.signal)
  const remove = ac.signal.removeEventListener.bind(ac.signal)
  ac.signal.addEventListener = (...args: Parameters<typeof add>) => { listeners++; add(...args) }
  ac.signal.removeEventListener = (...args: Parameters<typeof remove>) => { listeners--; remove(...args) }
  t.equal(await sleep(5, ac.signal), true)
  t.equal(listeners, 0, 'the listener of a completed sleep is removed')
  const waiting = sleep(60_000, ac.signal)
  ac.abort()
  t.equal(await waiting, false)
})

t.test('an already aborted signal returns false without waiting', async (t) => {
  t.equal(await sleep(60_000, AbortSignal.abort()), false)
})
