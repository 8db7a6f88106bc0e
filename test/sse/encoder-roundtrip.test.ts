// Properties of lib/sse/encoder.ts checked against a real parser, eventsource-parser (pinned 3.1.1):
// what we encode is what a client reads back, after the spec's own line-ending rule (CRLF and
// lone CR arrive as LF, WHATWG HTML §9.2.6), and no text in a field can forge another event.
import t from 'tap'
import fc from 'fast-check'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { encode, type SseMessage } from '../../lib/sse/encoder.js'

// Runs per property: the file (tap start-up included) stays well under 10 s on a shared 2-core box.
const RUNS = 500

// Pieces that attack the framing: every line ending, blank lines, field-looking prefixes, a BOM,
// NUL, and separators that are line breaks elsewhere but not in SSE.
const tricky = fc.constantFrom(
  '\r', '\n', '\r\n', '\n\r', '\n\n', '\r\r', '\r\n\r\n', ' ', '  ', ':', ': x',
  'data:', 'data: ', 'event: x', 'id: 1', 'id:', 'retry: 1', '\0', '\uFEFF', '\u2028', '\u0085'
)
/** Well-formed unicode of any plane, mixed with the pieces above. */
const text = fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), tricky), { maxLength: 10 })
  .map((parts) => parts.join(''))
/** Any UTF-16 code units, lone surrogates included. */
const codeUnits = fc.array(fc.oneof(
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 6 }),
  tricky
), { maxLength: 10 }).map((parts) => parts.join(''))

// The valid domain of each field, as lib/sse/encoder.ts documents it.
const eventText = text.map((s) => s.replace(/[\r\n]/g, ''))
const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 12 })
// HTTP trims a header value, so an id with an edge space could not come back as Last-Event-ID.
const idText = printable.filter((s) => !s.startsWith(' ') && !s.endsWith(' '))
const jsonData = fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'string')

const message: fc.Arbitrary<string | SseMessage> = fc.oneof(
  text,
  fc.record({
    data: fc.oneof(text, jsonData),
    event: eventText,
    id: fc.oneof(idText, fc.integer()),
    retry: fc.oneof(fc.constantFrom(0, Number.MAX_SAFE_INTEGER), fc.maxSafeNat()),
    comment: text
  }, { requiredKeys: [] })
)

type Seen = ['comment', string] | ['retry', number] | ['event', { type: string, id: string | undefined, data: string }]

const lines = (s: string): string[] => s.split(/\r\n|\r|\n/)
const asLf = (s: string): string => s.replace(/\r\n?/g, '\n')

/** What a spec-following client should see for these messages, in order. */
function expected (messages: Array<string | SseMessage>): Seen[] {
  const out: Seen[] = []
  for (const input of messages) {
    const m: SseMessage = typeof input === 'string' ? { data: input } : input
    if (m.comment !== undefined) for (const line of lines(m.comment)) out.push(['comment', line])
    if (m.retry !== undefined) out.push(['retry', m.retry])
    if (m.data !== undefined) {
      const data = typeof m.data === 'string' ? asLf(m.data) : JSON.stringify(m.data)
      // An absent or empty event type is `message` to an EventSource.
      const id = m.id === undefined ? undefined : String(m.id)
      out.push(['event', { type: m.event === undefined || m.event === '' ? 'message' : m.event, id, data }])
    }
  }
  return out
}

/**
 * Feeds `wire` to eventsource-parser as UTF-8 bytes cut at `cuts` (a network may cut anywhere,
 * mid-character included) through a streaming TextDecoder, as a fetch-based client does.
 */
function parse (wire: string, cuts: number[] = []): { seen: Seen[], errors: unknown[] } {
  const seen: Seen[] = []
  const errors: unknown[] = []
  const parser = createParser({
    onEvent: (e: EventSourceMessage) => seen.push(['event', { type: e.event ?? 'message', id: e.id, data: e.data }]),
    onRetry: (ms) => seen.push(['retry', ms]),
    onComment: (c) => seen.push(['comment', c]),
    onError: (err) => errors.push(err)
  })
  const bytes = Buffer.from(wire, 'utf8')
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let from = 0
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b).concat(bytes.length)) {
    parser.feed(decoder.decode(bytes.subarray(from, cut), { stream: true }))
    from = cut
  }
  parser.feed(decoder.decode())
  return { seen, errors }
}

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (err) { return (err as { code?: string }).code ?? 'uncoded' }
  return undefined
}

t.test('any valid message reads back as the intended event, comments and retry', async (t) => {
  fc.assert(fc.property(message, (m) => {
    const { seen, errors } = parse(encode(m))
    return errors.length === 0 && JSON.stringify(seen) === JSON.stringify(expected([m]))
  }), { numRuns: RUNS })
  t.pass(`${RUNS} messages round-tripped`)
})

t.test('a stream of messages cut into arbitrary byte chunks reads back message by message', async (t) => {
  fc.assert(fc.property(
    fc.array(message, { maxLength: 8 }),
    fc.array(fc.nat(), { maxLength: 12 }),
    (messages, cuts) => {
      const { seen, errors } = parse(messages.map((m) => encode(m)).join(''), cuts)
      return errors.length === 0 && JSON.stringify(seen) === JSON.stringify(expected(messages))
    }
  ), { numRuns: RUNS })
  t.pass(`${RUNS} streams round-tripped through random chunk splits`)
})

