// The token stream pane: one fetch() per generation on GET /events?prompt=…, read as Server-Sent
// Events (sse-fetch.js). Not an EventSource: fetch sees a refusal's status and JSON body, so the
// reason is shown without asking the server a second time (which would run the model twice), and
// a server that cannot be reached is told apart from one that dropped the stream.
//
// Each default `message` event carries raw token text (newlines and leading spaces included), so it
// is appended as text, never parsed as HTML. The stream ends with `event: done` or `event: error`.
// A connection lost after a token is resumed with Last-Event-ID, a few times at most.
//
// Unlike the ticker and the logs, a generation is per tab (it is one request's answer) and takes a
// connection of its own. With the panes shared by all tabs (shared-stream.js), an HTTP/1.1 browser
// has four connections left for generations; an eighth tab's Generate waits in the browser's queue
// until an earlier answer ends (seconds), then streams. HTTP/2 lifts the limit (docs/deployment.md).
// The server also caps answers at once per client (EVENTS_MAX_PER_CLIENT, 429 before any model is
// asked): the page waits the `retry-after` it is given and tries again, saying so.
import { describeErrorEvent, readRefusal } from './live.js'
import { readEvents } from './sse-fetch.js'

const $ = (id) => document.getElementById(id)
// Reconnections to resume one answer before giving up on it.
const MAX_RESUMES = 3
// Refusals by this server's own limits (no model was asked), waited out rather than shown.
const WAIT_CODES = new Set(['SSE_ERR_TOO_MANY_GENERATIONS', 'SSE_ERR_RATE_LIMITED'])
const MAX_WAITS = 20
// How long to wait before resuming (the server's `retry:`, which it sets to 1 s for /events).
const RESUME_DELAY_MS = 1000

