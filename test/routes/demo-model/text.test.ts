import t from 'tap'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MarkovText, loadCorpus, plainText } from '../../../routes/demo-model/text.js'

const CORPUS = 'The fox runs. The dog sleeps in the sun. A fox and a dog are friends. The sun sets over the hill. ' +
  'Every evening the fox visits the dog. They talk about the stream of events. The stream never ends.'

const answer = (chain: MarkovText, prompt: string, opts = {}): { text: string, tokens: string[], finish: string } => {
  const g = chain.generate(prompt, opts)
  const tokens = [...g.tokens]
  return { text: tokens.join(''), tokens, finish: g.finishReason }
}

t.test('the same prompt gives the same tokens; different prompts differ', async (t) => {
  const chain = new MarkovText(CORPUS)
  const a = answer(chain, 'tell me about the fox')
  t.same(answer(new MarkovText(CORPUS), 'tell me about the fox').tokens, a.tokens, 'across instances too')
  t.not(answer(chain, 'something about the weather').text, a.text)
})

t.test('tokens are words with their leading space; the first is capitalised', async (t) => {
  const { tokens } = answer(new MarkovText(CORPUS), 'hello there')
  t.match(tokens[0], /^[A-Z]\S*$/)
  t.ok(tokens.slice(1).every((tok) => /^( |\n\n)\S+$/.test(tok)), JSON.stringify(tokens))
})

t.test('starts from a word of the prompt when the corpus has it', async (t) => {
  const { tokens } = answer(new MarkovText(CORPUS), 'evening')
  t.equal(tokens[0], 'Evening')
})

t.test('stops at a sentence end after minWords (stop), or at maxTokens (length)', async (t) => {
  const chain = new MarkovText(CORPUS)
  const stopped = answer(chain, 'x', { minWords: 5, maxTokens: 1000 })
  t.equal(stopped.finish, 'stop')
  t.match(stopped.text, /[.!?]$/)
  t.ok(stopped.tokens.length >= 5)
  const cut = answer(chain, 'x', { maxTokens: 4 })
  t.equal(cut.finish, 'length')
  t.equal(cut.tokens.length, 4)
})

t.test('a dead end in the chain starts a new paragraph instead of stopping short', async (t) => {
  const { tokens } = answer(new MarkovText('One two three four.'), 'x', { minWords: 12, maxTokens: 50 })
  t.ok(tokens.length >= 12)
  t.ok(tokens.some((tok) => tok.startsWith('\n\n')))
})

t.test('an empty corpus generates nothing rather than failing', async (t) => {
  t.same(answer(new MarkovText(''), 'hi').tokens, [])
})

t.test('markdown becomes prose: no code, tables, markup or link targets', async (t) => {
  const text = plainText('# Title\n\nSome `code` and **bold** [a link](http://x.example).\n\n```js\nconst x = 1\n```\n| a | b |\n- item one\n')
  t.notMatch(text, /```|const x|\| a|http:|\*\*|`|^#/m)
  t.match(text, /Title/)
  t.match(text, /Some code and bold a link\./)
  t.match(text, /^item one$/m)
})

t.test('the corpus is README.md and docs/*.md, or the built-in text when they are too short', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'demo-text-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.match(loadCorpus(dir), /Server-Sent Events are plain HTTP/, 'nothing there: built-in')
  mkdirSync(join(dir, 'docs'))
  writeFileSync(join(dir, 'README.md'), 'zebra '.repeat(150))
  writeFileSync(join(dir, 'docs', 'a.md'), 'yak '.repeat(100))
  const corpus = loadCorpus(dir)
  t.match(corpus, /zebra/)
  t.match(corpus, /yak/)
})
