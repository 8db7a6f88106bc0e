// Event ids of the in-memory hub: `<epoch>:<seq>`. The epoch names one hub instance (a process
// start), so an id handed out before a restart is recognised instead of being mistaken for a
// position in the new sequence; the seq counts every publish of the hub, across topics, so a
// single Last-Event-ID can resume a subscription to several topics at once.
import { randomBytes } from 'node:crypto'
import { splitEventId } from '../internal/event-id.js'

/** A fresh epoch: time-ordered, with random bits so two hubs started in the same millisecond differ. */
export function newEpoch (): string {
  return Date.now().toString(36) + randomBytes(3).readUIntBE(0, 3).toString(36).padStart(5, '0')
}

export function formatId (epoch: string, seq: number): string {
  return epoch + ':' + seq
}

/** The seq of an id of this epoch; `'epoch'` for another epoch, `'invalid'` for anything else. */
export function parseId (epoch: string, id: string): number | 'epoch' | 'invalid' {
  const parsed = splitEventId(id)
  if (parsed === undefined) return 'invalid'
  return parsed.prefix === epoch ? parsed.seq : 'epoch'
}
