// The ticker pane: GET /ticker?symbols=…, an `event: snapshot` with the latest quote of each
// symbol, then `event: quote` frames { symbol, price, change, ts } from the server's hub. After a
// dropped connection the browser reconnects with Last-Event-ID and the hub replays what we missed.
import { watch } from './live.js'

const $ = (id) => document.getElementById(id)
const price = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 })
const change = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: 'exceptZero' })
const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })

/** The symbols shown; the page's URL may choose others: `/?symbols=AAPL,MSFT`. */
function symbols () {
  const fromPage = new URLSearchParams(location.search).get('symbols')
  return fromPage ?? ''
}

export function setupTicker () {
  const body = $('quotes')
  const lastId = $('ticker-last-id')
  const rows = new Map()

  function row (symbol) {
    let r = rows.get(symbol)
    if (r !== undefined) return r
    const tr = document.createElement('tr')
    tr.dataset.symbol = symbol
    const cells = ['symbol', 'price', 'change', 'time'].map((name) => {
      const cell = document.createElement(name === 'symbol' ? 'th' : 'td')
      if (name === 'symbol') cell.scope = 'row'
      cell.className = name
      tr.append(cell)
      return cell
    })
    cells[0].textContent = symbol
    r = { tr, price: cells[1], change: cells[2], time: cells[3], last: undefined }
    rows.set(symbol, r)
    body.append(tr)
    return r
  }

  function update (quote, flash) {
    if (!quote || typeof quote.symbol !== 'string') return
    const r = row(quote.symbol)
    const p = Number(quote.price)
    const c = Number(quote.change)
    r.price.textContent = Number.isFinite(p) ? price.format(p) : '–'
    // Direction in words and arrows as well as colour, for readers who cannot tell red from green.
    const dir = c > 0 ? 'up' : c < 0 ? 'down' : 'flat'
    r.change.textContent = Number.isFinite(c) ? `${dir === 'up' ? '▲' : dir === 'down' ? '▼' : '•'} ${change.format(c)}` : '–'
    r.change.dataset.dir = dir
    r.change.title = dir === 'flat' ? 'unchanged' : `${dir} ${Math.abs(c)}`
    const ts = quote.ts === undefined ? Date.now() : new Date(quote.ts)
    r.time.textContent = clock.format(ts)
    if (flash && r.last !== p) {
      // Flash the price by the direction of this tick (not of the day's change).
      r.price.dataset.dir = r.last === undefined || p === r.last ? 'flat' : p > r.last ? 'up' : 'down'
      r.price.classList.remove('flash')
      void r.price.offsetWidth // restart the animation
      r.price.classList.add('flash')
    }
    r.last = p
  }

  function quotesOf (data) {
    if (Array.isArray(data)) return data
    if (data && Array.isArray(data.quotes)) return data.quotes
    if (data && typeof data === 'object') return Object.values(data).filter((q) => q && typeof q === 'object')
    return []
  }

  function seen (e) {
    if (e.lastEventId !== '') lastId.textContent = e.lastEventId
  }

  watch({
    url: () => {
      const s = symbols()
      return s === '' ? 'ticker' : `ticker?symbols=${encodeURIComponent(s)}`
    },
    conn: $('ticker-conn'),
    error: $('ticker-error'),
    onReconnect: (n) => { $('ticker-reconnects').textContent = String(n) },
    on: {
      snapshot (e) {
        seen(e)
        const data = parse(e.data)
        // The default feed is a random walk and says so; a real feed plugged in would not.
        $('ticker-note').hidden = data?.simulated === false
        for (const q of quotesOf(data)) update(q, false)
      },
      quote (e) {
        seen(e)
        update(parse(e.data), true)
      },
      // Our Last-Event-ID was from before a server restart, or older than its history: the
      // snapshot just received is the state, and live quotes follow.
      reset (e) { seen(e) }
    }
  })
}

function parse (text) {
  try { return JSON.parse(text) } catch { return undefined }
}
