// One topic's recent messages, already encoded, kept so a reconnecting subscriber can be replayed
// what it missed. Bounded by count and by bytes; the oldest go first.

/** One published message: its place in the hub's order and its frame, encoded once. */
export interface HubEntry {
  readonly seq: number
  readonly topic: string
  /** The complete frame, `id:` included. */
  readonly text: string
  readonly bytes: number
}

export class TopicHistory {
  // A window [start, entries.length) over a plain array: eviction is O(1), and the array is
  // compacted now and then instead of shifted on every publish.
  #entries: Array<HubEntry | undefined> = []
  #start = 0
  #bytes = 0
  /** The highest seq evicted: a cursor below it cannot be replayed exactly. */
  evictedSeq = 0

  constructor (readonly maxEntries: number, readonly maxBytes: number) {}

  get size (): number { return this.#entries.length - this.#start }

  push (entry: HubEntry): void {
    this.#entries.push(entry)
    this.#bytes += entry.bytes
    while (this.size > this.maxEntries || (this.#bytes > this.maxBytes && this.size > 0)) this.#evict()
  }

  #evict (): void {
    const entry = this.#entries[this.#start] as HubEntry
    this.#entries[this.#start++] = undefined
    this.#bytes -= entry.bytes
    this.evictedSeq = entry.seq
    if (this.#start >= 1024 && this.#start >= this.size) {
      this.#entries = this.#entries.slice(this.#start)
      this.#start = 0
    }
  }

  /** The entries with a seq above `seq`, oldest first. */
  after (seq: number): HubEntry[] {
    const entries = this.#entries
    let lo = this.#start
    let hi = entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((entries[mid] as HubEntry).seq <= seq) lo = mid + 1
      else hi = mid
    }
    return entries.slice(lo) as HubEntry[]
  }
}
