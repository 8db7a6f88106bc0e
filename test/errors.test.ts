import t from 'tap'
import { readFileSync } from 'node:fs'
import * as errors from '../lib/errors.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

for (const [name, Ctor] of Object.entries(errors)) {
  t.test(`${name} is named after its code, has a status and is documented`, async (t) => {
    const err = new (Ctor as any)('a', 'b', 'c')
    t.equal(err.code, name)
    t.ok(err.code.startsWith('SSE_ERR_'), 'uses the project prefix')
    t.type(err.statusCode, 'number')
    t.ok(err.statusCode >= 400 && err.statusCode < 600)
    t.match(readme, new RegExp('\\| `' + name + '` \\|'), 'listed in the README error table')
  })
}
