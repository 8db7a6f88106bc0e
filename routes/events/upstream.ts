// Which client and model a request is answered with: the user's own `OpenAI` client, or one built
// from `{ baseURL, apiKey }` on the first request (a `baseURL` function is asked then, for a server
// that learns its own address only once it listens, as the demo service does); the model the
// request asked for if it is offered, else the configured one, else the first the upstream lists.
import type OpenAI from 'openai'
import { createLlmClient, firstModel } from './llm.js'
import { SSE_ERR_MODEL_NOT_ALLOWED } from './errors.js'

/** What the route builds a client from when it is not given one. */
export interface OpenAIConfig {
  /** The OpenAI-compatible server's `/v1` URL; a function is called once, at the first request. */
  baseURL: string | (() => string)
  /** Sent as `Authorization: Bearer …`; local servers need none. */
  apiKey?: string
  /** SDK retries before the first byte. @default 0 (a 429 is passed on rather than sat out) */
  maxRetries?: number
}

export interface Upstream {
  client: OpenAI
  model: string
  /** For masking in error messages and logs. */
  apiKey: string | undefined
}

export interface UpstreamChoice {
  openai: OpenAI | OpenAIConfig
  /** The default model; unset: the first the upstream lists. */
  model?: string
  /** Further models a request may name; `'*'`: any. */
  models: readonly string[] | '*'
}

/** Resolves the upstream for one request; `model` is the request's `model` parameter, if any. */
export type UpstreamResolver = (signal: AbortSignal, model?: string) => Promise<Upstream>

/** True for an `OpenAI` client (any copy of the package), as opposed to a config to build one. */
export function isClient (value: unknown): value is OpenAI {
  return typeof (value as OpenAI | undefined)?.chat?.completions?.create === 'function'
}

/** Throws SSE_ERR_MODEL_NOT_ALLOWED unless a request may ask for `model`. */
export function checkModel (choice: UpstreamChoice, model: string | undefined): void {
  if (model === undefined || model === choice.model || choice.models === '*' || choice.models.includes(model)) return
  throw new SSE_ERR_MODEL_NOT_ALLOWED(model)
}

export function createUpstreamResolver (choice: UpstreamChoice): UpstreamResolver {
  const given = isClient(choice.openai) ? choice.openai : undefined
  const config = given === undefined ? choice.openai as OpenAIConfig : undefined
  // The key is what the upstream may echo back: the config's, or the one inside the user's client.
  const apiKey = config?.apiKey ?? given?.apiKey ?? undefined
  let client: Promise<OpenAI> | undefined = given === undefined ? undefined : Promise.resolve(given)
  let listed: Promise<string> | undefined

  return async (signal, model) => {
    checkModel(choice, model)
    client ??= createLlmClient({
      baseURL: typeof config!.baseURL === 'function' ? config!.baseURL() : config!.baseURL,
      apiKey: config!.apiKey,
      maxRetries: config!.maxRetries
    }).catch((err) => { client = undefined; throw err })
    const sdk = await client
    let chosen = model ?? choice.model
    if (chosen === undefined) {
      // Asked once and remembered; a failure is forgotten so the next request asks again.
      listed ??= firstModel(sdk, undefined, apiKey).catch((err) => { listed = undefined; throw err })
      chosen = await abortable(listed, signal)
    }
    return { client: sdk, model: chosen, apiKey }
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
