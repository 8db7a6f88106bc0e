// One client process: `node bench/client.js '<json>'` runs one scenario against a running server
// and prints its result as one JSON line: { ok, errors, metrics }.
const opts = JSON.parse(process.argv[2])
const { run } = await import(`./scenarios/${opts.scenario}.js`)
let result
try {
  result = await run(opts)
} catch (err) {
  result = { ok: false, errors: [String(err?.stack ?? err)], metrics: {} }
}
process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
