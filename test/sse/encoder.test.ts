// lib/sse/encoder.ts as tables of input -> exact wire text (WHATWG HTML §9.2.5-9.2.7), and every field
// it refuses -> the exact error code. The round trip through a real parser is in
// encoder-roundtrip.test.ts; here we pin the bytes, so a change to the wire format is a visible diff.
import t from 'tap'
import { encode, encodeComment, encodeData, encodeFrame, SseFrame, type SseInput, type Serializer } from '../../lib/sse/encoder.js'

type Row = [name: string, input: SseInput, wire: string]

// A subtest's type, as tap hands it to a test callback.
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function table (t: Test, rows: Row[], serialize?: Serializer): void {
  for (const [name, input, wire] of rows) t.equal(encode(input, serialize), wire, name)
}

t.test('splits data on every CRLF, LF and lone CR, one data line per piece', async (t) => {
  table(t, [
    ['one line', 'hello', 'data: hello\n\n'],
    ['LF', 'a\nb', 'data: a\ndata: b\n\n'],
    ['CRLF', 'a\r\nb', 'data: a\ndata: b\n\n'],
    ['lone CR', 'a\rb', 'data: a\ndata: b\n\n'],
    ['CR then LF are one break, LF then CR are two', 'a\r\nb\n\rc', 'data: a\ndata: b\ndata: \ndata: c\n\n'],
    ['all three mixed', 'a\rb\nc\r\nd', 'data: a\ndata: b\ndata: c\ndata: d\n\n'],
    ['a blank line inside data stays inside the event', 'a\n\nb', 'data: a\ndata: \ndata: b\n\n'],
    ['CR CR is two breaks', 'a\r\rb', 'data: a\ndata: \ndata: b\n\n'],
    ['trailing LF survives as an empty last line', 'a\n', 'data: a\ndata: \n\n'],
    ['trailing CRLF survives as an empty last line', 'a\r\n', 'data: a\ndata: \n\n'],
    ['trailing lone CR survives as an empty last line', 'a\r', 'data: a\ndata: \n\n'],
    ['leading newline', '\na', 'data: \ndata: a\n\n'],
    ['only a CRLF', '\r\n', 'data: \ndata: \n\n'],
    ['empty data still dispatches an event', '', 'data: \n\n'],
    ['a text that looks like fields stays data', 'event: x\nid: 1\nretry: 5\n: c', 'data: event: x\ndata: id: 1\ndata: retry: 5\ndata: : c\n\n']
  ])
})

t.test('keeps leading spaces, colons and unusual characters in data as they are', async (t) => {
  table(t, [
    ['one leading space is kept because the separator space is always written', ' a', 'data:  a\n\n'],
    ['several leading spaces', '   a', 'data:    a\n\n'],
    ['leading spaces on every line', ' a\n  b', 'data:  a\ndata:   b\n\n'],
    ['only spaces', '  ', 'data:   \n\n'],
    ['trailing spaces', 'a  ', 'data: a  \n\n'],
    ['a leading colon', ':a', 'data: :a\n\n'],
    ['a tab', '\ta\t', 'data: \ta\t\n\n'],
    ['NUL is allowed in data', 'a\0b', 'data: a\0b\n\n'],
    ['a BOM inside data', '\uFEFFa', 'data: \uFEFFa\n\n']
  ])
})

t.test('writes unicode, astral characters and non-SSE line separators unchanged', async (t) => {
  table(t, [
    ['latin and CJK', 'héllo 世界', 'data: héllo 世界\n\n'],
    ['right-to-left', 'שלום', 'data: שלום\n\n'],
    ['astral emoji (a surrogate pair)', '😀', 'data: 😀\n\n'],
    ['astral across a line break', '𝄞\r\n😀', 'data: 𝄞\ndata: 😀\n\n'],
    ['a family emoji with joiners', '👩‍👩‍👧', 'data: 👩‍👩‍👧\n\n'],
    ['combining marks', 'e\u0301', 'data: e\u0301\n\n'],
    ['U+2028 and U+2029 are not SSE line breaks', 'a\u2028b\u2029c', 'data: a\u2028b\u2029c\n\n'],
    ['NEL (U+0085) is not an SSE line break', 'a\u0085b', 'data: a\u0085b\n\n'],
    ['vertical tab and form feed are not SSE line breaks', 'a\vb\fc', 'data: a\vb\fc\n\n'],
    ['the highest code point', '\u{10FFFF}', 'data: \u{10FFFF}\n\n']
  ])
})

