// One timer per heartbeat period for all the streams that share it, instead of one timer per
// stream: an idle connection then holds no Timeout of its own (bench S3), and an active stream
// costs no timer operation per event. A stream is beaten when it has been idle for a whole period;
// the timer ticks four times a period, so the longest silence is 1.25 periods.

/** What the clock needs of a stream. */
export interface Beatable {
  /** When the stream last wrote, in `performance.now()` milliseconds. */
  readonly lastWrite: number
  /** Writes a heartbeat now. */
  beat: () => void
}

interface Group {
  members: Set<Beatable>
  timer: NodeJS.Timeout
}

const groups = new Map<number, Group>()

function tick (periodMs: number, group: Group): void {
  const now = performance.now()
  for (const stream of group.members) {
    if (now - stream.lastWrite >= periodMs) stream.beat()
  }
}

/** Beats `stream` after every `periodMs` without a write, until `stop` is called. */
export function startHeartbeat (stream: Beatable, periodMs: number): void {
  let group = groups.get(periodMs)
  if (group === undefined) {
    const members = new Set<Beatable>()
    const g: Group = { members, timer: setInterval(() => tick(periodMs, g), Math.max(1, Math.floor(periodMs / 4))) }
    // A heartbeat never keeps the process alive on its own.
    g.timer.unref()
    group = g
    groups.set(periodMs, group)
  }
  group.members.add(stream)
}

export function stopHeartbeat (stream: Beatable, periodMs: number): void {
  const group = groups.get(periodMs)
  if (group === undefined || !group.members.delete(stream) || group.members.size > 0) return
  clearInterval(group.timer)
  groups.delete(periodMs)
}