export function setupGenerate () {
  const form = $('prompt-form')
  const prompt = $('prompt')
  const stopButton = $('stop')
  const status = $('gen-status')
  const errorBox = $('gen-error')
  const answer = $('answer')
  const finish = $('finish')
  const stats = { ttft: $('ttft'), tokens: $('tokens'), tps: $('tps'), model: $('model-name') }

  // The generation in progress, if any.
  let run = null
  // Which model answers, from the server's page-config.json, shown before the first answer.
  let configured = {}
  void fetch('page-config.json', { cache: 'no-store' })
    .then((res) => res.ok ? res.json() : {})
    .then((info) => {
      configured = info
      if (run === null && stats.model.textContent === '–') showModel(stats.model, configured)
    })
    .catch(() => {})

  function setState (state, text) {
    answer.dataset.state = state
    answer.setAttribute('aria-busy', String(state === 'waiting' || state === 'streaming'))
    status.textContent = text
    const busy = state === 'waiting' || state === 'streaming'
    stopButton.disabled = !busy
  }
  function showError (text) {
    errorBox.hidden = text === ''
    errorBox.textContent = text
  }

  function renderStats () {
    if (run === null) return
    run.frame = 0
    if (run.stick) answer.scrollTop = answer.scrollHeight
    const { startedAt, firstAt, lastAt, count } = run
    stats.ttft.textContent = firstAt === undefined ? '–' : formatMs(firstAt - startedAt)
    stats.tokens.textContent = String(count)
    // The decode rate: tokens after the first over the time they took, so TTFT does not dilute it.
    stats.tps.textContent = count >= 2 && lastAt > firstAt
      ? ((count - 1) / ((lastAt - firstAt) / 1000)).toFixed(1)
      : '–'
  }
  function scheduleStats () {
    // At thousands of tokens a second, update the numbers and the scroll position once per
    // frame, not once per token. Follow the growing answer unless the reader scrolled up.
    if (run === null || run.frame !== 0) return
    run.stick = answer.scrollHeight - answer.scrollTop - answer.clientHeight < 48
    run.frame = requestAnimationFrame(renderStats)
  }

  function end (state, text) {
    if (run === null) return
    run.ctrl.abort()
    cancelAnimationFrame(run.frame)
    renderStats()
    run = null
    setState(state, text)
  }

  function start () {
    const text = prompt.value
    if (text.trim() === '') {
      showError('Type a prompt first.')
      prompt.focus()
      return
    }
    if (run !== null) {
      stopGeneration(run.generation)
      end('stopped', 'Restarted.')
    }

    const params = new URLSearchParams({ prompt: text })
    for (const [id, name] of [['system', 'system'], ['max-tokens', 'max_tokens'], ['temperature', 'temperature'], ['model', 'model']]) {
      const value = $(id).value.trim()
      if (value !== '') params.set(name, value)
    }

    answer.textContent = ''
    const textNode = document.createTextNode('')
    answer.append(textNode)
    finish.hidden = true
    finish.textContent = ''
    showModel(stats.model, configured)
    showError('')

    const current = { ctrl: new AbortController(), startedAt: performance.now(), firstAt: undefined, lastAt: 0, count: 0, frame: 0, stick: true, seq: -Infinity, drops: 0, waits: 0, generation: undefined, lastId: '', textNode }
    run = current
    renderStats()
    setState('waiting', 'Waiting for the first token…')
    void follow(current, `events?${params}`)
  }

  /** Reads the generation, resuming after a lost connection; ends it in every case. */
  async function follow (current, url) {
    const live = () => run === current
    for (;;) {
      let res
      try {
        const headers = { accept: 'text/event-stream' }
        if (current.lastId !== '') headers['last-event-id'] = current.lastId
        res = await fetch(url, { headers, cache: 'no-store', signal: current.ctrl.signal })
      } catch {
        if (!live()) return
        if (current.drops === 0) {
          end('failed', 'Failed.')
          showError('Cannot reach the server: is it running? Nothing was generated.')
          return
        }
        // Resuming, and the server is unreachable: try again, a few times.
      }
      if (res !== undefined) {
        if (!live()) return
        const type = res.headers.get('content-type') ?? ''
        if (res.status === 204) {
          // A resume the server could not serve (finished, expired, or not resumable there).
          end('failed', 'Failed.')
          showError(`The connection to the server was lost after ${current.count} tokens and the answer could not be resumed; the answer above is incomplete.`)
          return
        }
        if (!res.ok || !type.startsWith('text/event-stream')) {
          // Read before end(): it aborts the request, body included.
          const refusal = await readRefusal(res)
          if (!live()) return
          // This server's own limits refuse before any model is asked, so trying again later
          // cannot run the prompt twice: wait as told (other tabs' answers free the slots).
          if (WAIT_CODES.has(refusal.code) && current.waits < MAX_WAITS) {
            current.waits++
            const waitS = Math.min(refusal.waitS ?? 5, 60)
            setState('waiting', `Waiting for a free slot (${refusal.message}); trying again in ${waitS} s…`)
            await new Promise((resolve) => setTimeout(resolve, waitS * 1000))
            if (!live()) return
            setState('waiting', 'Waiting for the first token…')
            continue
          }
          end('failed', 'Failed.')
          showError(refusal.text)
          return
        }
        if (current.drops > 0) setState('streaming', `Reconnected — resumed at token ${current.seq}`)
        try {
          for await (const ev of readEvents(res)) {
            if (!live()) return
            if (ev.type === 'message') onToken(current, ev)
            else if (ev.type === 'done') return onDone(current, ev)
            else if (ev.type === 'error') {
              showError(describeErrorEvent(ev.data))
              end('failed', 'Failed.')
              return
            }
          }
        } catch {}
        if (!live()) return
      }
      // Lost. Before any token there is no id to resume from, and asking again would run the
      // prompt a second time: stop instead. After one, resume a few times.
      const received = current.count
      if (received === 0 || current.drops >= MAX_RESUMES) {
        end('failed', 'Failed.')
        showError(received === 0
          ? 'The connection to the server was lost before the first token.'
          : `The connection to the server was lost after ${received} tokens; the answer above is incomplete.`)
        return
      }
      current.drops++
      setState('streaming', `Connection lost after ${received} tokens; reconnecting to resume…`)
      await new Promise((resolve) => setTimeout(resolve, RESUME_DELAY_MS))
      if (!live()) return
    }
  }

  function onToken (current, ev) {
    // Ids are `<generation>:<seq>`. After a resumed connection the server replays from our
    // Last-Event-ID; anything at or before the last seq shown is skipped, never shown twice.
    current.lastId = ev.id
    const colon = ev.id.lastIndexOf(':')
    const seq = Number(ev.id.slice(colon + 1))
    if (colon !== -1 && Number.isInteger(seq)) {
      if (seq <= current.seq) return
      current.seq = seq
      current.generation = ev.id.slice(0, colon)
    }
    const now = performance.now()
    if (current.count === 0) {
      current.firstAt = now
      setState('streaming', 'Streaming…')
    }
    current.count++
    current.lastAt = now
    scheduleStats()
    current.textNode.appendData(ev.data)
  }

  function onDone (current, ev) {
    const info = parseJson(ev.data) ?? {}
    showModel(stats.model, info)
    finish.textContent = describeFinish(info)
    finish.hidden = finish.textContent === ''
    end('done', `Done: ${current.count} token${current.count === 1 ? '' : 's'}.`)
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault()
    start()
  })
  stopButton.addEventListener('click', () => {
    if (run !== null) {
      stopGeneration(run.generation)
      end('stopped', `Stopped after ${run.count} token${run.count === 1 ? '' : 's'}.`)
    }
    prompt.focus()
  })
  // Leaving the page is a stop too, not a dropped connection to come back to.
  addEventListener('pagehide', () => { if (run !== null) stopGeneration(run.generation) })

  const mac = /Mac|iPhone|iPad/.test(navigator.platform)
  for (const kbd of document.querySelectorAll('kbd[data-mod]')) kbd.textContent = mac ? '⌘' : 'Ctrl'
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault()
      form.requestSubmit()
    }
  })
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && run !== null) stopButton.click()
  })
}

