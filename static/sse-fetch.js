// Server-Sent Events over fetch(), for the one stream the page must see the response of: unlike
// EventSource, fetch shows the status and the JSON body of a refusal, so the page learns why a
// generation was refused from the same request (asking again would run the model twice).
// The parser follows WHATWG HTML §9.2.6: CR, LF and CRLF end lines, one leading BOM is dropped,
// `:` starts a comment, an event is dispatched on a blank line, `id` with NUL is ignored.

/**
 * Yields `{ type, data, id }` for each event of `response.body` as it arrives; `id` is the last
 * event id after this event (as EventSource's `lastEventId`). Ends when the body ends; throws
 * what the body's reader throws (a network error, or the abort).
 * @param {Response} response
 */
export async function * readEvents (response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  let first = true
  let data = []
  let type = ''
  let lastId = ''
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      buffer += value
      if (first && buffer.length > 0) {
        if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1)
        first = false
      }
      const events = []
      // A lone CR at the very end may be the first half of a CRLF: keep it for the next chunk.
      for (let m; (m = /\r\n|\r(?!$)|\n/.exec(buffer)) !== null;) {
        const line = buffer.slice(0, m.index)
        buffer = buffer.slice(m.index + m[0].length)
        if (line === '') {
          if (data.length > 0) events.push({ type: type || 'message', data: data.join('\n'), id: lastId })
          data = []
          type = ''
          continue
        }
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        let value = colon === -1 ? '' : line.slice(colon + 1)
        if (value.startsWith(' ')) value = value.slice(1)
        if (field === 'data') data.push(value)
        else if (field === 'event') type = value
        else if (field === 'id' && !value.includes('\0')) lastId = value
      }
      for (const ev of events) yield ev
    }
  } finally {
    reader.cancel().catch(() => {})
  }
}
