// shared-stream.js: an EventSource that every tab of the browser shares.
//
// A browser speaking HTTP/1.1 opens at most six connections per origin, for all its tabs
// together. A page holding two long-lived EventSources therefore stops working at the third tab:
// its next request waits for a free connection forever. Here the tabs share one connection per
// stream URL, however many tabs subscribe:
//
//   - a SharedWorker (shared-stream-worker.js) holds the EventSources and fans their events out
//     to the tabs;
//   - where SharedWorker is missing, the tabs elect a leader with Web Locks (`navigator.locks`),
//     which holds them and relays events over a BroadcastChannel; when the leader closes, the
//     next tab takes over and the others subscribe again from their last event id;
//   - with neither, each tab holds its own EventSource, as before.
//
// A hidden tab gives its subscriptions back (the last one out closes the connection), and when it
// is shown again it resumes from the last event id it saw: from the hub's recent history if the
// stream stayed open for other tabs, else by reopening the stream with `?lastEventId=` (which the
// server reads as Last-Event-ID, and the browser's own reconnects send as the header).
//
//   import { openSharedStream } from './shared-stream.js'
//   const s = openSharedStream('/ticker', { events: ['snapshot', 'quote'] })
//   s.addEventListener('quote', (e) => render(JSON.parse(e.data)))
//   s.addEventListener('open', …); s.addEventListener('error', …)   // as on an EventSource
//   s.close()
//
// The object behaves like an EventSource for what a page uses: `readyState` (0 connecting,
// 1 open, 2 closed), `url`, `open`/`error`/named events as MessageEvents with `data` and
// `lastEventId`, and `close()`. A server `event: error` frame arrives as a MessageEvent named
// `error`; a failed connection as a plain Event, with `readyState` saying whether it retries.
// Plain ES module, no build step; the three files must be served from the same folder.
import { StreamHub } from './shared-stream-hub.js'

const CHANNEL = 'shared-stream'
const tab = crypto.randomUUID()
let transport

/**
 * @param {string | URL} url  the stream, resolved against the page's address
 * @param {{ events?: string[], shared?: boolean }} [options]  `events`: the named event types to
 *   receive besides `message` and `error` (an EventSource needs them named). `shared: false`
 *   opens a plain per-tab EventSource.
 * @returns {SharedStream}
 */
export function openSharedStream (url, options = {}) {
  return new SharedStream(new URL(url, location.href).href, options.events ?? [], options.shared ?? true)
}

/** Which mechanism this tab uses: 'worker', 'leader' (BroadcastChannel + Web Locks) or 'local'. */
export function sharingMode () {
  return getTransport().mode
}

export class SharedStream extends EventTarget {
  static CONNECTING = 0
  static OPEN = 1
  static CLOSED = 2

  #id = crypto.randomUUID()
  #events
  #lastEventId = ''
  #transport
  #onVisibility
  // Set while a tab shown again resubscribes: the stream never looked down to the page, so its
  // coming back is not announced as a reconnect.
  #resuming = false

  constructor (url, events, shared) {
    super()
    this.url = url
    this.readyState = SharedStream.CONNECTING
    this.#events = events
    this.#transport = shared ? getTransport() : localTransport()
    this.#onVisibility = () => {
      if (document.visibilityState === 'hidden') {
        this.#transport.post({ op: 'unsub', id: this.#id })
        if (this.readyState === SharedStream.OPEN) this.#resuming = true
        this.readyState = SharedStream.CONNECTING
      } else {
        this.#subscribe()
      }
    }
    document.addEventListener('visibilitychange', this.#onVisibility)
    this.#transport.listen(this.#id, (msg) => this.#receive(msg))
    this.#transport.track?.(this.#id, () => this.resubscribe())
    // A tab opened in the background subscribes once it is first shown.
    if (document.visibilityState !== 'hidden') this.#subscribe()
  }

