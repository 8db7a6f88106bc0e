#!/usr/bin/env node
// The `fastify-sse-stream` command, on top of `fastify-sse-stream/client`:
//   ask "prompt"  streams an answer from a server's /events to stdout, timing and usage on stderr
//   tail URL      prints the events of any SSE stream (`--json`: one object a line, for jq)
// Exit codes are part of the interface (docs/client.md): scripts branch on them.
import { parseArgs } from 'node:util'
import { createRequire } from 'node:module'
import {
  generate,
  streamEvents,
  SseConnectionError,
  SseEventError,
  SseHttpError,
  type ReconnectInfo
} from './client.js'

const EXIT_OK = 0
const EXIT_ERROR_EVENT = 1
const EXIT_USAGE = 2
const EXIT_HTTP = 3
const EXIT_UNREACHABLE = 4
const EXIT_INTERRUPTED = 130
const DEFAULT_URL = 'http://127.0.0.1:8080'
const NAME = 'fastify-sse-stream'

const EXIT_CODES = `Exit codes: 0 done, 1 the stream sent an error event (or broke its contract), 2 usage,
3 HTTP error status, 4 server unreachable, 130 interrupted (Ctrl-C or SIGTERM).`

const HELP = `Usage: ${NAME} <command> [options]

Commands:
  ask "prompt"   Stream an answer from a ${NAME} server's /events
  tail URL|PATH  Print the events of any Server-Sent Events stream (a PATH such as /ticker
                 is on the same default server as ask)

Run \`${NAME} <command> --help\` for its options; \`${NAME} --version\` for the version.

${EXIT_CODES}
`

const ASK_HELP = `Usage: ${NAME} ask "prompt" [options]

Streams the answer to stdout as it arrives; time to first token, tokens/s and usage go to stderr.
A dropped connection resumes the same generation where the server supports it.

Options:
  --url URL          The server (default ${DEFAULT_URL}, what \`npm start\` listens on)
  --model NAME       The model (default: the server's)
  --system TEXT      A system prompt
  --max-tokens N     The longest answer, in tokens
  --header "K: V"    A request header, e.g. authorization (repeatable)
  -h, --help         This help

${EXIT_CODES}
`

const TAIL_HELP = `Usage: ${NAME} tail URL|PATH [options]

A PATH such as /ticker is read from --url (default ${DEFAULT_URL}, as for ask).
Prints each event as it arrives: its data, prefixed with [event] unless it is a plain message.
Reconnects with Last-Event-ID when the connection drops or the stream ends. Stops on 204, after a
\`done\` event, or when the stream ends with --once.

Options:
  --event NAME          Only events of this type; prints their data alone (repeatable)
  --json                One JSON object a line: {"event","data","id","retry"}; data stays a string
                        (\`| jq '.data | fromjson'\` for JSON data)
  --last-event-id ID    Resume after this event id
  --header "K: V"       A request header (repeatable)
  --url URL             The server a PATH is on (default ${DEFAULT_URL})
  --once                Do not reconnect when the stream ends
  -h, --help            This help

${EXIT_CODES}
`

class UsageError extends Error {}

/** One line on stderr, redrawn in place; only ever used when stderr is a terminal. */
class StatusLine {
  #shown = false
  constructor (private readonly out: NodeJS.WriteStream) {}
  set (text: string): void {
    // `columns` is 0 on some pseudo-terminals: treat that as unknown.
    const width = Math.max(20, (this.out.columns || 80) - 1)
    this.out.write('\r\x1b[2K' + text.slice(0, width))
    this.#shown = true
  }

