// The fan-out shared by both hubs: entries gathered for `lingerMs` (or until `maxBatchBytes`) are
// concatenated once per distinct set of topics, and every subscriber to that set that is keeping up
// gets the same frame (docs/hub.md, "Fan-out"). The in-memory hub feeds it from `publish`,
// the Redis hub from its stream reader; neither knows how the other gets its entries.
//
// The window is wall-clock time, and publishes that come one per event-loop turn (as an upstream's
// events do) would otherwise be cut into many small batches whenever the process loses its core for
// a moment: the timer expires after a few of them. So a window in which more publishes arrived is
// extended by another `lingerMs`, up to EXTEND × `lingerMs` from the first entry; the added latency
// stays bounded, and a quiet window still flushes on time (docs/hub.md, "Fan-out").
import type { HubEntry } from './history.js'
import { partOf, type Part, type Subscriber } from './subscriber.js'
import { channels, type HubMeter } from '../metrics/channels.js'

export interface FanoutOptions {
  lingerMs: number
  maxBatchBytes: number
  /** The subscribers of a topic right now, or undefined when it has none. */
  subscribersOf: (topic: string) => Iterable<Subscriber> | undefined
  /** Names the hub in metrics reports. */
  meter: HubMeter
}

/** How many `lingerMs` a batch may wait in all while publishes keep arriving. */
export const EXTEND = 5

export class Fanout {
  /** Batches fanned out so far. */
  flushes = 0
  readonly #opts: FanoutOptions
  #batch: HubEntry[] = []
  #batchBytes = 0
  #mark = 0
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined
  /** When the batch's first entry arrived (Date.now(), for the extension bound). */
  #opened = 0
  /** Whether entries arrived since the timer was last armed. */
  #more = false

  constructor (opts: FanoutOptions) {
    this.#opts = opts
  }

  /** Queues an entry (in seq order) for the next flush. */
  add (entry: HubEntry): void {
    this.#batch.push(entry)
    this.#batchBytes += entry.bytes
    if (this.#batchBytes >= this.#opts.maxBatchBytes) this.flush()
    else if (this.#timer !== undefined) this.#more = true
    else {
      const { lingerMs } = this.#opts
      if (lingerMs === 0) this.#timer = setImmediate(this.flush)
      else {
        this.#opened = Date.now()
        this.#more = false
        this.#timer = setTimeout(this.#expire, lingerMs)
      }
    }
  }

  /** The window ended: wait once more if publishes are still arriving and the bound allows it. */
  #expire = (): void => {
    const { lingerMs } = this.#opts
    const left = EXTEND * lingerMs - (Date.now() - this.#opened)
    if (this.#more && left >= 1) {
      this.#more = false
      this.#timer = setTimeout(this.#expire, Math.min(lingerMs, left))
      return
    }
    this.flush()
  }

  /** Hands the gathered entries to their subscribers now. */
  flush = (): void => {
    if (this.#timer !== undefined) { clearTimeout(this.#timer as NodeJS.Timeout); clearImmediate(this.#timer as NodeJS.Immediate) }
    this.#timer = undefined
    const entries = this.#batch
    if (entries.length === 0) return
    this.#batch = []
    this.#batchBytes = 0
    this.flushes++
    if (channels.hubFanout.hasSubscribers) channels.hubFanout.publish({ hub: this.#opts.meter, entries: entries.length })
    const mark = ++this.#mark
    const firstSeq = entries[0].seq
    // One part per distinct topic set, built on first use and shared by every subscriber with it.
    const shared = new Map<string, Part | null>()
    const names = new Set<string>()
    for (const entry of entries) names.add(entry.topic)
    for (const name of names) {
      const subscribers = this.#opts.subscribersOf(name)
      if (subscribers === undefined) continue
      for (const sub of subscribers) {
        if (sub.flushMark === mark) continue
        sub.flushMark = mark
        if (sub.seen < firstSeq) {
          let part = shared.get(sub.key)
          if (part === undefined) {
            part = build(entries, sub, 0)
            shared.set(sub.key, part)
          }
          if (part !== null) sub.deliver(part)
        } else {
          // Subscribed (and replayed) after part of this batch was published: only what is newer.
          const part = build(entries, sub, sub.seen)
          if (part !== null) sub.deliver(part)
        }
      }
    }
  }
}

function build (entries: readonly HubEntry[], sub: Subscriber, after: number): Part | null {
  const wanted = sub.topics
  const single = wanted.length === 1 ? wanted[0] : undefined
  const picked = entries.filter((e) => e.seq > after && (single !== undefined ? e.topic === single : wanted.includes(e.topic)))
  return picked.length === 0 ? null : partOf(picked)
}
