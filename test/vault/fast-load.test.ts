import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import jsYaml from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml'
import { fullLoad, parseUnitText } from '../../src/vault/frontmatter.js'
import { applyEdits, detectStyle, planEdits } from '../../src/vault/frontmatter-edit.js'
import { locateSimple, type Located } from '../../src/vault/frontmatter-locate.js'
import { fastLoad } from '../../src/vault/frontmatter-fast.js'
import { NOT_BUILT, isLoadableSimply, loadSimple } from '../../src/vault/simple-frontmatter.js'
import { splitUnitText } from '../../src/vault/frontmatter-split.js'
import { FRONTMATTER_CASES, markdownFixtures, mutatedUnits, trickyUnits } from '../helpers/frontmatter-cases.js'
import { generateVault } from '../helpers/gen-vault.js'
import { generateUnitCorpus, prng } from '../helpers/unit-corpus.js'

// The differential test of the fast load (src/vault/frontmatter-fast.ts): whenever it reads
// a front matter, it must return exactly what the full parser returns (the same values,
// the same types, the same key order) and the full parser must accept it; when it cannot
// be sure it returns null and the full parser decides (errors included).

function sourceOf(text: string): string | null {
  const split = splitUnitText(text)
  return split.kind === 'frontmatter' ? split.parts.source : null
}

interface Outcome {
  name: string
  fast: unknown
  full: unknown
}

// The front matter sources of the texts that have one.
function* sourcesOf(texts: ReadonlyArray<{ name: string; text: string }>): Generator<{ name: string; source: string }> {
  for (const { name, text } of texts) {
    const source = sourceOf(text)
    if (source !== null) yield { name, source }
  }
}

// Every text whose source the fast load reads differently from the full parser.
function disagreements(texts: ReadonlyArray<{ name: string; text: string }>): { decided: number; wrong: Outcome[] } {
  let decided = 0
  const wrong: Outcome[] = []
  for (const { name, source } of sourcesOf(texts)) {
    const fast = fastLoad(source)
    if (fast === null) continue
    decided++
    const full = fullLoad(source)
    const same = full !== null && JSON.stringify(fast) === JSON.stringify(full) && sameTypes(fast, full)
    if (!same) wrong.push({ name, fast, full })
  }
  return { decided, wrong }
}