  clear (): void {
    if (this.#shown) this.out.write('\r\x1b[2K')
    this.#shown = false
  }
}

function parseHeaders (values: string[] | undefined): Headers {
  const headers = new Headers()
  for (const value of values ?? []) {
    const colon = value.indexOf(':')
    if (colon <= 0) throw new UsageError(`--header expects "Name: value", got "${value}"`)
    try {
      headers.append(value.slice(0, colon).trim(), value.slice(colon + 1).trim())
    } catch {
      throw new UsageError(`--header "${value}" is not a valid HTTP header`)
    }
  }
  return headers
}

function checkUrl (url: string, what: string): string {
  let parsed: URL
  try { parsed = new URL(url) } catch { throw new UsageError(`${what} is not a URL: ${url}`) }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`${what} must be http(s): ${url}`)
  return parsed.href
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

function reconnectNotice (url: string) {
  return (info: ReconnectInfo): void => {
    const why = info.error === undefined ? 'stream ended' : 'connection lost'
    const after = info.lastEventId === undefined ? '' : `, Last-Event-ID ${info.lastEventId}`
    process.stderr.write(`${NAME}: ${why}; reconnecting to ${url} in ${seconds(info.delayMs)} (attempt ${info.attempt}${after})\n`)
  }
}

async function ask (args: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      url: { type: 'string', default: DEFAULT_URL },
      model: { type: 'string' },
      system: { type: 'string' },
      'max-tokens': { type: 'string' },
      header: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) { process.stdout.write(ASK_HELP); return EXIT_OK }
  const prompt = positionals.join(' ')
  if (prompt.trim() === '') throw new UsageError('ask needs a prompt: fastify-sse-stream ask "Why is the sky blue?"')
  const url = checkUrl(values.url, '--url')
  let maxTokens: number | undefined
  if (values['max-tokens'] !== undefined) {
    maxTokens = Number(values['max-tokens'])
    if (!Number.isSafeInteger(maxTokens) || maxTokens < 1) throw new UsageError('--max-tokens must be a positive integer')
  }

  const err = process.stderr
  const live = err.isTTY ? new StatusLine(err) : undefined
  // With both on one terminal a status line would tear the answer apart: show it only while
  // waiting for the first token. With stdout redirected it can stay up the whole time.
  const liveThroughout = live !== undefined && process.stdout.isTTY !== true
  const started = performance.now()
  let firstAt: number | undefined
  let lastAt = started
  let tokens = 0
  let endsWithNewline = true
  const timer = live === undefined
    ? undefined
    : setInterval(() => {
      const now = performance.now()
      if (firstAt === undefined) live.set(`waiting for the first token… ${seconds(now - started)}`)
      else if (liveThroughout) live.set(`${tokens} token${tokens === 1 ? '' : 's'} · ${rate(tokens, now - firstAt)} · ${seconds(now - started)}`)
    }, 100)
  timer?.unref()
  try {
    const gen = generate(url, {
      prompt,
      system: values.system,
      model: values.model,
      max_tokens: maxTokens,
      headers: parseHeaders(values.header),
      signal,
      onReconnect: (info) => { live?.clear(); reconnectNotice(url)(info) }
    })
    for await (const token of gen) {
      if (firstAt === undefined) {
        firstAt = performance.now()
        if (!liveThroughout) live?.clear()
      }
      lastAt = performance.now()
      tokens++
      if (token !== '') endsWithNewline = token.endsWith('\n')
      process.stdout.write(token)
    }
    const done = await gen.done
    clearInterval(timer)
    live?.clear()
    // A text file (or the next shell prompt) wants a last newline; the answer rarely has one.
    if (!endsWithNewline) process.stdout.write('\n')
    const completion = done.usage?.completion_tokens ?? tokens
    const stats = [
      `first token ${firstAt === undefined ? '-' : Math.round(firstAt - started) + ' ms'}`,
      `${completion} tokens in ${seconds(lastAt - started)} (${rate(completion, lastAt - (firstAt ?? started))})`
    ]
    if (done.usage != null) {
      const u = done.usage
      stats.push(`usage ${u.prompt_tokens} prompt + ${u.completion_tokens} completion = ${u.total_tokens}`)
    }
    stats.push(`finish ${done.finish_reason ?? '-'}`)
    if (done.model !== undefined) stats.push(`model ${done.model}${done.demo === true ? ' (built-in demo model)' : ''}`)
    err.write(stats.join(' · ') + '\n')
    return EXIT_OK
  } finally {
    clearInterval(timer)
    live?.clear()
  }
}

function rate (count: number, ms: number): string {
  return count < 2 || ms <= 0 ? '- tokens/s' : `${(count / (ms / 1000)).toFixed(1)} tokens/s`
}

