// The SharedWorker of shared-stream.js: one per origin and browser profile, holding the hub.
// Tabs talk to it over their MessagePort. A port gives no signal when its tab goes away, so each
// tab holds a Web Lock named after itself for its lifetime; the worker asks for the same lock,
// which it is granted only once the tab is gone, and then drops that tab's subscriptions.
import { StreamHub } from './shared-stream-hub.js'

const hub = new StreamHub()

self.addEventListener('connect', (event) => {
  const port = event.ports[0]
  let tab
  port.addEventListener('message', ({ data: msg }) => {
    if (msg.op === 'hello') {
      tab = msg.tab
      void navigator.locks?.request(`shared-stream:tab:${tab}`, () => hub.dropOwner(tab))
    } else if (msg.op === 'sub') {
      hub.subscribe(msg.id, msg.url, msg.events, msg.lastEventId, (m) => port.postMessage(m), tab)
    } else if (msg.op === 'unsub') {
      hub.unsubscribe(msg.id)
    } else if (msg.op === 'bye') {
      hub.dropOwner(tab)
    }
  })
  port.start()
})
