// Which LLM `/events` talks to, decided on the first request: the configured upstream, or the
// built-in demo model at this server's own address (only known once it listens, hence lazily).
import type OpenAI from 'openai'
import { DEMO_MODEL, type LlmConfig } from '../../service/config.js'
import { createLlmClient, firstModel } from './llm.js'

export interface Upstream {
  client: OpenAI
  /** The model to ask for: the caller's choice, else LLM_MODEL, else the first the server lists. */
  model: string
  /** True when the built-in demo model answers. */
  demo: boolean
  /** For masking in error messages. */
  apiKey: string | undefined
}

/** Resolves the upstream for one request; `model` is the caller's `model` parameter, if any. */
export type UpstreamResolver = (signal: AbortSignal, model?: string) => Promise<Upstream>

/**
 * `selfBaseURL` gives this app's own `/v1` URL; it is called on the first request only when no
 * upstream is configured.
 */
export function createUpstreamResolver (llm: LlmConfig, selfBaseURL: () => string): UpstreamResolver {
  const demo = llm.baseURL === undefined
  let client: OpenAI | undefined
  let listed: Promise<string> | undefined

  return async (signal, model) => {
    client ??= createLlmClient({
      baseURL: llm.baseURL ?? selfBaseURL(),
      apiKey: llm.apiKey,
      maxRetries: llm.maxRetries
    })
    let chosen = model ?? llm.model ?? (demo ? DEMO_MODEL : undefined)
    if (chosen === undefined) {
      // Asked once and remembered; a failure is forgotten so the next request asks again.
      listed ??= firstModel(client, undefined, llm.apiKey).catch((err) => { listed = undefined; throw err })
      chosen = await abortable(listed, signal)
    }
    return { client, model: chosen, demo, apiKey: llm.apiKey }
  }
}

// The shared model lookup must not be cancelled by one client leaving, but that client must not
// wait for it either.
function abortable<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
