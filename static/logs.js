// The logs pane: GET /logs?level=…, the server's own pino records as `event: log` (one JSON
// record each), and `event: gap` when this reader fell behind and records were dropped for it.
// Newest first, capped, so an hour-old tab stays as light as a fresh one.
import { watch } from './live.js'

const $ = (id) => document.getElementById(id)
const MAX_LINES = 200
const LEVELS = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }
const clock = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3, hour12: false
})

export function setupLogs () {
  const list = $('log-lines')
  const level = $('log-level')
  const pause = $('logs-pause')
  let paused = false
  // Lines that arrived while paused, shown on resume (at most MAX_LINES of them).
  let held = []

  function add (li) {
    if (paused) {
      held.push(li)
      if (held.length > MAX_LINES) held = held.slice(-MAX_LINES)
      return
    }
    list.prepend(li)
    while (list.childElementCount > MAX_LINES) list.lastElementChild.remove()
  }

  const stream = watch({
    url: () => {
      const params = new URLSearchParams({ level: level.value })
      // EventSource cannot send an Authorization header: a LOGS_TOKEN travels as ?token=, taken
      // from this page's own address (`/?token=…`); the server redacts it from its logs.
      const token = new URLSearchParams(location.search).get('token')
      if (token) params.set('token', token)
      return `logs?${params}`
    },
    explainStatus: {
      401: 'The logs stream is protected by LOGS_TOKEN: open this page as /?token=<LOGS_TOKEN> to watch it.'
    },
    conn: $('logs-conn'),
    error: $('logs-error'),
    on: {
      log (e) {
        const record = parse(e.data)
        if (record !== undefined) add(renderRecord(record))
      },
      gap (e) {
        const data = parse(e.data)
        const n = typeof data === 'number' ? data : data?.missed ?? data?.count ?? data?.dropped
        const li = document.createElement('li')
        li.className = 'gap'
        li.textContent = typeof n === 'number'
          ? `${n} record${n === 1 ? '' : 's'} skipped: this page fell behind the server`
          : 'Some records were skipped: this page fell behind the server'
        add(li)
      },
      reset () {
        const li = document.createElement('li')
        li.className = 'gap'
        li.textContent = 'The server restarted or its history moved on; continuing from now'
        add(li)
      }
    }
  })

  level.addEventListener('change', () => stream.restart())
  pause.addEventListener('click', () => {
    paused = !paused
    pause.setAttribute('aria-pressed', String(paused))
    pause.textContent = paused ? 'Resume' : 'Pause'
    if (!paused) {
      const lines = held
      held = []
      for (const li of lines) add(li)
    }
  })
  $('logs-clear').addEventListener('click', () => {
    list.textContent = ''
    held = []
  })
}

/** One pino record as a list item; every value from the server is set as text. */
function renderRecord (r) {
  const li = document.createElement('li')
  const name = typeof r.level === 'number' ? LEVELS[r.level] ?? String(r.level) : String(r.level ?? 'info')
  li.className = `log lvl-${name}`

  const time = document.createElement('time')
  const when = new Date(r.time ?? Date.now())
  if (!Number.isNaN(when.getTime())) {
    time.dateTime = when.toISOString()
    time.textContent = clock.format(when)
  }
  const lvl = document.createElement('span')
  lvl.className = 'lvl'
  lvl.textContent = name.toUpperCase()
  const msg = document.createElement('span')
  msg.className = 'msg'
  msg.textContent = typeof r.msg === 'string' ? r.msg : ''
  li.append(time, ' ', lvl, ' ', msg)

  const detail = describe(r)
  if (detail !== '') {
    const d = document.createElement('span')
    d.className = 'detail'
    d.textContent = detail
    li.append(' ', d)
  }
  if (r.reqId !== undefined) {
    const id = document.createElement('span')
    id.className = 'reqid'
    id.textContent = String(r.reqId)
    id.title = 'request id'
    li.append(' ', id)
  }
  li.title = JSON.stringify(r)
  return li
}

function describe (r) {
  const parts = []
  if (r.req && typeof r.req === 'object') parts.push(`${r.req.method ?? ''} ${r.req.url ?? ''}`.trim())
  if (r.res && typeof r.res === 'object' && r.res.statusCode !== undefined) {
    const took = typeof r.responseTime === 'number' ? ` in ${r.responseTime.toFixed(1)} ms` : ''
    parts.push(`${r.res.statusCode}${took}`)
  }
  if (r.err && typeof r.err === 'object' && typeof r.err.message === 'string') parts.push(r.err.message)
  return parts.join(' · ')
}

function parse (text) {
  try { return JSON.parse(text) } catch { return undefined }
}
