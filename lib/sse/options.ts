// The stream options of the plugin and of each `reply.sse()` call, validated over their defaults.
import { SSE_ERR_INVALID_OPTION } from '../errors.js'
import { integerOption } from '../internal/integer-option.js'
import type { ResolvedStreamOptions, SseStreamOptions } from './stream.js'

const DEFAULT_HEARTBEAT_MS = 15_000
const DEFAULT_HIGH_WATER_MARK = 16 * 1024
// A timer longer than this fires at once (Node clamps it to 1 ms).
const MAX_TIMER_MS = 2 ** 31 - 1

/** Validates options over defaults; never changes the caller's object. */
export function resolveOptions (opts: SseStreamOptions, defaults?: ResolvedStreamOptions): ResolvedStreamOptions {
  const heartbeatMs = integerOption('heartbeatMs', opts.heartbeatMs, defaults?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, 0, MAX_TIMER_MS)
  const retryMs = opts.retryMs ?? defaults?.retryMs
  if (retryMs !== undefined) integerOption('retryMs', retryMs, undefined, 0)
  const serialize = opts.serialize ?? defaults?.serialize ?? JSON.stringify
  if (typeof serialize !== 'function') throw new SSE_ERR_INVALID_OPTION('serialize', 'expected a function')
  const highWaterMark = integerOption('highWaterMark', opts.highWaterMark, defaults?.highWaterMark ?? DEFAULT_HIGH_WATER_MARK, 1, 64 * 1024 * 1024)
  return { heartbeatMs, retryMs, serialize, highWaterMark }
}
