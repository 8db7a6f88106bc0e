// From a task that pushes items one by one to a consumer that takes them in batches: what the task
// pushed while the consumer was busy, or within one turn of the event loop, comes out as one array.
// An upstream read carries many tokens (the SDK hands them over one chunk at a time, a few
// microtasks apart); relaying each through its own async-generator step, store write and stream
// pull cost more than parsing it (bench: relay). Gathered, each of those runs once per read.
//
// Backpressure: past `max` items not yet taken, `push` returns a promise the task awaits, so a slow
// consumer stops the task from pulling more from upstream.

/** What the task calls for each item; a promise it returns must be awaited before pushing more. */
export type Push<T> = (item: T) => void | Promise<void>

/**
 * Runs `task(push, signal)` and yields what it pushes, in batches, until it settles; its error is
 * thrown after what it pushed before. `signal` aborts when `outer` does, or when the consumer stops
 * early (`return()`, a throw), so the task's upstream request ends with it.
 */
export async function * gathered<T> (outer: AbortSignal, task: (push: Push<T>, signal: AbortSignal) => Promise<void>, max = 1024): AsyncGenerator<T[]> {
  const controller = new AbortController()
  const onAbort = (): void => controller.abort(outer.reason)
  if (outer.aborted) onAbort()
  else outer.addEventListener('abort', onAbort, { once: true })
  let items: T[] = []
  let ended = false
  let error: { err: unknown } | undefined
  let wake: (() => void) | undefined
  let scheduled = false
  let room: (() => void) | undefined
  let roomFree: Promise<void> | undefined
  // The consumer is gone: pushes are dropped and never hold the task (it is being aborted).
  let gone = false
  const poke = (): void => {
    scheduled = false
    const resolve = wake
    wake = undefined
    resolve?.()
  }
  const push: Push<T> = (item) => {
    if (gone) return
    items.push(item)
    // Woken on the next turn, not now: the rest of this upstream read joins the batch.
    if (wake !== undefined && !scheduled) {
      scheduled = true
      setImmediate(poke)
    }
    // One promise for every push past max until the consumer takes them: a task that pushes several
    // items before it awaits (one upstream read) must not lose the first one's resolver.
    if (items.length >= max) return (roomFree ??= new Promise<void>((resolve) => { room = resolve }))
  }
  const settled = (): void => { ended = true; poke() }
  task(push, controller.signal).then(settled, (err) => { error = { err }; settled() })
  try {
    while (true) {
      if (items.length > 0) {
        const batch = items
        items = []
        const resolve = room
        room = undefined
        roomFree = undefined
        resolve?.()
        yield batch
      } else if (ended) {
        if (error !== undefined) throw error.err
        return
      } else {
        await new Promise<void>((resolve) => { wake = resolve })
      }
    }
  } finally {
    gone = true
    items = []
    outer.removeEventListener('abort', onAbort)
    if (!ended) controller.abort(new Error('the consumer stopped'))
    room?.()
  }
}
