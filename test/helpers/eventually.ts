// Waiting for something that happens elsewhere (a reconnect, an expiry, a fan-out): poll until it
// holds, bounded by a deadline so generous that a machine with every core busy still meets it.
// Never a fixed sleep guessing how long it takes, and never a loop of N short sleeps, whose total
// is a wall-clock margin in disguise.

/** The deadline of every wait: far beyond what anything takes, short of the test's own timeout. */
export const PATIENCE_MS = 30_000

/** Resolves once `check()` holds; rejects naming `what` if it still does not after `timeoutMs`. */
export async function eventually (check: () => boolean | Promise<boolean>, what = 'the condition', timeoutMs = PATIENCE_MS, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}