t.test('encodes non-string data as JSON by default', async (t) => {
  table(t, [
    ['an object', { data: { a: 1, b: 'x' } }, 'data: {"a":1,"b":"x"}\n\n'],
    ['an array', { data: [1, 'two', null] }, 'data: [1,"two",null]\n\n'],
    ['a newline inside a JSON string is escaped, so it stays one line', { data: { s: 'a\r\nb' } }, 'data: {"s":"a\\r\\nb"}\n\n'],
    ['a lone surrogate inside JSON is escaped, so it is well-formed', { data: { s: '\uD800' } }, 'data: {"s":"\\ud800"}\n\n'],
    ['astral characters inside JSON are written raw', { data: { s: '😀' } }, 'data: {"s":"😀"}\n\n'],
    ['zero', { data: 0 }, 'data: 0\n\n'],
    ['false', { data: false }, 'data: false\n\n'],
    ['null', { data: null }, 'data: null\n\n'],
    ['a string is sent as is, not JSON-quoted', { data: 'a"b' }, 'data: a"b\n\n'],
    ['an empty string in an object', { data: '' }, 'data: \n\n'],
    ['undefined data writes no data line', { event: 'x', data: undefined }, 'event: x\n\n']
  ])
})

t.test('hands non-string data to a custom serialize and splits what it returns', async (t) => {
  const calls: unknown[] = []
  const serialize: Serializer = (v) => { calls.push(v); return `<${String((v as { n: number }).n)}>\r\nend` }
  table(t, [
    ['object through serialize, CRLF split', { data: { n: 7 } }, 'data: <7>\ndata: end\n\n'],
    ['strings bypass serialize', { data: 'plain' }, 'data: plain\n\n'],
    ['string shorthand bypasses serialize', 'plain', 'data: plain\n\n']
  ], serialize)
  t.same(calls, [{ n: 7 }], 'serialize is called once, only for the non-string data')
  t.equal(encode({ data: 1 }, () => ''), 'data: \n\n', 'a serialize returning the empty string still dispatches')
})

t.test('writes event, id and retry, including the falsy values that other libraries drop', async (t) => {
  table(t, [
    ['event', { event: 'tick', data: 'x' }, 'event: tick\ndata: x\n\n'],
    ['an empty event is written (the client reads it as message)', { event: '', data: 'x' }, 'event: \ndata: x\n\n'],
    ['an event with spaces and unicode', { event: ' a b é😀', data: 'x' }, 'event:  a b é😀\ndata: x\n\n'],
    ['id', { id: '42', data: 'x' }, 'id: 42\ndata: x\n\n'],
    ['id \'\' is written: it resets the client\'s last event id', { id: '', data: 'x' }, 'id: \ndata: x\n\n'],
    ['an id with punctuation', { id: 'g1:42~/?=&', data: 'x' }, 'id: g1:42~/?=&\ndata: x\n\n'],
    ['an integer id is written as its decimal text', { id: 42, data: 'x' }, 'id: 42\ndata: x\n\n'],
    ['id 0 is written', { id: 0 }, 'id: 0\n\n'],
    ['id -0 is written as 0', { id: -0 }, 'id: 0\n\n'],
    ['a negative integer id', { id: -7 }, 'id: -7\n\n'],
    ['an integer id past 2^53 is written in digits, not as 1e+21', { id: 1e21 }, 'id: 1000000000000000000000\n\n'],
    ['retry', { retry: 3000 }, 'retry: 3000\n\n'],
    ['retry: 0 is written', { retry: 0 }, 'retry: 0\n\n'],
    ['retry: -0 is written as 0', { retry: -0 }, 'retry: 0\n\n'],
    ['the largest safe retry', { retry: Number.MAX_SAFE_INTEGER }, 'retry: 9007199254740991\n\n'],
    ['an id without data is still written (it moves the cursor)', { id: '9' }, 'id: 9\n\n'],
    ['an event without data is written (the client does not dispatch it)', { event: 'x' }, 'event: x\n\n']
  ])
})

