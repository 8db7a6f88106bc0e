// Our event ids are `<prefix>:<seq>`: the hub's `<epoch>:<seq>` (in memory and on Redis) and the
// generations' `<generation>:<seq>`. One parser, so every part agrees on what a resumable id is.
// No node: imports: the client (which runs in browsers too) uses it.

/** The longest seq accepted: 15 digits stay exact in a double. */
const ID = /^(.+):(\d{1,15})$/s

/** `<prefix>:<seq>` split at its last colon, or undefined when `id` is not of that form. */
export function splitEventId (id: string | undefined): { prefix: string, seq: number } | undefined {
  const m = id === undefined ? null : ID.exec(id)
  return m === null ? undefined : { prefix: m[1], seq: Number(m[2]) }
}
