// Which error text a client may see, for both places an error reaches one: the JSON body of an
// HTTP error (the demo service's error handler) and the `event: error` frame of a started stream.

export interface PublicError {
  statusCode: number
  code: string
  message: string
}

/**
 * What a client may see of `err`: its status, code and message when it is a 4xx or one of our
 * coded `SSE_ERR_*` errors (written for clients: they say what to fix or that an upstream is
 * down); for anything else a bare 500 with `SSE_ERR_INTERNAL`, since its text may hold internals
 * (paths, hosts, queries) that belong in the server log only. Never a stack.
 */
export function publicError (err: unknown): PublicError {
  const e = (err ?? {}) as { statusCode?: unknown, code?: unknown, message?: unknown }
  const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500
  const code = typeof e.code === 'string' ? e.code : undefined
  if (code?.startsWith('SSE_ERR_') === true || status < 500) {
    return { statusCode: status, code: code ?? 'SSE_ERR_REQUEST', message: String(e.message ?? err) }
  }
  return { statusCode: 500, code: 'SSE_ERR_INTERNAL', message: 'Internal Server Error' }
}
