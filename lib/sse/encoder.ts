// Message -> wire text, per WHATWG HTML §9.2.5-9.2.7 ("Server-sent events": parsing an event
// stream, interpreting it). Pure: no Fastify, no node:http, so it runs anywhere and is tested as
// a table of input -> exact output plus a round-trip property against eventsource-parser.
import {
  SSE_ERR_INVALID_DATA,
  SSE_ERR_INVALID_FIELD,
  SSE_ERR_INVALID_MESSAGE,
  SSE_ERR_INVALID_RETRY
} from '../errors.js'

/** One event. Every field is optional; `{}` encodes to nothing. */
export interface SseMessage<T = unknown> {
  /** A string is sent as is (split into one `data:` line per line); anything else goes through `serialize`. */
  data?: T
  /** The event type; `addEventListener(event, ...)` receives it. Must not contain CR or LF. */
  event?: string
  /**
   * The event id the client sends back as `Last-Event-ID`: printable ASCII without edge spaces
   * (`''` resets it), or an integer, written as its decimal text (`42` → `id: 42`).
   */
  id?: string | number
  /** Reconnection delay in milliseconds for the client: a non-negative integer; `0` is written. */
  retry?: number
  /** A comment line (or lines): ignored by clients, keeps proxies from timing the stream out. */
  comment?: string
}

/**
 * Text already encoded as one or more complete frames (see `encodeFrame`). `reply.sse()` writes it
 * as is: the hub encodes each broadcast once and hands the same frame to every subscriber.
 */
export class SseFrame {
  constructor (readonly text: string) {}
}

/** What a source may yield: a string (shorthand for `{ data }`), a message, or a pre-encoded frame. */
export type SseInput<T = unknown> = string | SseMessage<T> | SseFrame

/** Turns non-string `data` into text. Default: `JSON.stringify`. */
export type Serializer = (data: unknown) => string

// Any line ending the parser honours (§9.2.6: CRLF, lone LF, lone CR).
const LINE_BREAK = /\r\n|\r|\n/
const FIELDS = new Set(['data', 'event', 'id', 'retry', 'comment'])
// An id must come back intact as the Last-Event-ID request header: NUL makes the parser ignore the
// whole field (§9.2.6 "id"), other control characters are not allowed in a header value, HTTP trims
// leading and trailing spaces, and Node decodes headers as latin1, so non-ASCII comes back garbled.
const BAD_ID = /[^\x20-\x7e]|^ | $/

// Two indexOf scans are several times faster than a /[\r\n]/ test over a long text (bench: 1 KiB
// JSON events went from 2.9 to 2.1 µs per encode), and this runs on every message.
function hasLineBreak (text: string): boolean {
  return text.indexOf('\n') !== -1 || text.indexOf('\r') !== -1
}

/** `data` as `data:` lines; an empty string still yields one line, or nothing would be dispatched. */
export function encodeData (text: string): string {
  if (!hasLineBreak(text)) return 'data: ' + text + '\n'
  let out = ''
  for (const line of text.split(LINE_BREAK)) out += 'data: ' + line + '\n'
  return out
}

/** A comment, `:` on every line, so a newline in it cannot start a field. */
export function encodeComment (text: string): string {
  if (!hasLineBreak(text)) return text === '' ? ':\n' : ': ' + text + '\n'
  let out = ''
  for (const line of text.split(LINE_BREAK)) out += line === '' ? ':\n' : ': ' + line + '\n'
  return out
}

function describeMessage (message: unknown): string {
  if (message === null) return 'null'
  if (Array.isArray(message)) return 'an array (yield its items one by one)'
  if (ArrayBuffer.isView(message)) return 'bytes (yield a string, or an SseFrame of complete frames)'
  return typeof message
}

function checkComment (comment: unknown): string {
  if (typeof comment !== 'string') throw new SSE_ERR_INVALID_FIELD('comment', 'anything but a string')
  return comment
}

function checkEvent (event: unknown): string {
  if (typeof event !== 'string') throw new SSE_ERR_INVALID_FIELD('event', 'anything but a string')
  if (hasLineBreak(event)) throw new SSE_ERR_INVALID_FIELD('event', 'CR or LF')
  return event
}

