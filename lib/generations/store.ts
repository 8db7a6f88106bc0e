// Resumable generations: an LLM answer that runs decoupled from the connection that asked for it.
// Its events are encoded once, with ids `<generation>:<seq>`, and kept until the generation has
// been finished for `ttlMs`, so a client whose connection dropped reconnects with Last-Event-ID and
// gets the rest of the same answer instead of a second, paid-for one. With no client attached, a
// running generation is aborted upstream after `graceMs`; an explicit stop aborts it at once.
//
// Not a hub topic: a generation has one producer, ids scoped to itself, a bounded length
// (max_tokens) and a lifetime tied to its clients, which a small log models directly. The store's
// interface is what a Redis-backed one implements for many instances.
import { randomBytes } from 'node:crypto'
import { encode, SseFrame, type SseMessage } from '../sse/encoder.js'
import { errorFrame } from '../sse/stream.js'
import { integerOption } from '../internal/integer-option.js'
import { splitEventId } from '../internal/event-id.js'
import { channels, report } from '../metrics/channels.js'

/** One event of a generation, before it gets its id. */
export type GenerationEvent = Omit<SseMessage, 'id'>

/**
 * Produces a generation's events; must stop when `signal` aborts (pass it upstream). It may yield
 * an array of events that came together (one upstream read): each still gets its own id, and the
 * store handles them at once (one wake of the followers, one write to Redis).
 */
export type Producer = (signal: AbortSignal) => AsyncIterable<GenerationEvent | readonly GenerationEvent[]>

/**
 * `encode({ ...event, id })`, the same bytes, without copying the event or checking an id we made
 * ourselves, for what most events are (tokens: `data` alone): the id line goes first anyway.
 */
export function encodeWithId (event: GenerationEvent, id: string): string {
  // A producer's own id (not in the type, but possible at run time) must not win over ours.
  if (event.event !== undefined || event.comment !== undefined || (event as SseMessage).id !== undefined) return encode({ ...event, id })
  const text = encode(event)
  return 'id: ' + id + '\n' + (text === '' ? '\n' : text)
}

/** The events of one item a producer yielded. */
export function eventsOf (item: GenerationEvent | readonly GenerationEvent[]): readonly GenerationEvent[] {
  return Array.isArray(item) ? item : [item as GenerationEvent]
}

export interface GenerationStoreOptions {
  /**
   * How long a running generation goes on with no client attached before it is aborted upstream.
   * @default 30000
   */
  graceMs?: number
  /**
   * How long a generation stays resumable after it ended (done, failed or aborted).
   * @default 300000
   */
  ttlMs?: number
  /**
   * The most events one generation keeps; past it the generation fails (a runaway upstream).
   * @default 100000
   */
  maxEvents?: number
}

/** Where a reconnect with Last-Event-ID stands. */
export type Lookup =
  | { status: 'unknown' }
  | { status: 'finished' } // ended, and the client has seen everything (an error too): answer 204
  | { status: 'resumable', id: string, after: number }

/**
 * What the /events route needs of resumable generations: this file's in-memory store implements
 * it for one process; a Redis-backed one implements it for many instances.
 */
export interface Generations {
  /** Starts a generation owned by `owner` and resolves to its id; it runs whether or not anyone follows. */
  start: (owner: string, produce: Producer) => Promise<string>
  /** Where a reconnect carrying `lastEventId` stands, for `owner` (another owner's is `unknown`). */
  lookup: (lastEventId: string | undefined, owner: string) => Promise<Lookup>
  /**
   * The frames after `after`, then live ones until the generation ends. A generation that failed
   * ends with an `error` frame whose id is the one after its last frame, so that a reconnect after
   * it is `finished`; only a follow from the start that got nothing throws the error instead (an
   * HTTP error status). A store whose backing service is away throws SSE_ERR_HUB_UNAVAILABLE,
   * after a `retry:` frame if nothing was yielded (see `retryLater`).
   */
  follow: (id: string, after: number, signal: AbortSignal) => AsyncIterable<SseFrame>
  /** Stops the generation `id` of `owner` at once; false when there is no such generation. */
  stop: (id: string, owner: string) => Promise<boolean>
  close: () => Promise<void>
}

