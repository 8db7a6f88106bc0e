// Reading a hub subscription (or any iterator of frames) the way a client would.
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import type { SseFrame } from '../../lib/sse/encoder.js'

/** Reads frames until `enough(events)` or the end; returns the parsed events and the frames' texts. */
export async function read (sub: AsyncIterator<SseFrame>, enough: (events: EventSourceMessage[]) => boolean): Promise<{ events: EventSourceMessage[], frames: string[] }> {
  const events: EventSourceMessage[] = []
  const frames: string[] = []
  const parser = createParser({ onEvent: (e) => events.push(e) })
  while (!enough(events)) {
    const step = await sub.next()
    if (step.done === true) break
    frames.push(step.value.text)
    parser.feed(step.value.text)
  }
  return { events, frames }
}
