// The one abortable wait of the library. Not node:timers/promises: the client runs in browsers
// too, and the callers want to know whether they were woken by an abort, not an AbortError.

/**
 * Waits at least `ms` (a timer may fire a little early, so it waits again for the rest), or until
 * `signal` aborts. Resolves `true` when the time has passed, `false` when aborted; never rejects
 * and leaves no timer or listener behind.
 */
export async function sleep (ms: number, signal?: AbortSignal): Promise<boolean> {
  const end = performance.now() + ms
  for (let left = ms; left > 0; left = end - performance.now()) {
    if (signal?.aborted === true) return false
    const slept = await new Promise<boolean>((resolve) => {
      const onAbort = (): void => { clearTimeout(timer); resolve(false) }
      const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(true) }, Math.ceil(left))
      signal?.addEventListener('abort', onAbort, { once: true })
    })
    if (!slept) return false
  }
  return signal?.aborted !== true
}