t.test('a stream cut between every pair of bytes still reads back the same', async (t) => {
  // The harshest split: each byte is its own chunk, so every CR/LF and every multi-byte character
  // straddles a chunk boundary.
  fc.assert(fc.property(fc.array(message, { minLength: 1, maxLength: 3 }), (messages) => {
    const wire = messages.map((m) => encode(m)).join('')
    const everyByte = Array.from({ length: Buffer.byteLength(wire) }, (_, i) => i)
    const { seen, errors } = parse(wire, everyByte)
    return errors.length === 0 && JSON.stringify(seen) === JSON.stringify(expected(messages))
  }), { numRuns: RUNS / 4 })
  t.pass(`${RUNS / 4} streams round-tripped one byte at a time`)
})

t.test('any string yielded as data is exactly one event, or refused when it is not well-formed', async (t) => {
  let refused = 0
  fc.assert(fc.property(codeUnits, (s) => {
    const code = codeOf(() => encode(s))
    if (!s.isWellFormed()) { refused++; return code === 'SSE_ERR_INVALID_DATA' }
    if (code !== undefined) return false
    const { seen, errors } = parse(encode(s))
    // One event, of the default type, with no id, retry or comment forged out of the text.
    return errors.length === 0 && seen.length === 1 &&
      JSON.stringify(seen[0]) === JSON.stringify(['event', { type: 'message', data: asLf(s) }])
  }), { numRuns: RUNS })
  t.ok(refused > 0, 'the generator reached lone surrogates')
})

t.test('n strings yielded in a row are n events, whatever they contain', async (t) => {
  fc.assert(fc.property(fc.array(text, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 8 }), (strings, cuts) => {
    const { seen, errors } = parse(strings.map((s) => encode(s)).join(''), cuts)
    return errors.length === 0 && JSON.stringify(seen) ===
      JSON.stringify(strings.map((s) => ['event', { type: 'message', data: asLf(s) }]))
  }), { numRuns: RUNS })
  t.pass(`${RUNS} runs: never more or fewer events than strings`)
})

t.test('any text in a comment stays comment lines and dispatches nothing', async (t) => {
  fc.assert(fc.property(codeUnits, (s) => {
    const code = codeOf(() => encode({ comment: s }))
    if (!s.isWellFormed()) return code === 'SSE_ERR_INVALID_DATA'
    const { seen, errors } = parse(encode({ comment: s }))
    return code === undefined && errors.length === 0 &&
      JSON.stringify(seen) === JSON.stringify(lines(s).map((line) => ['comment', line]))
  }), { numRuns: RUNS })
  t.pass(`${RUNS} comments stayed comments`)
})

t.test('any text as event type is either refused with a code or read back exactly', async (t) => {
  let accepted = 0
  fc.assert(fc.property(codeUnits, text, (event, data) => {
    const code = codeOf(() => encode({ event, data }))
    if (/[\r\n]/.test(event)) return code === 'SSE_ERR_INVALID_FIELD'
    if (!event.isWellFormed()) return code === 'SSE_ERR_INVALID_DATA'
    accepted++
    const { seen, errors } = parse(encode({ event, data }))
    return code === undefined && errors.length === 0 && JSON.stringify(seen) ===
      JSON.stringify([['event', { type: event === '' ? 'message' : event, data: asLf(data) }]])
  }), { numRuns: RUNS })
  t.ok(accepted > 0, 'some event types were accepted')
})

t.test('any text as id is either refused with a code or read back exactly on its event', async (t) => {
  let accepted = 0
  fc.assert(fc.property(fc.oneof(codeUnits, printable), (id) => {
    const code = codeOf(() => encode({ id, data: 'x' }))
    // Exactly what can come back intact as a Last-Event-ID header is accepted.
    if (/[^\x20-\x7e]|^ | $/.test(id)) return code === 'SSE_ERR_INVALID_FIELD'
    if (code !== undefined) return false
    accepted++
    const { seen, errors } = parse(encode({ id, data: 'x' }))
    return errors.length === 0 &&
      JSON.stringify(seen) === JSON.stringify([['event', { type: 'message', id, data: 'x' }]])
  }), { numRuns: RUNS })
  t.ok(accepted > 0, 'some ids were accepted')
})

t.test('any integer as id reads back as its decimal text; any other number is refused', async (t) => {
  fc.assert(fc.property(fc.oneof(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), fc.double()), (id) => {
    const code = codeOf(() => encode({ id, data: 'x' }))
    if (!Number.isInteger(id)) return code === 'SSE_ERR_INVALID_FIELD'
    const { seen, errors } = parse(encode({ id, data: 'x' }))
    const text = seen[0]?.[0] === 'event' ? seen[0][1].id : undefined
    return errors.length === 0 && text !== undefined && /^-?\d+$/.test(text) && BigInt(text) === BigInt(id)
  }), { numRuns: RUNS })
})

t.test('any safe non-negative retry reads back as the same number; anything else is refused', async (t) => {
  fc.assert(fc.property(fc.oneof(fc.maxSafeNat(), fc.double(), fc.integer({ min: -1e6, max: -1 })), (retry) => {
    const code = codeOf(() => encode({ retry }))
    if (!Number.isSafeInteger(retry) || retry < 0) return code === 'SSE_ERR_INVALID_RETRY'
    const { seen, errors } = parse(encode({ retry }))
    // -0 is written as 0, and 0 is what the client gets.
    return code === undefined && errors.length === 0 && JSON.stringify(seen) === JSON.stringify([['retry', retry + 0]])
  }), { numRuns: RUNS })
  t.pass(`${RUNS} retries checked`)
})