// Ours: `<generation>:<seq>`, the generation 16 random bytes in base64url (22 characters), the
// seq at most 9 digits.
const GENERATION = /^[A-Za-z0-9_-]{22}$/
const MAX_SEQ = 999_999_999

/** A jittered `retry:` of about 2 s, so that many clients cut at once do not come back at once. */
export function retryLead (retryMs = 2000): string {
  return `retry: ${Math.round(retryMs * (0.75 + Math.random() * 0.5))}\n\n`
}

/**
 * A stream for a request the store cannot serve right now (Redis away): `retry:`, then `err` as
 * an `error` event. Status 200 on purpose: an EventSource stops for good on a 5xx, but reconnects
 * after an error event, by which time the blip may be over.
 */
export async function * retryLater (err: Error): AsyncGenerator<SseFrame> {
  yield new SseFrame(retryLead())
  throw err
}

/** The generation and seq of one of our event ids, or undefined for any other id. */
export function parseEventId (id: string | undefined): { generation: string, seq: number } | undefined {
  const parsed = splitEventId(id)
  if (parsed === undefined || !GENERATION.test(parsed.prefix) || parsed.seq > MAX_SEQ) return undefined
  return { generation: parsed.prefix, seq: parsed.seq }
}

export class Generation {
  readonly id = randomBytes(16).toString('base64url')
  readonly owner: string
  /** Encoded frames; frame i has id `<id>:<i + 1>`. */
  readonly #frames: string[] = []
  readonly #controller = new AbortController()
  readonly #store: GenerationStore
  #error: unknown
  #ended = false
  #attached = 0
  #wake: Array<() => void> = []
  #timer: NodeJS.Timeout | undefined
  #disposed = false

  constructor (store: GenerationStore, owner: string) {
    this.#store = store
    this.owner = owner
  }

