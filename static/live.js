// A long-lived stream (ticker, logs) with its connection state shown in words. It is a
// shared-stream.js stream: every tab of this page shares one connection per URL (a browser allows
// only six per origin on HTTP/1.1), and a hidden tab gives its share back until it is shown.
//
// The browser reconnects by itself after a network error or a normal end of stream, sending
// Last-Event-ID, and the server's hub replays what was missed. It gives up for good only when the
// server answers with a non-200 status or another content type (WHATWG HTML §9.2.3, "fail the
// connection"); EventSource cannot read that response, so we fetch the same URL once to learn why
// (safe for these routes: reading a broadcast starts nothing on the server),
// then try again later with a growing delay (except for 4xx: retrying a bad request cannot help).

import { openSharedStream, SharedStream } from './shared-stream.js'

const RETRY_MIN_MS = 2000
const RETRY_MAX_MS = 30000

/**
 * @param {object} opts
 * @param {() => string} opts.url          the stream URL, read at each (re)connection
 * @param {Record<string, (e: MessageEvent) => void>} opts.on  handlers per event type
 * @param {HTMLElement} opts.conn          shows "live", "reconnecting…"…; its data-state is styled
 * @param {HTMLElement} opts.error         shows why the stream is down
 * @param {(n: number) => void} [opts.onReconnect]  called with the count after each reconnect
 * @param {Record<number, string>} [opts.explainStatus]  words to show for a refusal status
 * @returns {{ restart: () => void, close: () => void }}
 */
export function watch ({ url, on, conn, error, onReconnect, explainStatus = {} }) {
  let es = null
  let opens = 0
  let retryTimer = 0
  let retryMs = RETRY_MIN_MS

  function show (state, text) {
    conn.dataset.state = state
    conn.textContent = text
  }
  function showError (text) {
    error.hidden = text === ''
    error.textContent = text
  }

  function connect () {
    clearTimeout(retryTimer)
    es?.close()
    opens = 0
    show('connecting', 'connecting…')
    const source = openSharedStream(url(), { events: Object.keys(on).filter((type) => type !== 'error' && type !== 'message') })
    es = source
    source.addEventListener('open', () => {
      if (es !== source) return
      opens++
      retryMs = RETRY_MIN_MS
      show('live', 'live')
      showError('')
      if (opens > 1) onReconnect?.(opens - 1)
    })
    for (const [type, handler] of Object.entries(on)) {
      if (type !== 'error') source.addEventListener(type, (e) => { if (es === source) handler(e) })
    }
    // `error` is both the connection's error and a server `event: error` frame (a MessageEvent).
    source.addEventListener('error', (e) => {
      if (es !== source) return
      if (e instanceof MessageEvent) {
        showError(describeErrorEvent(e.data))
        on.error?.(e)
        return
      }
      if (source.readyState === SharedStream.CONNECTING) {
        show('reconnecting', 'reconnecting…')
        return
      }
      show('down', 'disconnected')
      void explain(source.url).then(({ text, retry, status, waitMs }) => {
        if (es !== source) return
        const words = explainStatus[status] ?? text
        if (!retry) {
          showError(words)
          return
        }
        const delay = Math.max(retryMs, waitMs ?? 0)
        showError(`${words} Trying again in ${Math.round(delay / 1000)} s.`)
        retryTimer = setTimeout(connect, delay)
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS)
      })
    })
  }

  connect()
  return {
    restart: connect,
    close () {
      clearTimeout(retryTimer)
      es?.close()
      es = null
      show('down', 'closed')
    }
  }
}

/** The words for a server `event: error` frame: `{ code, message }`, or whatever text it sent. */
export function describeErrorEvent (data) {
  try {
    const body = JSON.parse(data)
    if (body && typeof body.message === 'string') {
      return body.code ? `${body.message} (${body.code})` : body.message
    }
  } catch {}
  return `The server reported an error: ${data}`
}

/**
 * Asks the server again, with fetch, why it refused an event stream: EventSource sees only that
 * it failed. Resolves to the words to show and whether retrying later could help. If the second
 * request is accepted, it is cancelled at once.
 */
export async function explain (url, what = 'stream') {
  const ctrl = new AbortController()
  try {
    const res = await fetch(url, { headers: { accept: 'application/json' }, signal: ctrl.signal, cache: 'no-store' })
    const type = res.headers.get('content-type') ?? ''
    if (res.ok && type.startsWith('text/event-stream')) {
      ctrl.abort()
      return { text: 'The stream was interrupted.', retry: true }
    }
    const refusal = await readRefusal(res, what)
    return {
      text: refusal.text,
      retry: res.status >= 500 || res.status === 429,
      status: res.status,
      waitMs: refusal.waitS === undefined ? undefined : Math.min(refusal.waitS * 1000, 10 * RETRY_MAX_MS)
    }
  } catch {
    return { text: 'The server cannot be reached.', retry: true }
  }
}

/**
 * Why the server refused a request, from the response itself: its JSON `{ code, message }`, the
 * status, and `retry-after` in seconds (the HTTP-date form is not used by this server).
 */
export async function readRefusal (res, what = 'request') {
  let body = null
  if ((res.headers.get('content-type') ?? '').includes('json')) body = await res.json().catch(() => null)
  else res.body?.cancel().catch(() => {})
  const message = body && typeof body.message === 'string' ? body.message : ''
  const code = body && typeof body.code === 'string' ? body.code : undefined
  let detail = message === '' ? '' : code ? `${message} (${code})` : message
  if (detail === '') detail = res.status === 404 ? 'This route is not available on the server.' : (res.statusText || 'no details')
  const wait = Number(res.headers.get('retry-after'))
  const waitS = Number.isFinite(wait) && wait > 0 ? wait : undefined
  const after = waitS ? ` The server asks to wait ${waitS} s.` : ''
  return { code, message, waitS, text: `The server refused the ${what} (HTTP ${res.status}): ${detail}${after}` }
}