  /** The id of the last event received: where this tab resumes after being hidden. */
  get lastEventId () { return this.#lastEventId }

  close () {
    if (this.readyState === SharedStream.CLOSED) return
    this.readyState = SharedStream.CLOSED
    document.removeEventListener('visibilitychange', this.#onVisibility)
    this.#transport.post({ op: 'unsub', id: this.#id })
    this.#transport.unlisten(this.#id)
  }

  /** Called again by a new leader: subscribe from where this tab is. */
  resubscribe () {
    if (this.readyState !== SharedStream.CLOSED && document.visibilityState !== 'hidden') this.#subscribe()
  }

  #subscribe () {
    this.#transport.post({ op: 'sub', id: this.#id, url: this.url, events: this.#events, lastEventId: this.#lastEventId || undefined })
  }

  #receive (msg) {
    if (this.readyState === SharedStream.CLOSED) return
    if (msg.kind === 'event') {
      if (msg.lastEventId !== '') this.#lastEventId = msg.lastEventId
      this.dispatchEvent(new MessageEvent(msg.type, { data: msg.data, lastEventId: msg.lastEventId, origin: new URL(this.url).origin }))
      return
    }
    if (msg.state === 'open') {
      if (this.readyState === SharedStream.OPEN) return
      this.readyState = SharedStream.OPEN
      if (this.#resuming) this.#resuming = false
      else this.dispatchEvent(new Event('open'))
    } else if (msg.state === 'connecting') {
      if (this.readyState !== SharedStream.OPEN) return
      this.readyState = SharedStream.CONNECTING
      this.dispatchEvent(new Event('error'))
    } else {
      this.readyState = SharedStream.CLOSED
      this.#transport.unlisten(this.#id)
      document.removeEventListener('visibilitychange', this.#onVisibility)
      this.dispatchEvent(new Event('error'))
    }
  }
}

// ── Transports: how a tab's subscriptions reach the hub, and its events come back ──

function getTransport () {
  transport ??= typeof SharedWorker === 'function'
    ? workerTransport()
    : typeof BroadcastChannel === 'function' && navigator.locks !== undefined
      ? leaderTransport()
      : localTransport()
  return transport
}

/** Routes the hub's messages to the SharedStream they are for. */
function router () {
  const handlers = new Map()
  return {
    handlers,
    deliver: (msg) => handlers.get(msg.id)?.(msg),
    listen: (id, fn) => handlers.set(id, fn),
    unlisten: (id) => handlers.delete(id)
  }
}

/** Holds a Web Lock named after this tab until it closes: the hub learns of its end that way. */
function holdTabLock () {
  if (navigator.locks === undefined) return Promise.resolve()
  return new Promise((resolve) => {
    void navigator.locks.request(`${CHANNEL}:tab:${tab}`, () => { resolve(); return new Promise(() => {}) })
  })
}

function workerTransport () {
  const r = router()
  const worker = new SharedWorker(new URL('./shared-stream-worker.js', import.meta.url), { type: 'module', name: CHANNEL })
  const port = worker.port
  port.addEventListener('message', (e) => r.deliver(e.data))
  port.start()
  // The worker starts watching this tab's lock only once the tab holds it.
  const ready = holdTabLock().then(() => port.postMessage({ op: 'hello', tab }))
  addEventListener('pagehide', (e) => { if (!e.persisted) port.postMessage({ op: 'bye' }) })
  return { mode: 'worker', ...r, post: (msg) => { void ready.then(() => port.postMessage(msg)) } }
}

function localTransport () {
  const r = router()
  const hub = new StreamHub()
  return {
    mode: 'local',
    ...r,
    post (msg) {
      if (msg.op === 'sub') hub.subscribe(msg.id, msg.url, msg.events, msg.lastEventId, r.deliver, tab)
      else if (msg.op === 'unsub') hub.unsubscribe(msg.id)
    }
  }
}

/**
 * Without SharedWorker: the tab holding the `shared-stream:leader` lock runs the hub; the others
 * send it their subscriptions over a BroadcastChannel and get their events back the same way.
 */
function leaderTransport () {
  const r = router()
  const channel = new BroadcastChannel(CHANNEL)
  let hub
  const streams = new Map()

  const handle = (msg, from) => {
    if (msg.op === 'sub') {
      const send = from === tab ? r.deliver : (m) => channel.postMessage({ to: from, ...m })
      hub.subscribe(msg.id, msg.url, msg.events, msg.lastEventId, send, from)
    } else if (msg.op === 'unsub') hub.unsubscribe(msg.id)
    else if (msg.op === 'bye') hub.dropOwner(from)
  }

  channel.addEventListener('message', ({ data: msg }) => {
    if (msg.to !== undefined) {
      if (msg.to === tab) r.deliver(msg)
    } else if (msg.op === 'leader') {
      // A new leader knows no subscription yet: everyone subscribes again from where they are.
      for (const s of streams.values()) s()
    } else if (hub !== undefined) {
      handle(msg, msg.tab)
      if (msg.op === 'hello') void navigator.locks.request(`${CHANNEL}:tab:${msg.tab}`, () => hub.dropOwner(msg.tab))
    }
  })

  void holdTabLock().then(() => {
    void navigator.locks.request(`${CHANNEL}:leader`, () => {
      hub = new StreamHub()
      // This tab's own streams subscribe from the last id each saw (not from the id they first
      // subscribed with): a tab taking over from a closed leader resumes, it does not start over.
      for (const s of streams.values()) s()
      channel.postMessage({ op: 'leader' })
      return new Promise(() => {})
    })
    channel.postMessage({ op: 'hello', tab })
  })
  addEventListener('pagehide', (e) => { if (!e.persisted) channel.postMessage({ op: 'bye', tab }) })

  return {
    mode: 'leader',
    deliver: r.deliver,
    listen: r.listen,
    unlisten (id) { r.unlisten(id); streams.delete(id) },
    // Each SharedStream registers how to subscribe again, for when a new leader takes over.
    track (id, resubscribe) { streams.set(id, resubscribe) },
    post (msg) {
      if (hub !== undefined) handle(msg, tab)
      else channel.postMessage({ ...msg, tab })
    }
  }
}
