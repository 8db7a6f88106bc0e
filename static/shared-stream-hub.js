// The hub behind shared-stream.js: one EventSource per URL for every subscriber in the browser,
// however many tabs they live in. It runs inside the SharedWorker (shared-stream-worker.js), or,
// where SharedWorker is missing, in the tab elected leader. It knows nothing about transports:
// each subscriber brings a `send(message)` function.
//
// Messages to a subscriber:
//   { id, kind: 'state', state: 'connecting' | 'open' | 'closed' }
//   { id, kind: 'event', type, data, lastEventId }
// A server `event: error` frame is an event of type 'error'; a failed connection is a state.

// Recent events kept per URL: they let a tab that was hidden catch up from its Last-Event-ID
// while other tabs keep the stream open, and give a tab that joins late what it missed (the
// ticker's snapshot, the latest log lines). Bounded, so an hour-old worker stays small.
const HISTORY = 200
// URLs whose history is kept after their stream closed, so a single hidden tab can resume.
const MAX_IDLE_URLS = 16

export class StreamHub {
  /** url → { url, es, subs: Map<id, sub>, types: Set<string> } */
  #streams = new Map()
  /** url → { events: Array<{ type, data, lastEventId }> } */
  #history = new Map()
  /** sub id → url */
  #urlOf = new Map()

  /**
   * @param {string} id          unique across the browser (a random UUID)
   * @param {string} url         absolute stream URL
   * @param {string[]} events    named event types to deliver besides `message` and `error`
   * @param {string | undefined} lastEventId  the last id this subscriber saw, to catch up from
   * @param {(msg: object) => void} send
   * @param {string} [owner]     the tab, so all its subscriptions can be dropped at once
   */
  subscribe (id, url, events, lastEventId, send, owner) {
    this.unsubscribe(id)
    const history = this.#historyOf(url)
    const at = lastEventId ? findLast(history.events, lastEventId) : -1
    let stream = this.#streams.get(url)
    const sub = { id, send, owner, types: new Set(['message', 'error', ...events]) }
    this.#urlOf.set(id, url)
    if (stream === undefined) {
      // Resume where the newest event we hold left off when it continues the subscriber's own
      // history; otherwise from the subscriber's id; otherwise from now.
      const from = at !== -1 ? history.events.at(-1).lastEventId : lastEventId
      if (at === -1) history.events.length = 0
      stream = this.#open(url, from)
    }
    stream.subs.set(id, sub)
    for (const type of sub.types) this.#listen(stream, type)
    // What this subscriber missed and the hub has: after its id, or everything for a newcomer.
    const missed = lastEventId ? (at === -1 ? [] : history.events.slice(at + 1)) : history.events
    for (const ev of missed) if (sub.types.has(ev.type)) send({ id, kind: 'event', ...ev })
    send({ id, kind: 'state', state: stream.es.readyState === EventSource.OPEN ? 'open' : 'connecting' })
  }

  unsubscribe (id) {
    const url = this.#urlOf.get(id)
    if (url === undefined) return
    this.#urlOf.delete(id)
    const stream = this.#streams.get(url)
    if (stream === undefined) return
    stream.subs.delete(id)
    // The last subscriber gone: give the connection back (the history stays for a resume).
    if (stream.subs.size === 0) this.#close(url)
  }

  /** A tab closed, or gave up its leadership: everything it subscribed to. */
  dropOwner (owner) {
    for (const stream of [...this.#streams.values()]) {
      for (const sub of [...stream.subs.values()]) if (sub.owner === owner) this.unsubscribe(sub.id)
    }
  }

  #historyOf (url) {
    let h = this.#history.get(url)
    if (h === undefined) {
      h = { events: [] }
      this.#history.set(url, h)
      // Forget the oldest idle URL beyond the bound (Map keeps insertion order).
      for (const key of this.#history.keys()) {
        if (this.#history.size <= MAX_IDLE_URLS) break
        if (!this.#streams.has(key)) this.#history.delete(key)
      }
    }
    return h
  }

  #open (url, lastEventId) {
    // EventSource cannot send a header on its first request: the cursor goes in the query
    // (the server reads `lastEventId`); the browser's own reconnects send the header.
    const target = new URL(url)
    if (lastEventId) target.searchParams.set('lastEventId', lastEventId)
    const es = new EventSource(target)
    const stream = { url, es, subs: new Map(), types: new Set() }
    this.#streams.set(url, stream)
    es.addEventListener('open', () => this.#state(stream, 'open'))
    return stream
  }

  #listen (stream, type) {
    if (stream.types.has(type)) return
    stream.types.add(type)
    const url = stream.url
    const history = this.#historyOf(url)
    stream.es.addEventListener(type, (e) => {
      if (this.#streams.get(url) !== stream) return
      if (type === 'error' && !(e instanceof MessageEvent)) {
        // The connection failed: the browser retries (CONNECTING) or gave up (CLOSED).
        if (stream.es.readyState === EventSource.CLOSED) {
          this.#state(stream, 'closed')
          for (const id of [...stream.subs.keys()]) this.#urlOf.delete(id)
          stream.subs.clear()
          this.#close(url)
        } else {
          this.#state(stream, 'connecting')
        }
        return
      }
      const ev = { type, data: e.data, lastEventId: e.lastEventId }
      history.events.push(ev)
      if (history.events.length > HISTORY) history.events.splice(0, history.events.length - HISTORY)
      for (const sub of stream.subs.values()) if (sub.types.has(type)) sub.send({ id: sub.id, kind: 'event', ...ev })
    })
  }

  #state (stream, state) {
    for (const sub of stream.subs.values()) sub.send({ id: sub.id, kind: 'state', state })
  }

  #close (url) {
    const stream = this.#streams.get(url)
    if (stream === undefined) return
    this.#streams.delete(url)
    stream.es.close()
  }
}

function findLast (events, id) {
  for (let i = events.length - 1; i >= 0; i--) if (events[i].lastEventId === id) return i
  return -1
}
