// The built-in demo model's "brain": a word-level Markov chain (order 2) over the project's own
// docs, seeded by the prompt, so the same prompt always gives the same answer and `npm start` on a
// fresh machine streams plausible text with no LLM installed. It is not meant to be clever.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** Used when the docs are missing or too short to chain. */
const BUILT_IN = `Server-Sent Events are plain HTTP: the server answers with the text/event-stream content type
and then writes frames for as long as it likes. Every frame ends with a blank line. A browser
reconnects by itself and sends the Last-Event-ID header, so the server can resume where the client
left off. Every large language model API streams its tokens this way, one small event per token.
This plugin turns an async iterable into such a stream. It writes each line of data with its own
prefix, so a newline inside a token cannot end the event early. It stops pulling from the source
when the socket is full, and it aborts the source when the client goes away. When the server
closes, every open stream ends at once, so a deploy never hangs on a slow reader. The demo model
you are reading now is a Markov chain over these sentences: it picks each next word from the words
that followed the previous two. It streams in the same format as the OpenAI API, so the same SDK
that talks to LM Studio, Ollama, vLLM or OpenAI talks to it too. Point LLM_BASE_URL at a real
server to get real answers.`

const MIN_WORDS = 200

/** Markdown to plain prose: code, tables, markup and link targets are not sentences. */
export function plainText (markdown: string): string {
  return markdown
    .replace(/```[\s\S]*?```/g, ' ')
    .split('\n')
    .filter((line) => !/^\s*(\||<|---|===|\[.*\]:)/.test(line))
    .map((line) => line.replace(/^\s*(#+|>|[-*+]|\d+\.)\s+/, ''))
    .join('\n')
    .replace(/!\[[^\]]*\]\([^)]*\)/g, ' ')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]{1,3}(?=\S)|(?<=\S)[`*]{1,3}/g, '')  // emphasis and code marks; `_` stays (RESUME_GRACE_MS)
}

/** README.md and docs/*.md under `root` as plain text; the built-in text when there is too little. */
export function loadCorpus (root: string): string {
  const parts: string[] = []
  const read = (file: string): void => {
    try { parts.push(plainText(readFileSync(file, 'utf8'))) } catch { /* missing: fine */ }
  }
  read(join(root, 'README.md'))
  let docs: string[] = []
  try { docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort() } catch { /* no docs/ */ }
  for (const file of docs) read(join(root, 'docs', file))
  const text = parts.join('\n')
  return text.split(/\s+/).length >= MIN_WORDS ? text : BUILT_IN
}

// FNV-1a: a stable 32-bit hash of the prompt, the PRNG's seed.
function hash (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

// mulberry32: tiny, fast, and the same sequence on every platform for a given seed.
function prng (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SENTENCE_END = /[.!?]["')\]]?$/

export interface GenerateOptions {
  /** Stop after this many tokens (finish reason `length`). @default 120 */
  maxTokens?: number
  /** Stop at the first sentence end after this many words (finish reason `stop`). @default 40 */
  minWords?: number
}

/** An answer being generated: iterate `tokens`, then read `finishReason`. */
export interface Generation {
  tokens: Iterable<string>
  readonly finishReason: 'stop' | 'length'
}

export class MarkovText {
  readonly #next = new Map<string, string[]>()
  readonly #starts: string[] = []
  readonly #byWord = new Map<string, string[]>()

  constructor (corpus: string) {
    const words = corpus.split(/\s+/).filter((w) => w !== '')
    for (let i = 0; i + 2 < words.length; i++) {
      const key = words[i] + ' ' + words[i + 1]
      let list = this.#next.get(key)
      if (list === undefined) this.#next.set(key, list = [])
      list.push(words[i + 2])
      if (i === 0 || SENTENCE_END.test(words[i - 1])) {
        if (/^[A-Z]/.test(words[i])) this.#starts.push(key)
      }
      const lower = words[i].toLowerCase().replace(/\W+/g, '')
      if (lower.length >= 4 && !this.#byWord.has(lower)) this.#byWord.set(lower, [])
      this.#byWord.get(lower)?.push(key)
    }
    if (this.#starts.length === 0 && this.#next.size > 0) this.#starts.push(this.#next.keys().next().value as string)
  }

  /** The answer to `prompt`: the same prompt (and options) always gives the same tokens. */
  generate (prompt: string, opts: GenerateOptions = {}): Generation {
    const maxTokens = opts.maxTokens ?? 120
    const minWords = opts.minWords ?? 40
    const random = prng(hash(prompt))
    const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]
    const self = this
    let finishReason: 'stop' | 'length' = 'stop'
    function * tokens (): Generator<string> {
      if (self.#next.size === 0) return
      let key = self.#startFor(prompt, pick)
      let [a, b] = key.split(' ')
      let count = 0
      const emit = function * (word: string, breakBefore: boolean): Generator<string> {
        count++
        yield count === 1 ? word.charAt(0).toUpperCase() + word.slice(1) : (breakBefore ? '\n\n' : ' ') + word
      }
      yield * emit(a, false)
      if (count >= maxTokens) { finishReason = 'length'; return }
      yield * emit(b, false)
      for (;;) {
        if (count >= maxTokens) { finishReason = 'length'; return }
        if (count >= minWords && SENTENCE_END.test(b)) return
        const choices = self.#next.get(key)
        let breakBefore = false
        let c: string
        if (choices === undefined) {
          // A dead end (the corpus's last words): start a new paragraph.
          key = pick(self.#starts)
          ;[a, c] = key.split(' ')
          yield * emit(a, true)
          if (count >= maxTokens) { finishReason = 'length'; return }
        } else {
          c = pick(choices)
          // Now and then a paragraph break after a sentence, so answers carry newlines too.
          breakBefore = SENTENCE_END.test(b) && random() < 0.25
          a = b
        }
        yield * emit(c, breakBefore)
        b = c
        key = a + ' ' + b
      }
    }
    return { tokens: tokens(), get finishReason () { return finishReason } }
  }

  // Start near the prompt's own words when the docs use them, so answers feel on topic.
  #startFor (prompt: string, pick: <T>(list: T[]) => T): string {
    const words = prompt.toLowerCase().split(/\W+/).filter((w) => w.length >= 4)
    words.sort((x, y) => y.length - x.length)
    for (const word of words) {
      const keys = this.#byWord.get(word)
      if (keys !== undefined) return pick(keys)
    }
    return pick(this.#starts)
  }
}