async function tail (args: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      event: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      'last-event-id': { type: 'string' },
      header: { type: 'string', multiple: true },
      url: { type: 'string', default: DEFAULT_URL },
      once: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) { process.stdout.write(TAIL_HELP); return EXIT_OK }
  if (positionals.length !== 1) throw new UsageError('tail needs one URL or path: fastify-sse-stream tail /ticker')
  const target = positionals[0]
  // `/ticker` is a path on the default server (or --url), like ask's; anything else a full URL.
  const url = target.startsWith('/') && !target.startsWith('//')
    ? new URL(target, checkUrl(values.url, '--url')).href
    : checkUrl(target, 'URL')
  const only = values.event === undefined ? undefined : new Set(values.event)
  const events = streamEvents(url, {
    headers: parseHeaders(values.header),
    lastEventId: values['last-event-id'],
    reconnect: values.once !== true,
    signal,
    onReconnect: reconnectNotice(url)
  })
  for await (const ev of events) {
    if (only === undefined || only.has(ev.event)) {
      const line = values.json === true
        ? JSON.stringify({ event: ev.event, data: ev.data, id: ev.id, retry: ev.retry })
        : only !== undefined || ev.event === 'message' ? ev.data : `[${ev.event}] ${ev.data}`
      process.stdout.write(line + '\n')
    }
    // Our streams' conventions: `error` is a failure after which the stream ends, `done` the end
    // of a finite stream (reconnecting would start it over).
    if (ev.event === 'error') {
      process.stderr.write(`${NAME}: the stream sent an error event: ${ev.data}\n`)
      return EXIT_ERROR_EVENT
    }
    if (ev.event === 'done') return EXIT_OK
  }
  return EXIT_OK
}

function report (err: unknown, command: string): number {
  if (err instanceof UsageError || (err as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS') === true) {
    process.stderr.write(`${NAME}: ${(err as Error).message}\nRun \`${NAME} ${command === '' ? '' : command + ' '}--help\` for usage.\n`)
    return EXIT_USAGE
  }
  if (err instanceof SseHttpError) {
    process.stderr.write(`${NAME}: ${err.message}\n`)
    return EXIT_HTTP
  }
  if (err instanceof SseConnectionError) {
    const hint = command === 'ask' && err.attempts === 0 ? ' (is the server running? `npm start` starts one)' : ''
    process.stderr.write(`${NAME}: ${err.message}${hint}\n`)
    return EXIT_UNREACHABLE
  }
  if (err instanceof SseEventError) {
    process.stderr.write(`${NAME}: the server reported ${err.code}: ${err.message}\n`)
    return EXIT_ERROR_EVENT
  }
  process.stderr.write(`${NAME}: ${err instanceof Error ? err.message : String(err)}\n`)
  return EXIT_ERROR_EVENT
}

async function main (argv: string[]): Promise<number> {
  const [command = '', ...rest] = argv
  const controller = new AbortController()
  // Ctrl-C or SIGTERM aborts the request; for `ask` that also stops the generation on the server
  // (generate() sends the stop before the loop unwinds). A second signal exits at once.
  let interruptedBy: string | undefined
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED)
    interruptedBy = signal
    controller.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // `| head` closing the pipe is a normal way to stop reading, not a crash.
  let pipeClosed = false
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    pipeClosed = true
    controller.abort()
  })
  try {
    if (command === 'ask') return await ask(rest, controller.signal)
    if (command === 'tail') return await tail(rest, controller.signal)
    if (command === '--version' || command === '-v') {
      // The package's own `./package.json` export: the same from lib/client/cli.ts and from
      // dist/lib/client/cli.js, and the library never reaches into the demo service for it.
      const pkg = createRequire(import.meta.url)(`${NAME}/package.json`) as { version: string }
      process.stdout.write(pkg.version + '\n')
      return EXIT_OK
    }
    if (command === '--help' || command === '-h' || command === 'help') { process.stdout.write(HELP); return EXIT_OK }
    process.stderr.write(command === '' ? HELP : `${NAME}: unknown command "${command}"\n\n${HELP}`)
    return EXIT_USAGE
  } catch (err) {
    if (controller.signal.aborted) {
      if (pipeClosed) return EXIT_OK
      const stopped = command === 'ask' ? '; the generation was stopped' : ''
      process.stderr.write(`${NAME}: interrupted (${interruptedBy ?? 'aborted'})${stopped}\n`)
      return EXIT_INTERRUPTED
    }
    return report(err, command === 'ask' || command === 'tail' ? command : '')
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

process.exitCode = await main(process.argv.slice(2))
