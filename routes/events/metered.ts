// The LLM relay's metrics: time to first token, tokens per second, upstream errors by code. Wraps
// the sink `relayChat` hands its events to and reports on lib/metrics/channels.ts; when nobody
// collects metrics it returns the sink itself, so it costs nothing.
import { llmEnd, llmToken, meterLlm } from '../../lib/metrics/channels.js'
import type { ChatSink } from './llm.js'

export interface MeteredSink {
  sink: ChatSink
  /** The answer is over; `error` is what it failed with, if it did. */
  end: (error?: unknown) => void
}

const nothing = (): void => {}

export function metered (sink: ChatSink): MeteredSink {
  const meter = meterLlm()
  if (meter === undefined) return { sink, end: nothing }
  return {
    sink: (event) => {
      if (event.type === 'token') llmToken(meter)
      else if (event.usage !== null && event.usage.completion_tokens > 0) meter.tokens = event.usage.completion_tokens
      return sink(event)
    },
    end: (error) => llmEnd(meter, error as { code?: unknown } | undefined)
  }
}
