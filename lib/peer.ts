// Optional peer dependencies (ioredis, openai, ...) are loaded with a dynamic import, because a
// static `import` of a package that is not installed fails while the module graph links, with
// Node's ERR_MODULE_NOT_FOUND naming neither our subpath nor what to do about it.
import { SSE_ERR_MISSING_PEER } from './errors.js'

/**
 * Loads the optional peer `name` for the subpath `feature` (e.g. `fastify-sse-stream/redis`);
 * when it is not installed, throws SSE_ERR_MISSING_PEER naming the package to install. Any other
 * failure (the package is there but throws while loading) is rethrown as it is.
 * `load` imports the peer, written at the call site so that TypeScript types the result.
 */
export async function loadPeer<T> (feature: string, name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (err) {
    if (isMissing(err, name)) throw new SSE_ERR_MISSING_PEER(feature, name, name)
    throw err
  }
}

function isMissing (err: unknown, name: string): boolean {
  const e = err as { code?: unknown, message?: unknown } | null
  if (e === null || typeof e !== 'object') return false
  if (e.code !== 'ERR_MODULE_NOT_FOUND' && e.code !== 'MODULE_NOT_FOUND') return false
  // Only the peer itself missing; a missing file inside an installed peer is a different fault.
  return typeof e.message === 'string' && e.message.includes(`'${name}'`)
}
