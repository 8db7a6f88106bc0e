// The batching window under a steady stream of publishes, on Node's mock clock so the test says
// what happens at which moment without depending on how busy the machine is.
import t from 'tap'
import { mock } from 'node:test'
import { createHub } from '../../lib/hub/hub.js'
import { read } from '../helpers/frames.js'

t.test('publishes that keep arriving extend the batching window up to five lingers, and a quiet window flushes on time', async (t) => {
  const hub = createHub({ lingerMs: 2 })
  const sub = hub.subscribe({ topics: 't' })
  mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  t.teardown(async () => { mock.timers.reset(); await hub.close() })

  // One publish per millisecond, as an upstream's events arrive one per turn.
  for (let i = 1; i <= 9; i++) {
    await hub.publish('t', { data: i })
    mock.timers.tick(1)
  }
  t.equal(hub.stats().flushes, 0, 'nine publishes over 9 ms, each window saw more: still one batch waiting')
  await hub.publish('t', { data: 10 })
  mock.timers.tick(1)
  t.equal(hub.stats().flushes, 1, 'the batch went out at 10 ms (5 × lingerMs) although publishes were still arriving')

  await hub.publish('t', { data: 11 })
  mock.timers.tick(1)
  t.equal(hub.stats().flushes, 1, 'a new batch waits its first linger')
  mock.timers.tick(1)
  t.equal(hub.stats().flushes, 2, 'a window in which nothing more arrived flushes after one linger')

  mock.timers.reset()
  const { events } = await read(sub, (e) => e.length >= 11)
  t.same(events.map((e) => e.data), Array.from({ length: 11 }, (_, i) => String(i + 1)), 'all eleven, in order, once')
})
