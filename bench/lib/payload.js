// What the servers stream and what the client expects: both sides derive every event from its
// index, so the client can check each one exactly (content and order) without the server telling it.

/** ~1 KiB of ASCII text with nothing JSON would escape, so `JSON.stringify` is a plain concatenation. */
const TEXT = ('Server-sent events stream tokens from a language model to a browser, one frame at a time. ').repeat(11).slice(0, 990)

/** Token `i`: 8 bytes with a leading space, like an LLM sub-word (the parser strips only one space). */
export function token (i) {
  return ' tok' + String(i % 10000).padStart(4, '0')
}

/** The 1 KiB JSON object of event `i`. */
export function jsonObject (i) {
  return { i, text: TEXT }
}

/** `JSON.stringify(jsonObject(i))`, without the cost of stringifying on the client. */
export function jsonText (i) {
  return '{"i":' + i + ',"text":"' + TEXT + '"}'
}

/** A broadcast payload: its index, the publish time (µs, CLOCK_MONOTONIC) and optional padding. */
export function broadcastObject (i, padBytes) {
  return padBytes > 0 ? { i, t: nowUs(), text: TEXT.slice(0, padBytes) } : { i, t: nowUs() }
}

/** Microseconds on the monotonic clock every process on the machine shares (Linux CLOCK_MONOTONIC). */
export function nowUs () {
  return Number(process.hrtime.bigint()) / 1000
}

/** How many source items were pulled so far (S4 reports how far a stalled source got). */
export const progress = { pulled: 0 }

/**
 * The S1/S4 source: an async generator of `n` items of `kind` ('tokens' | 'json'), each shaped by
 * `shape(value)` the way a variant's API wants it (a string, `{ data }`, a pre-formatted frame...).
 */
export async function * source (kind, n, shape) {
  progress.pulled = 0
  if (kind === 'tokens') {
    for (let i = 0; i < n; i++) { progress.pulled = i + 1; yield shape(token(i)) }
  } else {
    for (let i = 0; i < n; i++) { progress.pulled = i + 1; yield shape(jsonObject(i)) }
  }
}

/**
 * The `data` the client must see for event `i`. better-sse JSON-encodes every value, strings
 * included, so its tokens arrive quoted; everyone else sends a string as is.
 */
export function expectedData (kind, i, variant) {
  if (kind === 'json') return jsonText(i)
  return variant === 'better-sse' ? JSON.stringify(token(i)) : token(i)
}
