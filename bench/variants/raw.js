// `raw`: plain node:http, the per-write limit every library is measured against.
import http from 'node:http'
import { RawBroadcaster, streamFrames } from './raw-writer.js'

export async function create () {
  const hub = new RawBroadcaster()
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1')
    if (url.pathname === '/stream') {
      streamFrames(res, url.searchParams.get('kind'), Number(url.searchParams.get('n')))
    } else if (url.pathname === '/sub') {
      hub.subscribe(res)
    } else {
      res.writeHead(404).end()
    }
  })
  return {
    listen: () => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port))),
    publish: (obj) => hub.publish(obj),
    subscribers: () => hub.count,
    info: { history: 0 }
  }
}