t.test('writes comments with a colon on every line', async (t) => {
  table(t, [
    ['a comment', { comment: 'ping' }, ': ping\n\n'],
    ['an empty comment', { comment: '' }, ':\n\n'],
    ['LF', { comment: 'a\nb' }, ': a\n: b\n\n'],
    ['CRLF', { comment: 'a\r\nb' }, ': a\n: b\n\n'],
    ['lone CR', { comment: 'a\rb' }, ': a\n: b\n\n'],
    ['an empty line inside a comment stays a comment, not a dispatch', { comment: 'a\n\nb' }, ': a\n:\n: b\n\n'],
    ['a trailing newline', { comment: 'a\n' }, ': a\n:\n\n'],
    ['a line that looks like a field stays a comment', { comment: 'x\ndata: forged\nid: 1' }, ': x\n: data: forged\n: id: 1\n\n'],
    ['a leading space is kept', { comment: ' a' }, ':  a\n\n']
  ])
  t.equal(encodeComment('a\rb'), ': a\n: b\n', 'encodeComment alone writes no blank line')
  t.equal(encodeData('a\rb'), 'data: a\ndata: b\n', 'encodeData alone writes no blank line')
})

t.test('orders fields comment, event, id, retry, data whatever the key order', async (t) => {
  const wire = ': hi\nevent: e\nid: 1\nretry: 5\ndata: d\n\n'
  table(t, [
    ['declared in wire order', { comment: 'hi', event: 'e', id: '1', retry: 5, data: 'd' }, wire],
    ['declared in reverse', { data: 'd', retry: 5, id: '1', event: 'e', comment: 'hi' }, wire],
    ['multi-line comment and data together', { data: 'a\nb', comment: 'c\rd', event: 'e' }, ': c\n: d\nevent: e\ndata: a\ndata: b\n\n']
  ])
})

t.test('encodes an empty message to nothing and does not write unknown keys', async (t) => {
  t.equal(encode({}), '', '{} is no bytes at all, not a stray blank line')
  t.equal(encode({ data: undefined, event: undefined, id: undefined, retry: undefined, comment: undefined }), '',
    'explicit undefined fields are absent fields')
  t.equal(encode({ data: 'x', extra: 1 } as SseInput), 'data: x\n\n', 'an unknown key is not written')
})

t.test('passes a pre-encoded SseFrame through untouched', async (t) => {
  const frame = new SseFrame('event: a\ndata: 1\n\nevent: b\ndata: 2\n\n')
  t.equal(encode(frame), frame.text, 'encode returns the frame text as is')
  t.equal(encode(new SseFrame('')), '', 'an empty frame stays empty')
  t.equal(encodeFrame(frame), frame, 'encodeFrame returns the same frame object, not a copy')
  const built = encodeFrame({ event: 'x', data: { a: 1 } })
  t.ok(built instanceof SseFrame, 'encodeFrame wraps a message in an SseFrame')
  t.equal(built.text, 'event: x\ndata: {"a":1}\n\n')
  t.equal(encodeFrame({ data: 2 }, (v) => `n=${String(v)}`).text, 'data: n=2\n\n', 'encodeFrame passes serialize on')
  t.equal(encode(encodeFrame('a\rb')), 'data: a\ndata: b\n\n', 'encoding a frame built from a string gives the same text')
})

type Refusal = [name: string, input: unknown, code: string, message: RegExp, serialize?: Serializer]

function refusals (t: Test, rows: Refusal[]): void {
  for (const [name, input, code, message, serialize] of rows) {
    let err: unknown
    try { encode(input as SseInput, serialize) } catch (e) { err = e }
    t.match(err, { code, message, statusCode: 500 }, name)
    t.ok(err instanceof TypeError, `${name}: a TypeError, like other programming errors`)
  }
}

t.test('refuses CR or LF in event with SSE_ERR_INVALID_FIELD', async (t) => {
  refusals(t, [
    ['LF', { event: 'a\nb', data: 'x' }, 'SSE_ERR_INVALID_FIELD', /"event" must not contain CR or LF/],
    ['CR', { event: 'a\rb', data: 'x' }, 'SSE_ERR_INVALID_FIELD', /"event" must not contain CR or LF/],
    ['CRLF', { event: 'a\r\nb', data: 'x' }, 'SSE_ERR_INVALID_FIELD', /"event" must not contain CR or LF/],
    ['a forged field', { event: 'x\ndata: forged', data: 'x' }, 'SSE_ERR_INVALID_FIELD', /"event"/],
    ['a trailing newline', { event: 'x\n', data: 'x' }, 'SSE_ERR_INVALID_FIELD', /"event"/],
    ['a number', { event: 1, data: 'x' }, 'SSE_ERR_INVALID_FIELD', /"event" must not contain anything but a string/],
    ['null', { event: null, data: 'x' }, 'SSE_ERR_INVALID_FIELD', /"event"/]
  ])
})

