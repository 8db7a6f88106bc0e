// Swagger UI's "Try it out" for text/event-stream operations, served with the UI (service/app.ts
// passes this file as a theme script and installs `sseTryItOut` as the UI's requestInterceptor).
// Swagger UI's Execute reads the whole body before showing it: fine for JSON, useless for a stream
// that ends after the answer (/events) or never (/ticker). For a request that accepts
// text/event-stream this gives swagger-client its own fetch (its `userFetch` hook): the body is
// split in two, one half parsed here and shown event by event in a panel under the operation, the
// other handed to Swagger UI, which shows it whole as usual once the stream ends or is stopped.
// A classic script (theme scripts are), with no inline code, so it runs under a strict CSP.
;(function () {
  'use strict'

  /** The page's parser (static/sse-fetch.js, WHATWG rules), loaded once, on the first stream. */
  let parser
  const loadParser = () => (parser ??= import('/sse-fetch.js'))

  window.sseTryItOut = function sseTryItOut (request) {
    const headers = request.headers ?? {}
    const accept = headers.Accept ?? headers.accept ?? ''
    if (/text\/event-stream/i.test(accept)) request.userFetch = streamingFetch
    return request
  }

  async function streamingFetch (url, init) {
    const { readEvents } = await loadParser()
    const panel = openPanel(url, init.method)
    const ctrl = new AbortController()
    let response
    try {
      response = await fetch(url, { ...init, signal: ctrl.signal })
    } catch (err) {
      panel.end('Could not connect: ' + err.message)
      throw err
    }
    const type = response.headers.get('content-type') ?? ''
    if (!response.ok || !type.startsWith('text/event-stream') || response.body === null) {
      panel.end(`Not a stream (${response.status}): the response is shown below.`)
      return response
    }
    const [mine, theirs] = response.body.tee()
    let lastId = ''
    panel.onStop(() => {
      ctrl.abort()
      stopGeneration(url, init.method, lastId)
    })
    void (async () => {
      try {
        for await (const ev of readEvents(new Response(mine))) {
          lastId = ev.id
          panel.add(ev)
        }
        panel.end('The stream ended.')
      } catch {
        panel.end(ctrl.signal.aborted ? 'Stopped.' : 'The connection was lost.')
      }
    })()
    // Swagger UI gets what arrived so far when the stream is stopped or lost, not an error.
    return new Response(closeOnError(theirs), { status: response.status, statusText: response.statusText, headers: response.headers })
  }

  function closeOnError (body) {
    const reader = body.getReader()
    return new ReadableStream({
      async pull (controller) {
        try {
          const { done, value } = await reader.read()
          if (done) controller.close()
          else controller.enqueue(value)
        } catch {
          controller.close()
        }
      },
      cancel (reason) { return reader.cancel(reason) }
    })
  }

  /**
   * Closing the stream alone is a disconnect, which a resumable generation survives for its grace
   * period; Stop means stop. Ids of the form `<generation>:<seq>` name the generation, stopped as
   * the demo page does, with POST <stream path>/<generation>/stop. Other streams need nothing.
   */
  function stopGeneration (url, method, lastId) {
    const colon = lastId.indexOf(':')
    if (colon <= 0 || !/^[A-Za-z0-9_-]+$/.test(lastId.slice(0, colon))) return
    const stream = new URL(url, location.href)
    const stop = new URL(`${stream.pathname.replace(/\/$/, '')}/${encodeURIComponent(lastId.slice(0, colon))}/stop`, stream)
    void fetch(stop, { method: 'POST', keepalive: true }).catch(() => {})
  }

  /** The open operation block this request came from: same method, path matching its template. */
  function findOperation (url, method) {
    const path = new URL(url, location.href).pathname
    const blocks = document.querySelectorAll(`.opblock.opblock-${String(method).toLowerCase()}.is-open`)
    for (const block of blocks) {
      const template = block.querySelector('.opblock-summary-path')?.dataset.path
      if (template === undefined) continue
      const pattern = new RegExp('^(?:.*)?' + template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+') + '$')
      if (pattern.test(path)) return block
    }
    return undefined
  }

  function el (tag, className, text) {
    const node = document.createElement(tag)
    if (className) node.className = className
    if (text !== undefined) node.textContent = text
    return node
  }

  /** A panel above the operation's responses, replacing the one of a previous run. */
  function openPanel (url, method) {
    const block = findOperation(url, method)
    const host = block?.querySelector('.opblock-body') ?? document.body
    // Execute is disabled while a run streams: a previous panel here has ended.
    host.querySelector(':scope > .sse-live')?.remove()
    const panel = el('section', 'sse-live')
    panel.setAttribute('aria-live', 'polite')
    const head = el('div', 'sse-live-head')
    const title = el('h4', 'sse-live-title', 'Live events')
    const status = el('span', 'sse-live-status', 'Connecting…')
    const stop = el('button', 'btn sse-live-stop', 'Stop')
    stop.type = 'button'
    head.append(title, status, stop)
    const list = el('ol', 'sse-live-events')
    panel.append(head, list)
    const responses = host.querySelector(':scope > .responses-wrapper')
    if (responses !== null) host.insertBefore(panel, responses)
    else host.append(panel)

    let count = 0
    let ended = false
    return {
      add (ev) {
        count++
        const item = el('li', 'sse-live-event')
        item.dataset.event = ev.type
        item.append(el('code', 'sse-live-name', ev.type))
        if (ev.id !== '') item.append(el('span', 'sse-live-id', `id ${ev.id}`))
        item.append(el('pre', 'sse-live-data', ev.data))
        list.append(item)
        status.textContent = `${count} event${count === 1 ? '' : 's'}, streaming…`
      },
      end (why) {
        if (ended) return
        ended = true
        stop.disabled = true
        status.textContent = `${count} event${count === 1 ? '' : 's'}. ${why}`
        panel.dataset.state = 'ended'
      },
      onStop (fn) {
        panel.dataset.state = 'live'
        status.textContent = 'Open, waiting for events…'
        stop.addEventListener('click', fn, { once: true })
      }
    }
  }

  // Leaving the page is a stop too (stopGeneration's fetch is keepalive, so it outlives the page).
  addEventListener('pagehide', () => {
    for (const button of document.querySelectorAll('.sse-live-stop:enabled')) button.click()
  })

  // Styles as a stylesheet object, not an inline <style> or style attribute, for the same CSP.
  const sheet = new CSSStyleSheet()
  sheet.replaceSync(`
    .sse-live { margin: 0 20px 20px; padding: 10px; border: 1px solid #49cc90; border-radius: 4px; background: #fff; }
    .sse-live-head { display: flex; gap: 1em; align-items: center; }
    .sse-live-title { margin: 0; font-family: sans-serif; }
    .sse-live-status { flex: 1; font-family: sans-serif; font-size: 12px; }
    .sse-live-events { max-height: 320px; overflow: auto; margin: 8px 0 0; padding-left: 2.5em; font-size: 12px; }
    .sse-live-event { margin: 2px 0; }
    .sse-live-name { font-weight: bold; margin-right: 1em; }
    .sse-live-id { color: #666; font-family: monospace; }
    .sse-live-data { margin: 2px 0 0; padding: 4px; white-space: pre-wrap; word-break: break-all; background: #f6f6f6; color: #333; }
  `)
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet]
})()
