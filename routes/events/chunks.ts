// The chunks of a streamed chat completion, read from the HTTP response the `openai` SDK returns
// (`.asResponse()`): the SDK makes the request (URL, auth, headers, retries, HTTP errors as its
// error classes), and this reads the body. The SDK's own reader copies what is left of its buffer
// after every event it finds, so an upstream read of n events costs O(n²) bytes copied, and each
// event then takes several async-generator steps: 40 % of the relay's CPU per token (bench: relay).
// Here each read is decoded and parsed once (eventsource-parser) and its chunks are handed over
// synchronously.
//
// Kept from the SDK's reader: `data: [DONE]` ends the answer (the rest of the body is drained
// unparsed), an `{ "error": … }` chunk is the SDK's own APIError, a data line that is not JSON is a
// SyntaxError; llm-errors.ts maps all three as before.
import { createParser } from 'eventsource-parser'
import type { ChatCompletionChunk } from 'openai/resources/chat/completions'
import type { SdkErrors } from './llm-errors.js'

/** Called for each chunk; a promise it returns is awaited before the next read. */
export type OnChunk = (chunk: ChatCompletionChunk) => void | Promise<void>

/**
 * Reads `response`'s body to its end, calling `onChunk` for every chunk and `onRead` for every read
 * (the upstream is not silent). Resolves to the number of chunks.
 */
export async function readChunks (response: Response, sdk: SdkErrors, onChunk: OnChunk, onRead: () => void): Promise<number> {
  if (response.body === null) return 0
  let chunks = 0
  let done = false
  let failure: { err: unknown } | undefined
  let held: Promise<void> | undefined
  const parser = createParser({
    onEvent: ({ data }) => {
      if (done || failure !== undefined) return
      if (data.startsWith('[DONE]')) {
        done = true
        return
      }
      let chunk
      try {
        chunk = JSON.parse(data)
      } catch (err) {
        failure = { err }
        return
      }
      if (chunk?.error != null) {
        failure = { err: new sdk.APIError(undefined, chunk.error, undefined, response.headers) }
        return
      }
      chunks++
      const wait = onChunk(chunk as ChatCompletionChunk)
      if (wait !== undefined) held = wait
    }
  })
  const decoder = new TextDecoder()
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    onRead()
    if (done) continue
    parser.feed(decoder.decode(bytes, { stream: true }))
    if (failure !== undefined) throw failure.err
    if (held !== undefined) {
      const wait = held
      held = undefined
      await wait
    }
  }
  return chunks
}