t.test('refuses CR, LF, NUL or non-ASCII in id with SSE_ERR_INVALID_FIELD', async (t) => {
  refusals(t, [
    ['LF', { id: 'a\nb' }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain CR or LF/],
    ['CR', { id: 'a\rb' }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain CR or LF/],
    ['CRLF', { id: '1\r\n' }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain CR or LF/],
    ['NUL (the parser would ignore the whole field)', { id: 'a\0b' }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain NUL/],
    ['latin-1', { id: 'é' }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain non-ASCII characters/],
    ['astral', { id: '😀' }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain non-ASCII/],
    ['U+0080, the first non-ASCII code point', { id: '\u0080' }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain non-ASCII/],
    ['a fraction', { id: 4.2 }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain a number that is not a finite integer/],
    ['NaN', { id: NaN }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain a number that is not a finite integer/],
    ['Infinity', { id: Infinity }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain a number that is not a finite integer/],
    ['a boolean', { id: true }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain anything but a string or an integer/],
    ['a bigint', { id: 42n }, 'SSE_ERR_INVALID_FIELD', /"id" must not contain anything but a string or an integer/]
  ])
})

// An id must survive the trip back as the Last-Event-ID header, which request.lastEventId accepts
// only as printable ASCII (\x20-\x7e) and which HTTP trims.
t.test('refuses control characters, DEL and edge spaces in id, which could not come back as Last-Event-ID',
  async (t) => {
    t.throws(() => encode({ id: ' a' }), { code: 'SSE_ERR_INVALID_FIELD', message: /leading or trailing spaces/ })
    t.throws(() => encode({ id: 'a ' }), { code: 'SSE_ERR_INVALID_FIELD', message: /leading or trailing spaces/ })
    t.equal(encode({ id: 'a b' }), 'id: a b\n\n', 'an inner space is fine')
    for (const c of ['\t', '\x01', '\x1b', '\x1f', '\x7f']) {
      t.throws(() => encode({ id: `a${c}b` }), { code: 'SSE_ERR_INVALID_FIELD' },
        'U+' + c.charCodeAt(0).toString(16).padStart(4, '0'))
    }
  })

t.test('refuses a retry that is not a non-negative safe integer with SSE_ERR_INVALID_RETRY', async (t) => {
  const m = /SSE retry must be a non-negative safe integer/
  refusals(t, [
    ['negative', { retry: -1 }, 'SSE_ERR_INVALID_RETRY', /got -1$/],
    ['fractional', { retry: 1.5 }, 'SSE_ERR_INVALID_RETRY', /got 1\.5$/],
    ['NaN', { retry: NaN }, 'SSE_ERR_INVALID_RETRY', /got NaN$/],
    ['Infinity', { retry: Infinity }, 'SSE_ERR_INVALID_RETRY', m],
    ['beyond MAX_SAFE_INTEGER (would print in exponent form or lose digits)', { retry: 2 ** 53 }, 'SSE_ERR_INVALID_RETRY', m],
    ['1e21 (String() gives "1e+21")', { retry: 1e21 }, 'SSE_ERR_INVALID_RETRY', m],
    ['a numeric string', { retry: '5' }, 'SSE_ERR_INVALID_RETRY', m],
    ['null', { retry: null }, 'SSE_ERR_INVALID_RETRY', /got null$/],
    ['a bigint', { retry: 5n }, 'SSE_ERR_INVALID_RETRY', m]
  ])
})