function checkId (id: unknown): string {
  if (typeof id === 'number') {
    if (!Number.isInteger(id)) throw new SSE_ERR_INVALID_FIELD('id', 'a number that is not a finite integer')
    // Decimal digits even past 2^53, where String() would switch to 1e+21; -0 is 0.
    return Number.isSafeInteger(id) ? String(id) : BigInt(id).toString()
  }
  if (typeof id !== 'string') throw new SSE_ERR_INVALID_FIELD('id', 'anything but a string or an integer')
  const bad = BAD_ID.exec(id)
  if (bad !== null) throw new SSE_ERR_INVALID_FIELD('id', describeIdChar(bad[0]))
  return id
}

function describeIdChar (c: string): string {
  if (c === '\0') return 'NUL'
  if (c === '\r' || c === '\n') return 'CR or LF'
  if (c === '' || c === ' ') return 'leading or trailing spaces'
  return c < ' ' || c === '\x7f' ? 'control characters' : 'non-ASCII characters'
}

function checkRetry (retry: unknown): number {
  if (typeof retry !== 'number' || !Number.isSafeInteger(retry) || retry < 0) {
    throw new SSE_ERR_INVALID_RETRY(String(retry))
  }
  return retry
}

function serialized (data: unknown, serialize: Serializer): string {
  let text: unknown
  try {
    text = serialize(data)
  } catch (err) {
    // BigInt, a cycle, a throwing toJSON: say which message failed, with a code.
    throw new SSE_ERR_INVALID_DATA(`serialize threw: ${(err as Error)?.message ?? String(err)}`, { cause: err })
  }
  if (typeof text !== 'string') throw new SSE_ERR_INVALID_DATA(`serialize returned ${typeof text}, not a string`)
  return text
}

/**
 * Encodes one message as a complete frame, ending with the blank line that dispatches it.
 * Throws a coded error for a field that would corrupt the stream; never strips silently.
 */
export function encode (message: SseInput, serialize: Serializer = JSON.stringify): string {
  if (typeof message === 'string') {
    // The common case of a token: checked while still flat (a check of the joined frame would
    // flatten it first) and joined once.
    if (!hasLineBreak(message)) return 'data: ' + wellFormed(message) + '\n\n'
    return wellFormed(encodeData(message)) + '\n'
  }
  if (message instanceof SseFrame) return message.text
  if (message === null || typeof message !== 'object' || Array.isArray(message) || ArrayBuffer.isView(message)) {
    throw new SSE_ERR_INVALID_MESSAGE(describeMessage(message))
  }
  // Text from the caller must be well-formed unicode; JSON.stringify's own output always is (it
  // escapes lone surrogates and line breaks), so the common case of object data skips both scans.
  let out = ''
  if (message.comment !== undefined) out += wellFormed(encodeComment(checkComment(message.comment)))
  if (message.event !== undefined) out += 'event: ' + wellFormed(checkEvent(message.event)) + '\n'
  if (message.id !== undefined) out += 'id: ' + checkId(message.id) + '\n'
  if (message.retry !== undefined) out += 'retry: ' + checkRetry(message.retry) + '\n'
  const data = message.data
  if (typeof data === 'string') out += wellFormed(encodeData(data))
  else if (data !== undefined) {
    out += serialize === JSON.stringify
      ? 'data: ' + serialized(data, serialize) + '\n'
      : wellFormed(encodeData(serialized(data, serialize)))
  }
  if (out === '') {
    // `{}` is nothing to send; `{ date: 'x' }` is a typo that must not vanish silently.
    for (const key in message) {
      if (!FIELDS.has(key)) throw new SSE_ERR_INVALID_MESSAGE(`an object with no SSE field (has "${key}")`)
    }
    return ''
  }
  return out + '\n'
}

// A lone surrogate would reach the client as U+FFFD: refuse rather than corrupt (§9.2.5).
function wellFormed (text: string): string {
  if (!text.isWellFormed()) throw new SSE_ERR_INVALID_DATA('text contains a lone surrogate (not well-formed unicode)')
  return text
}

/** `encode()` wrapped as an `SseFrame`, to encode once and send the same frame to many streams. */
export function encodeFrame (message: SseInput, serialize?: Serializer): SseFrame {
  return message instanceof SseFrame ? message : new SseFrame(encode(message, serialize))
}
