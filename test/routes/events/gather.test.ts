import t from 'tap'
import { gathered, type Push } from '../../../routes/events/gather.js'

const turn = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

t.test('what the task pushes within one turn comes out as one batch, in order, then the task\'s error', async (t) => {
  const batches: number[][] = []
  const err = await (async () => {
    try {
      for await (const batch of gathered<number>(new AbortController().signal, async (push) => {
        await turn()
        for (let i = 0; i < 5; i++) await push(i)
        await turn()
        for (let i = 5; i < 8; i++) await Promise.resolve().then(() => push(i))
        await turn()
        throw new Error('upstream broke')
      })) batches.push(batch)
    } catch (err) {
      return err as Error
    }
  })()
  t.same(batches, [[0, 1, 2, 3, 4], [5, 6, 7]])
  t.equal(err?.message, 'upstream broke', 'after everything pushed before it')
})

t.test('past max items not taken, push holds the task until the consumer takes them', async (t) => {
  let pushed = 0
  const it = gathered<number>(new AbortController().signal, async (push) => {
    for (let i = 0; i < 5; i++) {
      pushed++
      await push(i)
    }
  }, 2)[Symbol.asyncIterator]()
  const taken = [...(await it.next()).value as number[]]
  for (let i = 0; i < 5; i++) await turn()
  t.equal(pushed - taken.length, 2, 'held with two items not taken')
  for (let step = await it.next(); step.done !== true; step = await it.next()) {
    t.ok(step.value.length <= 2, 'never more than max in a batch')
    taken.push(...step.value)
  }
  t.same(taken, [0, 1, 2, 3, 4])
})

t.test('a consumer that stops early aborts the task\'s signal, and a push after that never holds the task', async (t) => {
  let signal: AbortSignal | undefined
  let settled = false
  let push: Push<number> | undefined
  const it = gathered<number>(new AbortController().signal, async (p, s) => {
    signal = s
    push = p
    await p(1)
    await new Promise<void>((resolve) => s.addEventListener('abort', () => resolve(), { once: true }))
    // Parsed before the abort was seen: pushed after the consumer left.
    for (let i = 0; i < 5; i++) await p(i)
    settled = true
  }, 1)[Symbol.asyncIterator]()
  t.same((await it.next()).value, [1])
  await it.return(undefined)
  t.equal(signal?.aborted, true)
  for (let i = 0; i < 10 && !settled; i++) await turn()
  t.equal(settled, true, 'the task ran to its end')
  t.equal(push?.(9), undefined)
})

t.test('an outer signal that aborts reaches the task', async (t) => {
  const outer = new AbortController()
  let reason: unknown
  const run = (async () => {
    for await (const batch of gathered<number>(outer.signal, async (_push, s) => {
      await new Promise<void>((resolve) => s.addEventListener('abort', () => { reason = s.reason; resolve() }, { once: true }))
    })) t.fail(`nothing was pushed, got ${String(batch)}`)
  })()
  outer.abort(new Error('client gone'))
  await run
  t.equal((reason as Error).message, 'client gone')
})
