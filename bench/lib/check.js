// Correctness bookkeeping shared by the scenarios: the first few problems, verbatim, and a count.

export class Check {
  errors = []
  problems = 0

  fail (message) {
    if (this.problems++ < 5) this.errors.push(message)
  }

  get ok () { return this.problems === 0 }

  result () {
    if (this.problems > this.errors.length) this.errors.push(`... ${this.problems - this.errors.length} more`)
    return { ok: this.ok, errors: this.errors }
  }
}

/** `i` and `t` of a broadcast payload without a full JSON.parse (the client must not be the bottleneck). */
export function readBroadcast (data) {
  if (data.startsWith('{"i":')) {
    const comma = data.indexOf(',', 5)
    const tEnd = data.indexOf(',', comma + 1)
    if (data.startsWith('"t":', comma + 1)) {
      return { i: Number(data.slice(5, comma)), t: Number(data.slice(comma + 5, tEnd === -1 ? data.length - 1 : tEnd)) }
    }
  }
  const obj = JSON.parse(data)
  return { i: obj.i, t: obj.t }
}