// JSON.stringify does not tell 1 from 1.0 (the same number) but does tell "1" from 1; this
// also checks that no value is of another kind (an array against an object, say).
function sameTypes(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameTypes(x, b[i]))
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    return ka.join('\0') === kb.join('\0') && ka.every((k) => sameTypes((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  }
  return typeof a === typeof b && Object.is(a, b)
}

describe('the fast load agrees with the full parser', () => {
  it('when it reads the 1,000-unit corpus then every front matter it reads is the full parse, and it reads most of them', () => {
    const corpus = generateUnitCorpus({ count: 1000 })
    const { decided, wrong } = disagreements(corpus)
    expect(wrong).toEqual([])
    expect(decided).toBeGreaterThan(500)
    // nested maps, escapes: the corpus has front matter only the parser reads
    expect(decided).toBeLessThan(corpus.filter((u) => sourceOf(u.text) !== null).length)
  })

  it('when it reads every Markdown fixture then it agrees with the full parser and leaves the broken ones to it', () => {
    const { files, texts } = markdownFixtures()
    expect(files).toBeGreaterThan(20)
    const { decided, wrong } = disagreements(texts)
    expect(wrong).toEqual([])
    expect(decided).toBeGreaterThan(10)
    const broken = texts.filter((t) => t.name.startsWith('fixtures/vault-broken/') && !parseUnitText(t.text).ok)
    expect(broken.length).toBeGreaterThan(0)
    for (const t of broken) {
      const source = sourceOf(t.text)
      if (source !== null) expect({ name: t.name, fast: fastLoad(source) }).toEqual({ name: t.name, fast: null })
    }
  })

  describe('when it reads the benchmark vault', () => {
    let root = ''
    let units: string[] = []
    beforeAll(async () => {
      root = await mkdtemp(path.join(tmpdir(), 'aas-fast-'))
      units = await generateVault(root, { units: 300, bodyBytes: 200 })
    })
    afterAll(async () => {
      await rm(root, { recursive: true, force: true })
    })
    it('then it reads every unit with front matter (CRLF ones too) as the full parser does', () => {
      const texts = units.map((u) => ({ name: u, text: readFileSync(path.join(root, u), 'utf8') }))
      const withFrontmatter = texts.filter((t) => sourceOf(t.text) !== null)
      const { decided, wrong } = disagreements(texts)
      expect(wrong).toEqual([])
      expect(decided).toBe(withFrontmatter.length)
    })
  })

  it.each(FRONTMATTER_CASES)('edge case: %s', (_name, text) => {
    const source = sourceOf(text)
    if (source === null) return
    const fast = fastLoad(source)
    const full = fullLoad(source)
    if (fast !== null) {
      expect(full).not.toBeNull()
      expect(sameTypes(fast, full)).toBe(true)
    }
    // What the full parser refuses, the fast load leaves to it.
    if (full === null) expect(fast).toBeNull()
  })

  it('when corpus front matter lines are mutated at random then every one it reads is the full parse', () => {
    const variants = mutatedUnits()
    expect(variants.length).toBeGreaterThan(1000)
    const { decided, wrong } = disagreements(variants)
    expect(wrong).toEqual([])
    expect(decided).toBeGreaterThan(300)
  })

  it('when values are replaced by scalars YAML readers type differently then every one it reads is the full parse', () => {
    const variants = trickyUnits()
    expect(variants.length).toBeGreaterThan(1000)
    const { decided, wrong } = disagreements(variants)
    expect(wrong).toEqual([])
    expect(decided).toBeGreaterThan(500)
  })

  it('when a number-like scalar is not a plain decimal then it leaves it to the full parser', () => {
    for (const v of ['0x1F', '0o17', '1_000', '1e3', '.inf', '.NaN', '010', '12345678901234567890', '+1', '1.'])
      expect({ v, fast: fastLoad(`a: ${v}\n`) }).toEqual({ v, fast: null })
    expect(fastLoad('a: 12\nb: 0.5\nc: 2026-01-01\nd: true\ne: ~\nf: [1, x]\n')).toStrictEqual({
      a: 12,
      b: 0.5,
      c: '2026-01-01',
      d: true,
      e: null,
      f: [1, 'x'],
    })
  })
})

describe('the scan builds the values itself, as js-yaml reads them', () => {
  // Every loadable source of a set: the values the scan builds against js-yaml's core
  // schema (the reader the fast load used for all of them before), and how many it built.
  function builtAgainstJsYaml(texts: ReadonlyArray<{ name: string; text: string }>): { built: number; blocks: number; wrong: unknown[] } {
    let built = 0
    let blocks = 0
    const wrong: unknown[] = []
    for (const { name, source } of sourcesOf(texts)) {
      const simple = loadSimple(source)
      expect({ name, loadable: simple !== null }).toEqual({ name, loadable: isLoadableSimply(source) })
      if (simple === null) continue
      if (simple === NOT_BUILT) {
        blocks++
        continue
      }
      built++
      const theirs = (jsYaml.load(source, { schema: jsYaml.CORE_SCHEMA }) ?? {}) as Record<string, unknown>
      if (JSON.stringify(simple) !== JSON.stringify(theirs) || !sameTypes(simple, theirs)) wrong.push({ name, source, simple, theirs })
    }
    return { built, blocks, wrong }
  }

  it("when it reads the corpus, the fixtures, mutated and tricky units then every value it builds is js-yaml's", () => {
    const sets = [generateUnitCorpus({ count: 1000 }), markdownFixtures().texts, mutatedUnits(), trickyUnits()]
    let built = 0
    let blocks = 0
    for (const texts of sets) {
      const r = builtAgainstJsYaml(texts)
      expect(r.wrong).toEqual([])
      built += r.built
      blocks += r.blocks
    }
    expect(built).toBeGreaterThan(2000)
    expect(blocks).toBeGreaterThan(0) // block scalars are left to js-yaml
  })

  it("when a value is one of the core schema's words, a quoted string or a list then it has that value", () => {
    const source = [
      'a: ~',
      'b: Null',
      'c: TRUE',
      'd: False',
      "e: 'it''s'",
      'f: "a # b"',
      'g: x y  # a comment',
      'h: [1, \'two\', "three", null, 2.50]',
      'i: []',
      'j:',
      '  - 1',
      "  - 'x'",
      'k: # nothing',
      'l: 1.2.3',
      'm: yes',
      'n: 2026-01-15',
      'o:',
      '',
    ].join('\n')
    expect(loadSimple(source)).toStrictEqual({
      a: null,
      b: null,
      c: true,
      d: false,
      e: "it's",
      f: 'a # b',
      g: 'x y',
      h: [1, 'two', 'three', null, 2.5],
      i: [],
      j: [1, 'x'],
      k: null,
      l: '1.2.3',
      m: 'yes',
      n: '2026-01-15',
      o: null,
    })
    expect(loadSimple('a: |\n  text\n')).toBe(NOT_BUILT)
    expect(loadSimple('a: {b: 1}\n')).toBeNull()
  })

  it('when a source was just found loadable then the next source is still judged on its own text', () => {
    expect(loadSimple('a: 1\n')).toStrictEqual({ a: 1 })
    expect(isLoadableSimply('a: {b: 1}\n')).toBe(false)
    expect(isLoadableSimply('a:\n 1\n')).toBe(false) // a continuation line: not simple
    expect(isLoadableSimply(['a: ', '1\n'].join(''))).toBe(true) // the same text, another string
    expect(isLoadableSimply('b: |\n  x\n')).toBe(true)
    expect(isLoadableSimply('a: 1\n')).toBe(true)
    expect(isLoadableSimply('a: 1\na: 2\n')).toBe(false)
  })
})

// The places of keys, values and list items as edits use them (range[0] and range[1]),
// with each value's kind and style.
function shape(root: Node | null, src: string): unknown {
  if (root === null) return null
  if (!isMap(root)) return 'not a map'
  return root.items.map((pair) => {
    const key = pair.key as Node
    const value = pair.value as Node | null
    const at = (n: Node | null | undefined) => (n?.range ? [n.range[0], n.range[1], src.slice(n.range[0], n.range[1])] : null)
    const kind = isScalar(value) ? `scalar ${value.type}` : isSeq(value) ? (value.flow ? 'flow list' : 'block list') : 'other'
    const items = isSeq(value) ? value.items.map((i) => at(i as Node)) : undefined
    return { key: [isScalar(key) ? key.value : null, at(key)], value: [kind, at(value)], ...(items ? { items } : {}) }
  })
}

const PARSE = { version: '1.2', uniqueKeys: true, prettyErrors: false, strict: true } as const

// Every loadable source whose located nodes differ from the parser's.
function locationDisagreements(texts: ReadonlyArray<{ name: string; text: string }>): { located: number; wrong: unknown[] } {
  let located = 0
  const wrong: unknown[] = []
  for (const { name, text } of texts) {
    const source = sourceOf(text)
    if (source === null) continue
    const mine = locateSimple(source)
    if (mine === null) continue
    located++
    const doc = parseDocument(source, PARSE)
    const theirs = shape(doc.contents as Node | null, source)
    const ours = shape(mine.contents, source)
    if (JSON.stringify(theirs) !== JSON.stringify(ours) || JSON.stringify(detectStyle(source, mine)) !== JSON.stringify(detectStyle(source, doc as Located)))
      wrong.push({ name, source, theirs, ours })
  }
  return { located, wrong }
}

// A change of values a script could make: a value changed, a key removed or added, an
// item appended to or removed from a list.
function randomChange(meta: Record<string, unknown>, rand: () => number): Record<string, unknown> {
  const next = structuredClone(meta) as Record<string, unknown>
  const keys = Object.keys(next)
  const n = 1 + Math.floor(rand() * 3)
  for (let i = 0; i < n; i++) {
    const key = keys[Math.floor(rand() * keys.length)]
    const r = rand()
    if (key === undefined || r < 0.15) next[`added_${i}`] = r < 0.07 ? ['x', 'y'] : 'new value'
    else if (r < 0.3) delete next[key]
    else if (Array.isArray(next[key])) {
      const list = next[key] as unknown[]
      if (r < 0.6) list.push('appended')
      else if (list.length > 1) list.splice(0, 1)
      else list[0] = 'replaced'
    } else if (r < 0.5) next[key] = 7
    else if (r < 0.6) next[key] = 'a: b'
    else if (r < 0.7) next[key] = null
    else next[key] = `changed ${i}`
  }
  return next
}

// Layouts whose places are easy to get wrong: empty values with spaces or a comment after
// the colon, block scalars (kept, clipped, stripped, empty, with leading and trailing
// empty lines, before a comment), lists with comments between and after their items.
const LOCATOR_CASES = [
  'a:   \nb: 1\n',
  'a:\n',
  'a: # c\nb: x\n',
  'a:  # c\n',
  'a: |+\n  x\n\n\nb: 1\n',
  'a: |+\n  x\n\n# c\nb: 1\n',
  'a: |+\n  x\n\n',
  'a: |-\n  x\n\n',
  'a: |\nb: 1\n',
  'a: >\n\n  x\n  y\n\nb: 1\n',
  'a: > # folded\n  x\n',
  'l:\n  - a   \n  - b # c\n\n',
  'l: # c\n  - a\nm: 1\n',
  'l:\n- a\n# c\n- b\n',
  'l:\n\n  - a\n  # c\n\n  - "b c"\n  - \'d\'\'e\'\nz: [ p, "q" ,r ]  # c\n',
  'e: []\nf: [ ]\ng: ["a, b"]\n',
  'x:    spaced   value   # c\ny: "q"   \n',
]

describe("the located nodes are the parser's", () => {
  const texts = [
    ...generateUnitCorpus({ count: 1000 }),
    ...mutatedUnits(),
    ...trickyUnits(),
    ...FRONTMATTER_CASES.map(([name, text]) => ({ name, text })),
    ...LOCATOR_CASES.map((source, i) => ({ name: `locator ${i}`, text: `---\n${source}---\nbody\n` })),
    ...LOCATOR_CASES.map((source, i) => ({ name: `locator ${i} CRLF`, text: `---\r\n${source.replace(/\n/g, '\r\n')}---\r\nbody\r\n` })),
  ]

  it('when it locates the layout cases then each is located (none is left to the parser)', () => {
    for (const source of LOCATOR_CASES) expect({ source, located: locateSimple(source) !== null }).toEqual({ source, located: true })
  })

  it("when it locates the corpus, mutated and tricky units and the edge cases then every range, kind and style is the parser's", () => {
    const { located, wrong } = locationDisagreements(texts)
    expect(wrong.slice(0, 5)).toEqual([])
    expect(located).toBeGreaterThan(1500)
  })

  it("when random changes are planned on the located nodes then the edited text is the one planned on the parser's document", () => {
    const rand = prng(5)
    let compared = 0
    for (const { name, text } of texts) {
      const source = sourceOf(text)
      if (source === null) continue
      const mine = locateSimple(source)
      const before = fastLoad(source)
      if (mine === null || before === null) continue
      const doc = parseDocument(source, PARSE)
      const eol = source.includes('\r\n') ? '\r\n' : '\n'
      for (let k = 0; k < 3; k++) {
        const after = randomChange(before, rand) as Record<string, never>
        const ours = planEdits(source, mine, before, after, eol)
        const theirs = planEdits(source, doc as Located, before, after, eol)
        const got = ours === null ? null : applyEdits(source, ours)
        const want = theirs === null ? null : applyEdits(source, theirs)
        expect({ name, after, got }).toEqual({ name, after, got: want })
        compared++
      }
    }
    expect(compared).toBeGreaterThan(4500)
  })
})
