// The token stream pane: one EventSource per generation on GET /events?prompt=…
//
// Each default `message` event carries raw token text (newlines and leading spaces included), so it
// is appended as text, never parsed as HTML. The stream ends with `event: done` or `event: error`;
// we close the EventSource on both, or the browser would reconnect and run the prompt again.
import { describeErrorEvent, explain } from './live.js'

const $ = (id) => document.getElementById(id)
// Reconnections to resume one answer before giving up on it.
const MAX_RESUMES = 3

export function setupGenerate () {
  const form = $('prompt-form')
  const prompt = $('prompt')
  const stopButton = $('stop')
  const status = $('gen-status')
  const errorBox = $('gen-error')
  const answer = $('answer')
  const finish = $('finish')
  const stats = { ttft: $('ttft'), tokens: $('tokens'), tps: $('tps'), model: $('model-name') }

  // The generation in progress, if any, and the last one started (whose messages may still show).
  let run = null
  let shown = null

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
    run.es.close()
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
    stats.model.textContent = '–'
    showError('')

    const es = new EventSource(`events?${params}`)
    const current = { es, startedAt: performance.now(), firstAt: undefined, lastAt: 0, count: 0, frame: 0, stick: true, seq: -Infinity, drops: 0, generation: undefined }
    shown = current
    run = current
    renderStats()
    setState('waiting', 'Waiting for the first token…')

    es.addEventListener('message', (e) => {
      if (run !== current) return
      // Ids are `<generation>:<seq>`. After a resumed connection the server replays from our
      // Last-Event-ID; anything at or before the last seq shown is skipped, never shown twice.
      const seq = Number(e.lastEventId.slice(e.lastEventId.lastIndexOf(':') + 1))
      if (Number.isInteger(seq) && e.lastEventId !== '') {
        if (seq <= current.seq) return
        current.seq = seq
        current.generation = e.lastEventId.slice(0, e.lastEventId.lastIndexOf(':'))
      }
      const now = performance.now()
      if (current.count === 0) {
        current.firstAt = now
        setState('streaming', 'Streaming…')
      }
      current.count++
      current.lastAt = now
      scheduleStats()
      textNode.appendData(e.data)
    })

    es.addEventListener('open', () => {
      if (run !== current || current.drops === 0) return
      setState('streaming', `Reconnected — resumed at token ${current.seq}`)
    })

    es.addEventListener('done', (e) => {
      if (run !== current) return
      const info = parseJson(e.data) ?? {}
      showModel(stats.model, info)
      finish.textContent = describeFinish(info)
      finish.hidden = finish.textContent === ''
      end('done', `Done: ${current.count} token${current.count === 1 ? '' : 's'}.`)
    })

    // `error` is both a server `event: error` frame (a MessageEvent with { code, message }) and
    // the connection's own failure (a plain Event).
    es.addEventListener('error', (e) => {
      if (run !== current) return
      if (e instanceof MessageEvent) {
        showError(describeErrorEvent(e.data))
        end('failed', 'Failed.')
        return
      }
      const received = current.count
      if (es.readyState === EventSource.CONNECTING) {
        // The browser is about to reconnect, sending the last id it saw. Once a token has
        // arrived the server knows this generation by that id: it resumes it, or answers 204,
        // which closes the EventSource. Before any token there is no id, and a reconnect would
        // run the prompt a second time, so stop instead; and give up after a few tries.
        if (received > 0 && current.drops < MAX_RESUMES) {
          current.drops++
          setState('streaming', `Connection lost after ${received} tokens; reconnecting to resume…`)
          return
        }
        end('failed', 'Failed.')
        showError(received === 0
          ? 'The connection to the server was lost before the first token.'
          : `The connection to the server was lost after ${received} tokens; the answer above is incomplete.`)
        return
      }
      end('failed', 'Failed.')
      if (received > 0) {
        // CLOSED after tokens: a reconnect the server could not resume (204 or an error status).
        showError(`The connection to the server was lost after ${received} tokens and the answer could not be resumed; the answer above is incomplete.`)
        return
      }
      showError('The server refused the request…')
      void explain(es.url, 'request').then(({ text }) => { if (shown === current) showError(text) })
    })
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
 * Tells the server to stop a generation now. Closing the EventSource alone is a disconnect: where
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

function showModel (el, info) {
  el.textContent = ''
  const name = typeof info.model === 'string' && info.model !== '' ? info.model : 'unknown'
  el.append(name)
  if (info.demo === true) {
    const badge = document.createElement('span')
    badge.className = 'badge'
    badge.textContent = 'built-in demo model'
    badge.title = 'No LLM server is configured; set LLM_BASE_URL to use a real model.'
    el.append(' ', badge)
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
