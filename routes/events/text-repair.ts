// Upstream deltas are JSON strings, and some servers cut them between the two halves of a
// surrogate pair (an emoji split across two chunks: "\ud83c" then "\udf0a"). Each half alone is not
// text: the SSE encoder rightly refuses it, and it would end the stream. This joins the halves
// again, holding a trailing high surrogate back until its partner arrives; a half that never gets
// one becomes U+FFFD, as a UTF-8 decoder would make of it.

const HIGH_AT_END = /[\uD800-\uDBFF]$/

export class TextRepair {
  #held = ''

  /** The well-formed text ready to send for this delta ('' when there is none yet). */
  push (delta: unknown): string {
    if (typeof delta !== 'string' || delta === '') return ''
    let text = this.#held + delta
    this.#held = ''
    if (HIGH_AT_END.test(text)) {
      this.#held = text.slice(-1)
      text = text.slice(0, -1)
    }
    return text.toWellFormed()
  }

  /** Whatever was held back, once the stream is over. */
  end (): string {
    const rest = this.#held.toWellFormed()
    this.#held = ''
    return rest
  }
}
