// The LLM relay's metrics: time to first token, tokens per second, upstream errors by code. A
// pass-through around `streamChat` that reports on lib/metrics/channels.ts; when nobody collects
// metrics it returns the stream itself, so it costs nothing.
import { llmEnd, llmToken, meterLlm } from '../../lib/metrics/channels.js'
import type { ChatEvent } from './llm.js'

export function metered (events: AsyncGenerator<ChatEvent>): AsyncGenerator<ChatEvent> {
  const meter = meterLlm()
  if (meter === undefined) return events
  return (async function * () {
    let error: unknown
    try {
      for await (const event of events) {
        if (event.type === 'token') llmToken(meter)
        else if (event.usage !== null && event.usage.completion_tokens > 0) meter.tokens = event.usage.completion_tokens
        yield event
      }
    } catch (err) {
      error = err
      throw err
    } finally {
      llmEnd(meter, error as { code?: unknown } | undefined)
    }
  })()
}