  get ended (): boolean { return this.#ended }
  /** Ended with an error, which counts as one more event (id length + 1). */
  get failed (): boolean { return this.#ended && this.#error !== undefined }
  get length (): number { return this.#frames.length }
  get attached (): number { return this.#attached }
  /** Aborts when the generation is stopped, left alone past the grace period, or the store closes. */
  get signal (): AbortSignal { return this.#controller.signal }

  /** Runs the producer to its end; called once by the store. */
  async run (produce: Producer): Promise<void> {
    const { maxEvents } = this.#store.limits
    try {
      for await (const item of produce(this.signal)) {
        for (const event of eventsOf(item)) {
          if (this.#frames.length >= maxEvents) throw new Error(`generation exceeded ${maxEvents} events`)
          this.#frames.push(encodeWithId(event, `${this.id}:${this.#frames.length + 1}`))
        }
        this.#notify()
      }
    } catch (err) {
      if (!this.signal.aborted) this.#error = err
    } finally {
      this.#end()
    }
  }

  /**
   * Stops the generation now, whoever is attached: an explicit stop, not a disconnect. The producer
   * sees its signal abort and may still yield a last event (a `done` saying it was stopped).
   */
  stop (reason = 'stopped'): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(new Error(reason))
  }

  /**
   * The events after `after`, then live ones until the generation ends or `signal` aborts. Frames
   * that are ready are handed over together. Throws the producer's error when it is reached, so
   * before anything was sent it becomes an HTTP error, and after it an `error` event.
   */
  async * follow (after: number, signal: AbortSignal): AsyncGenerator<SseFrame> {
    let wake: (() => void) | undefined
    const onAbort = (): void => wake?.()
    signal.addEventListener('abort', onAbort, { once: true })
    this.#attach()
    try {
      let next = after
      while (!signal.aborted) {
        if (next < this.#frames.length) {
          const text = next + 1 === this.#frames.length ? this.#frames[next] : this.#frames.slice(next).join('')
          next = this.#frames.length
          yield new SseFrame(text)
          continue
        }
        if (this.#ended) {
          if (this.#error === undefined) return
          // Nothing sent on a fresh request: an HTTP error. Else an event, with the id after the
          // last frame, so a reconnect after it is told there is nothing more.
          if (next === 0) throw this.#error
          yield new SseFrame(errorFrame(this.#error, `${this.id}:${this.#frames.length + 1}`))
          return
        }
        await new Promise<void>((resolve) => {
          wake = resolve
          this.#wake.push(resolve)
        })
      }
    } finally {
      signal.removeEventListener('abort', onAbort)
      this.#detach()
    }
  }

  #attach (): void {
    this.#attached++
    if (this.#ended) return // the timer is the expiry, not the grace period
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #detach (): void {
    this.#attached--
    if (this.#attached === 0 && !this.#ended) {
      // Nobody is listening: give the client `graceMs` to come back before paying for more tokens.
      this.#timer = setTimeout(() => {
        report(channels.generationStop, () => ({ reason: 'abandoned' }))
        this.stop('abandoned: no client came back within the grace period')
      }, this.#store.limits.graceMs)
      this.#timer.unref()
    }
  }

  #notify (): void {
    const wake = this.#wake
    this.#wake = []
    for (const resolve of wake) resolve()
  }

  #end (): void {
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#timer)
    this.#notify()
    if (this.#disposed) return
    this.#timer = setTimeout(() => this.#store.forget(this), this.#store.limits.ttlMs)
    this.#timer.unref()
  }

  /** Stops the producer and drops timers; the store is closing. */
  dispose (): void {
    this.#disposed = true
    clearTimeout(this.#timer)
    this.stop('server is closing')
  }
}

/** The generations of one process. */
export class GenerationStore {
  readonly limits: { graceMs: number, ttlMs: number, maxEvents: number }
  readonly #generations = new Map<string, Generation>()

  constructor (opts: GenerationStoreOptions = {}) {
    this.limits = {
      graceMs: integerOption('graceMs', opts.graceMs, 30_000, 0),
      ttlMs: integerOption('ttlMs', opts.ttlMs, 300_000, 0),
      maxEvents: integerOption('maxEvents', opts.maxEvents, 100_000, 0)
    }
  }

  get size (): number { return this.#generations.size }

  /** Starts a generation owned by `owner`; its producer runs whether or not anyone follows it. */
  start (owner: string, produce: Producer): Generation {
    const generation = new Generation(this, owner)
    this.#generations.set(generation.id, generation)
    generation.run(produce).catch(() => {}) // run() settles on its own errors; nothing escapes
    return generation
  }

  /** The generation `id`, whoever owns it: for a caller that already checked ownership. */
  peek (id: string): Generation | undefined {
    return this.#generations.get(id)
  }

  /** The generation `id` if `owner` started it; another owner's looks exactly like an unknown one. */
  get (id: string, owner: string): Generation | undefined {
    const generation = this.#generations.get(id)
    return generation?.owner === owner ? generation : undefined
  }

  /** Where a reconnect carrying `lastEventId` stands, for `owner`. */
  lookup (lastEventId: string | undefined, owner: string): Lookup {
    const parsed = parseEventId(lastEventId)
    const generation = parsed === undefined ? undefined : this.get(parsed.generation, owner)
    const last = generation === undefined ? 0 : generation.length + (generation.failed ? 1 : 0)
    if (parsed === undefined || generation === undefined || parsed.seq > last) return { status: 'unknown' }
    if (generation.ended && parsed.seq === last) return { status: 'finished' }
    report(channels.generationResume, () => ({}))
    return { status: 'resumable', id: generation.id, after: parsed.seq }
  }

  forget (generation: Generation): void {
    if (this.#generations.get(generation.id) === generation) this.#generations.delete(generation.id)
  }

  /** Stops every generation and drops them all. */
  close (): void {
    for (const generation of this.#generations.values()) generation.dispose()
    this.#generations.clear()
  }
}

/** The in-memory `Generations` of one process. */
export function createGenerations (opts: GenerationStoreOptions = {}): Generations & { store: GenerationStore } {
  const store = new GenerationStore(opts)
  return {
    store,
    start: async (owner, produce) => store.start(owner, produce).id,
    lookup: async (lastEventId, owner) => store.lookup(lastEventId, owner),
    follow: (id, after, signal) => {
      // Looked up again: the generation may have expired since `lookup`.
      const generation = store.peek(id)
      return generation === undefined ? (async function * () {})() : generation.follow(after, signal)
    },
    stop: async (id, owner) => {
      const generation = store.get(id, owner)
      if (generation !== undefined) report(channels.generationStop, () => ({ reason: 'stop' }))
      generation?.stop()
      return generation !== undefined
    },
    close: async () => { store.close() }
  }
}
