// A generation producer driven by a test: push events, end it, and see whether (and why) it was
// aborted. After an abort it yields `done` with finish_reason "stopped", as /events' producer does.
import type { GenerationEvent } from '../../lib/generations/store.js'
import { deferred } from './http.js'

export interface Controlled {
  produce: (signal: AbortSignal) => AsyncGenerator<GenerationEvent>
  push: (...events: GenerationEvent[]) => void
  end: () => void
  /** Resolves with the abort reason's message. */
  aborted: Promise<string>
}

export function controlled (): Controlled {
  const queue: GenerationEvent[] = []
  let wake: (() => void) | undefined
  let ended = false
  const aborted = deferred<string>()
  const produce = async function * (signal: AbortSignal): AsyncGenerator<GenerationEvent> {
    signal.addEventListener('abort', () => { aborted.resolve(String(signal.reason?.message)); wake?.() }, { once: true })
    while (true) {
      while (queue.length > 0) yield queue.shift()!
      if (ended) return
      if (signal.aborted) { yield { event: 'done', data: { finish_reason: 'stopped' } }; return }
      await new Promise<void>((resolve) => { wake = resolve })
    }
  }
  return {
    produce,
    push: (...events) => { queue.push(...events); wake?.() },
    end: () => { ended = true; wake?.() },
    aborted: aborted.promise
  }
}
