// The one check for integer options (timeouts, sizes, counts) across the library's parts, so that
// every part refuses the same values with the same coded error and wording.
import { SSE_ERR_INVALID_OPTION } from '../errors.js'

/**
 * `value ?? fallback` if it is an integer from `min` to `max`; else throws SSE_ERR_INVALID_OPTION
 * naming the option. `undefined` without a fallback is refused like any other non-integer.
 */
export function integerOption (name: string, value: unknown, fallback: number | undefined, min: number,
  max: number = Number.MAX_SAFE_INTEGER): number {
  const v = value ?? fallback
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new SSE_ERR_INVALID_OPTION(name, `expected an integer from ${min} to ${max}, got ${String(v)}`)
  }
  return v
}
