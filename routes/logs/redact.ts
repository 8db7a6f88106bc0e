// What must never be written to a log line (stdout or /logs): credentials, wherever they appear,
// and by default what users typed (prompts) and the ids that let one resume or stop a generation.
// Two layers: URLs are redacted in the request serializer (structured, exact), and every finished
// line is scrubbed for anything credential-shaped that was logged where no path foresaw it (an
// upstream's error message that echoes the API key, say).

export const CENSOR = '[redacted]'

// Query parameters whose values are credentials (`?api_key=…` is how some LLM servers take keys,
// `?token=` is how an EventSource passes LOGS_TOKEN).
const SECRET_NAMES = new Set(['api_key', 'api-key', 'apikey', 'token', 'access_token', 'access-token', 'key', 'password', 'secret'])
// What users typed into /events, and the resume cursor (it names a generation).
const PRIVATE_NAMES = new Set(['prompt', 'system', 'lasteventid'])
// Our generation ids in a path (`DELETE /events/<id>`): whoever reads them can stop the generation.
const GENERATION_IN_PATH = /\/[A-Za-z0-9_-]{22}(?=\/|$)/g

const SECRET_PARAM = /([?&](?:api[_-]?key|token|access[_-]?token|key|password|secret)=)[^&#\s"\\]*/gi
// A JSON property holding a credential, at any depth.
const SECRET_PROP = /("(?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[_-]?key|apiKey|access[_-]?token|token|password|secret)":)"(?:[^"\\]|\\.)*"/gi
const BEARER = /\b(Bearer\s+)[^\s"\\,]+/gi
const BASIC = /\b(Basic\s+)[A-Za-z0-9+/]{8,}=*/gi
// OpenAI-style keys (`sk-…`, `sk-proj-…`), also half-masked the way OpenAI echoes them (`sk-pr****abcd`).
const SK_KEY = /\bsk-[A-Za-z0-9_*-]{6,}/g

export interface UrlRedaction {
  /** Keep `prompt`, `system` and `lastEventId` values and generation ids in paths. @default false */
  includePrompts?: boolean
}

function decodeName (raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' ')).toLowerCase()
  } catch {
    return raw.toLowerCase()
  }
}

/**
 * A request URL fit for a log line: the values of credential parameters replaced, whatever the
 * percent-encoding of their names (`?%74oken=` is `?token=` to the server), and unless
 * `includePrompts`, the prompt parameters and generation ids too.
 */
export function redactUrl (url: string, opts: UrlRedaction = {}): string {
  const q = url.indexOf('?')
  let path = q === -1 ? url : url.slice(0, q)
  if (opts.includePrompts !== true) path = path.replace(GENERATION_IN_PATH, '/' + CENSOR)
  if (q === -1) return path
  const query = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    if (eq === -1) return pair
    const name = decodeName(pair.slice(0, eq))
    const hidden = SECRET_NAMES.has(name) || (opts.includePrompts !== true && PRIVATE_NAMES.has(name))
    return hidden ? pair.slice(0, eq + 1) + CENSOR : pair
  })
  return path + '?' + query.join('&')
}

/**
 * Text with every credential-shaped part replaced: the `secrets` given (the configured API key),
 * bearer and basic credentials, `sk-…` keys, credential query parameters and JSON properties.
 */
export function redactSecrets (text: string, secrets: readonly string[] = []): string {
  let out = text
  // Short "secrets" (a placeholder such as "x") would shred ordinary words: only real ones.
  for (const secret of secrets) if (secret.length >= 8) out = out.split(secret).join(CENSOR)
  return out
    .replace(SECRET_PROP, '$1"' + CENSOR + '"')
    .replace(BEARER, '$1' + CENSOR)
    .replace(BASIC, '$1' + CENSOR)
    .replace(SECRET_PARAM, '$1' + CENSOR)
    .replace(SK_KEY, CENSOR)
}
