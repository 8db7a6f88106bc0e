// The server's own log records, teed into the hub: a pino destination that writes each line where
// logs normally go and publishes it as an `event: log` on the topic of its level, so `/logs` can
// filter by level by choosing topics and still share one encoded frame per batch between readers.
// Secrets are removed twice: by pino's `redact` and serializers (`logRedaction`, merged into the
// logger options), and by a scrub of the finished line, for secrets logged where no path foresaw.
import type { FastifyRequest } from 'fastify'
import type { Hub } from '../../lib/hub/hub.js'
import { CENSOR, redactSecrets, redactUrl, type UrlRedaction } from './redact.js'

/** pino's levels, by name. */
export const LOG_LEVELS = Object.freeze({ trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 })
export type LogLevelName = keyof typeof LOG_LEVELS

const NAMES = Object.keys(LOG_LEVELS) as LogLevelName[]

/** The hub topic of a numeric pino level (custom levels go to the nearest standard one below). */
export function logTopic (level: number): string {
  let name: LogLevelName = 'trace'
  for (const n of NAMES) if (level >= LOG_LEVELS[n]) name = n
  return 'logs:' + name
}

/** The topics a reader asking for `min` and above subscribes to. */
export function logTopicsFrom (min: LogLevelName): string[] {
  return NAMES.filter((n) => LOG_LEVELS[n] >= LOG_LEVELS[min]).map((n) => 'logs:' + n)
}

/**
 * Logger options to merge into Fastify's `logger`: pino `redact` paths for credentials in logged
 * headers and objects, and the request serializer Fastify uses, with credential query parameters
 * (and, unless `includePrompts`, prompts and generation ids) removed from the URL.
 */
export function logRedaction (opts: UrlRedaction = {}) {
  return {
    redact: {
      paths: [
        'authorization', 'cookie', 'apiKey', 'api_key', 'token',
        '*.authorization', '*.cookie', '*["set-cookie"]', '*.apiKey', '*.api_key', '*.token',
        '*.headers.authorization', '*.headers.cookie', '*.headers["set-cookie"]', '*.headers["x-api-key"]',
        '*.*.headers.authorization', '*.*.headers.cookie'
      ],
      censor: CENSOR
    },
    serializers: {
      req (req: FastifyRequest) {
        const version = req.headers?.['accept-version']
        return {
          method: req.method,
          url: redactUrl(req.url, opts),
          version: Array.isArray(version) ? version[0] : version,
          host: req.host,
          remoteAddress: req.ip,
          remotePort: req.socket?.remotePort
        }
      }
    }
  }
}

export interface LogStreamOptions {
  /** Where records are published; `/logs` reads the same hub. */
  hub: Hub
  /**
   * Where the lines also go; `null` sends them only to the hub.
   * @default process.stdout
   */
  destination?: { write: (line: string) => unknown } | null
  /** Strings to take out of every line before it is written anywhere: the upstream's API key, say. */
  secrets?: readonly string[]
}

const LEVEL = /"level":(\d+)/
const ignore = (): void => {}

/** A pino destination (`logger: { stream }`) that tees every line into the hub. */
export function createLogStream (opts: LogStreamOptions): { write: (line: string) => void } {
  const { hub } = opts
  const secrets = opts.secrets ?? []
  const destination = opts.destination === undefined ? process.stdout : opts.destination
  return {
    write (chunk: string) {
      const line = redactSecrets(chunk, secrets)
      destination?.write(line)
      const level = LEVEL.exec(line)
      const data = line.endsWith('\n') ? line.slice(0, -1) : line
      // A record the encoder refuses, or a hub already closed at shutdown, must not break logging.
      hub.publish(logTopic(level === null ? LOG_LEVELS.info : Number(level[1])), { event: 'log', data }).catch(ignore)
    }
  }
}
