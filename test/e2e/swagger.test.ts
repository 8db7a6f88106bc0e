// Swagger UI in Chromium: an SSE operation's 200 response shows its events, not "string".
import t from 'tap'
import { chromiumMissing, openPage } from '../helpers/browser.js'
import { startService } from '../fixtures/service.js'

const skip = chromiumMissing()

t.test('Swagger UI shows the events of GET /events in its 200 response', { skip }, async (t) => {
  const { url } = await startService(t)
  const p = await openPage(t)
  await p.goto(`${url}/docs/`)
  await p.locator('.opblock-summary-path', { hasText: /^\/events$/ }).first().click()
  const responses = p.locator('.opblock.is-open .responses-wrapper')
  await responses.locator('code', { hasText: /^done$/ }).first().waitFor()
  const text = (await responses.textContent())!
  for (const name of ['message', 'done', 'error']) t.match(text, name, `the ${name} event is listed`)
  t.match(text, 'finish_reason', 'with the schema of its data')
  t.match(text, 'event: done', 'and an example of the wire text')
})
