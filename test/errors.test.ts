// Every errors module of the project: each constant is named after its code, carries an HTTP
// status, and is listed in the README's error table, so the docs cannot drift from the code.
import t from 'tap'
import { readFileSync } from 'node:fs'
import * as library from '../lib/errors.js'
import * as events from '../routes/events/errors.js'
import * as logs from '../routes/logs/errors.js'
import * as ticker from '../routes/ticker/errors.js'
import * as service from '../service/errors.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const modules = { 'lib/errors': library, 'routes/events/errors': events, 'routes/logs/errors': logs, 'routes/ticker/errors': ticker, 'service/errors': service }

for (const [file, errors] of Object.entries(modules)) {
  for (const [name, Ctor] of Object.entries(errors)) {
    t.test(`${name} (${file}) is named after its code, has a status and is documented`, async (t) => {
      const err = new (Ctor as any)('a', 'b', 'c')
      t.equal(err.code, name)
      t.ok(err.code.startsWith('SSE_ERR_'), 'uses the project prefix')
      t.type(err.statusCode, 'number')
      t.ok(err.statusCode >= 400 && err.statusCode < 600)
      t.match(readme, new RegExp('\\| `' + name + '` \\|'), 'listed in the README error table')
    })
  }
}

t.test('no code is declared by two modules', async (t) => {
  const names = Object.values(modules).flatMap((m) => Object.keys(m))
  t.same(names.filter((n, i) => names.indexOf(n) !== i), [])
})