/**
 * Tells the server to stop a generation now. Closing the stream alone is a disconnect: where
 * the server keeps answers resumable, the generation (and the upstream request) runs on for a
 * grace period so a dropped client can come back. Without resuming the close already stops it,
 * and the route answers 404, which is harmless. A beacon, so it is also sent while the page
 * unloads. Before the first token the generation's id is not known; the close is all we can do.
 */
function stopGeneration (generation) {
  if (generation === undefined || generation === '') return
  const url = `events/${encodeURIComponent(generation)}/stop`
  if (!navigator.sendBeacon(url)) void fetch(url, { method: 'POST', keepalive: true }).catch(() => {})
}

function parseJson (text) {
  try { return JSON.parse(text) } catch { return undefined }
}

/** The model's name, and a badge when it is the built-in demo model (known before any answer). */
function showModel (el, info) {
  el.textContent = ''
  const name = typeof info.model === 'string' && info.model !== '' ? info.model : undefined
  if (name === undefined && info.demo !== true) {
    el.textContent = '–'
    return
  }
  if (name !== undefined) el.append(name)
  if (info.demo === true) {
    const badge = document.createElement('span')
    badge.className = 'badge'
    badge.textContent = 'built-in demo model'
    badge.title = 'No LLM server is configured; set LLM_BASE_URL to use a real model.'
    el.append(name === undefined ? '' : ' ', badge)
  }
}

function describeFinish (info) {
  const parts = []
  const reasons = {
    stop: 'the model finished',
    length: 'the token limit was reached',
    content_filter: 'the content filter stopped it',
    stopped: 'it was stopped'
  }
  if (typeof info.finish_reason === 'string') parts.push(`Ended because ${reasons[info.finish_reason] ?? info.finish_reason}.`)
  const u = info.usage
  if (u && typeof u === 'object' && typeof u.completion_tokens === 'number') {
    parts.push(`Usage: ${u.prompt_tokens ?? '?'} prompt + ${u.completion_tokens} completion tokens.`)
  }
  return parts.join(' ')
}

function formatMs (ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`
}
