// The plugin's open streams and their heartbeats. One Set holds every open stream (for
// `app.sseOpenStreams` and for ending them at shutdown), and the heartbeat clock walks that same
// Set: an idle connection costs one Set entry and a small integer, and no timer of its own
// (bench S3). There is one interval per heartbeat period in use, ticking TICKS_PER_PERIOD times a
// period; a stream counts the ticks since its last write and is beaten once a whole period of them
// has passed, so the longest silence is 1.25 periods and an active stream costs no timer operation.

/** What the registry needs of a stream. */
export interface Member {
  /** The stream's heartbeat period; `0`: none. */
  readonly heartbeatMs: number
  /** Whether the stream is ready for heartbeats (its source is attached and it has not ended). */
  readonly beating: boolean
  /** Clock ticks since the stream last wrote: the stream sets it to 0 on every write. */
  idleTicks: number
  /** Writes a heartbeat now. */
  beat: () => void
}

const TICKS_PER_PERIOD = 4

interface Clock {
  timer: NodeJS.Timeout
  /** Open streams with this period. */
  members: number
}

export class StreamRegistry<S extends Member = Member> {
  /** Every open stream. */
  readonly open = new Set<S>()
  readonly #clocks = new Map<number, Clock>()

  add (stream: S): void {
    this.open.add(stream)
    const period = stream.heartbeatMs
    if (period === 0) return
    const clock = this.#clocks.get(period)
    if (clock !== undefined) { clock.members++; return }
    const timer = setInterval(() => this.#tick(period), Math.max(1, Math.floor(period / TICKS_PER_PERIOD)))
    // A heartbeat never keeps the process alive on its own.
    timer.unref()
    this.#clocks.set(period, { timer, members: 1 })
  }

  delete (stream: S): void {
    if (!this.open.delete(stream)) return
    const period = stream.heartbeatMs
    const clock = this.#clocks.get(period)
    if (clock === undefined || --clock.members > 0) return
    clearInterval(clock.timer)
    this.#clocks.delete(period)
  }

  #tick (period: number): void {
    for (const stream of this.open) {
      if (stream.heartbeatMs === period && stream.beating && ++stream.idleTicks > TICKS_PER_PERIOD) stream.beat()
    }
  }
}