t.test('refuses a serialize result that is not a string with SSE_ERR_INVALID_DATA', async (t) => {
  const m = /SSE data is invalid: serialize returned/
  refusals(t, [
    ['undefined from JSON.stringify (a function)', { data: () => 1 }, 'SSE_ERR_INVALID_DATA', /serialize returned undefined, not a string/],
    ['undefined from JSON.stringify (a symbol)', { data: Symbol('s') }, 'SSE_ERR_INVALID_DATA', m],
    ['a number from a custom serialize', { data: {} }, 'SSE_ERR_INVALID_DATA', /serialize returned number/, () => 42 as unknown as string],
    ['null from a custom serialize', { data: {} }, 'SSE_ERR_INVALID_DATA', /serialize returned object/, () => null as unknown as string],
    ['a Buffer from a custom serialize', { data: {} }, 'SSE_ERR_INVALID_DATA', m, () => Buffer.from('x') as unknown as string]
  ])
})

t.test('refuses a lone surrogate in any text field with SSE_ERR_INVALID_DATA', async (t) => {
  const m = /lone surrogate/
  refusals(t, [
    ['a high surrogate in string data', '\uD800', 'SSE_ERR_INVALID_DATA', m],
    ['a low surrogate in object data', { data: 'a\uDC00' }, 'SSE_ERR_INVALID_DATA', m],
    ['a surrogate pair in the wrong order', { data: '\uDE00\uD83D' }, 'SSE_ERR_INVALID_DATA', m],
    ['a pair cut by a line break', { data: '\uD83D\n\uDE00' }, 'SSE_ERR_INVALID_DATA', m],
    ['in event', { event: '\uD800', data: 'x' }, 'SSE_ERR_INVALID_DATA', m],
    ['in a comment', { comment: 'x\uDFFF' }, 'SSE_ERR_INVALID_DATA', m],
    ['returned by a custom serialize', { data: 1 }, 'SSE_ERR_INVALID_DATA', m, () => '\uD800']
  ])
})

t.test('refuses a message that is neither a string nor an object with SSE_ERR_INVALID_MESSAGE', async (t) => {
  refusals(t, [
    ['null', null, 'SSE_ERR_INVALID_MESSAGE', /got null$/],
    ['undefined', undefined, 'SSE_ERR_INVALID_MESSAGE', /got undefined$/],
    ['a number', 42, 'SSE_ERR_INVALID_MESSAGE', /got number$/],
    ['a boolean', true, 'SSE_ERR_INVALID_MESSAGE', /got boolean$/],
    ['a bigint', 1n, 'SSE_ERR_INVALID_MESSAGE', /got bigint$/],
    ['a symbol', Symbol('s'), 'SSE_ERR_INVALID_MESSAGE', /got symbol$/],
    ['a function', () => 'x', 'SSE_ERR_INVALID_MESSAGE', /got function$/]
  ])
})

// An array or a Buffer has no message fields; encoding it to '' would drop it without a word.
t.test('refuses an array, a byte buffer or a misspelled message instead of dropping it',
  async (t) => {
    t.throws(() => encode({ date: 'x' } as unknown as SseInput), { code: 'SSE_ERR_INVALID_MESSAGE', message: /has "date"/ }, 'a typo')
    t.throws(() => encode({ comment: 42 } as unknown as SseInput), { code: 'SSE_ERR_INVALID_FIELD', message: /"comment"/ }, 'a non-string comment')
    const circular: Record<string, unknown> = {}
    circular.self = circular
    t.throws(() => encode({ data: circular }), { code: 'SSE_ERR_INVALID_DATA', message: /serialize threw/ }, 'a cycle')
    t.throws(() => encode({ data: 1n }), { code: 'SSE_ERR_INVALID_DATA' }, 'a BigInt')
    t.throws(() => encode(['a', 'b'] as unknown as SseInput), { code: 'SSE_ERR_INVALID_MESSAGE' }, 'an array')
    t.throws(() => encode(Buffer.from('data: x\n\n') as unknown as SseInput), { code: 'SSE_ERR_INVALID_MESSAGE' }, 'a Buffer')
  })

t.test('checks every field before returning, so a refused field never leaves a partial frame', async (t) => {
  // The data is valid and comes last on the wire; the bad retry must still win.
  t.throws(() => encode({ comment: 'c', event: 'e', retry: -1, data: 'ok' }), { code: 'SSE_ERR_INVALID_RETRY' })
  t.throws(() => encode({ data: 'ok', id: 'a\nb' }), { code: 'SSE_ERR_INVALID_FIELD' })
})
