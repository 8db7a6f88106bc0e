// The demo page: three panes, each a plain EventSource, no framework and no build step.
//   generate.js  GET /events   LLM tokens, one stream per answer
//   ticker.js    GET /ticker   simulated quotes from the broadcast hub
//   logs.js      GET /logs     the server's own log records, live
// live.js holds what the long-lived panes share: connection state in words and why a stream failed.
import { setupGenerate } from './generate.js'
import { setupTicker } from './ticker.js'
import { setupLogs } from './logs.js'

setupGenerate()
setupTicker()
setupLogs()
