// ESLint flat config: neostandard (the style the Fastify ecosystem uses) with its TypeScript rules.
import neostandard from 'neostandard'
import globals from 'globals'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'coverage/**', '.tap/**', 'node_modules/**']
  }),
  {
    // `void promise` marks a promise deliberately left to run (its errors are handled inside).
    rules: {
      'no-void': ['error', { allowAsStatement: true }],
      // `for (const x of iterable) return x` is how one takes the first item of an (async) iterable.
      'no-unreachable-loop': ['error', { ignore: ['ForOfStatement'] }],
      // It cannot see a condition changed by a callback while the loop awaits, which is how the
      // tests' bounded polling loops work.
      'no-unmodified-loop-condition': 'off'
    }
  },
  {
    // The demo page's scripts run in the browser.
    files: ['static/**/*.js'],
    languageOptions: { globals: globals.browser }
  }
]
