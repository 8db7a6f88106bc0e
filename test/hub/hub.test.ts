// What only the in-memory hub does. Everything both hubs promise (replay, reset, encode once,
// overflow policies, the replay race over real sockets) is one table in test/hub-contract.test.ts,
// run against this hub and the Redis one.
import t from 'tap'
import { createHub } from '../../lib/hub/hub.js'
import { read } from '../helpers/frames.js'

t.test('ids count from 1 per hub, and each hub (each process) has its own epoch', async (t) => {
  const hub = createHub()
  const other = createHub()
  t.teardown(() => Promise.all([hub.close(), other.close()]))
  const a = await hub.publish('a', { data: 1 })
  const b = await hub.publish('b', { data: 2 })
  const [epoch, one] = a.split(':')
  t.match(epoch, /^[0-9a-z]+$/)
  t.equal(one, '1')
  t.equal(b, `${epoch}:2`)
  t.not(other.stats().epoch, epoch)
  t.equal(hub.stats().lastId, b)
})

t.test('history is bounded in messages and in bytes', async (t) => {
  const hub = createHub({ historySize: 100, historyBytes: 2000 })
  t.teardown(() => hub.close())
  const ids: string[] = []
  for (let i = 0; i < 50; i++) ids.push(await hub.publish('t', { data: 'x'.repeat(100) }))
  const sub = hub.subscribe({ topics: 't', lastEventId: 'other:1' })
  const { events } = await read(sub, (e) => e.length >= 2 && e[e.length - 1].id === ids[49])
  const kept = events.length - 1
  t.ok(kept > 5 && kept < 20, `kept ${kept} frames of ~130 bytes within 2000`)
})
