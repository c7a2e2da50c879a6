import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fullLoad, parseUnitText } from '../../src/vault/frontmatter.js'
import { fastLoad } from '../../src/vault/frontmatter-fast.js'
import { splitUnitText } from '../../src/vault/frontmatter-split.js'
import { decodeUnit } from '../../src/vault/unit-reading.js'
import { FRONTMATTER_CASES, mutatedUnits } from '../helpers/frontmatter-cases.js'
import { generateVault } from '../helpers/gen-vault.js'
import { repoRoot } from '../helpers/make-vault.js'
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

// Every text whose source the fast load reads differently from the full parser.
function disagreements(texts: ReadonlyArray<{ name: string; text: string }>): { decided: number; wrong: Outcome[] } {
  let decided = 0
  const wrong: Outcome[] = []
  for (const { name, text } of texts) {
    const source = sourceOf(text)
    if (source === null) continue
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

function filesBelow(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? filesBelow(p) : [p]
  })
}

// Values that YAML readers are known to type differently, or that look like numbers.
const TRICKY_SCALARS = [
  '1',
  '0',
  '42',
  '1.5',
  '0.50',
  '1.0',
  '010',
  '0123',
  '+1',
  '-1',
  '1_000',
  '1e3',
  '1E-2',
  '.5',
  '1.',
  '0x1F',
  '0o17',
  '0b101',
  '.inf',
  '-.Inf',
  '.NaN',
  '12345678901234567890',
  '123456789012345',
  '1234567890123456',
  '1:30',
  '190:20:30',
  '2026-01-01',
  '2026-01-01 10:00:00',
  '2026-01-01T10:00:00Z',
  'true',
  'True',
  'TRUE',
  'tRUE',
  'yes',
  'No',
  'on',
  'OFF',
  'y',
  'n',
  'null',
  'Null',
  'NULL',
  '~',
  'nUll',
  '=',
  '<<',
  '"quoted 1"',
  "'single ''x'''",
  'a b c',
  'é ü 東京',
  'http://example.com/a:b',
  'C#sharp',
  'x # comment',
  '[1, two, 3.5, true, null, 0x1, "q"]',
  '[]',
  '[ a ,b ]',
]

// Corpus units with a value replaced by a tricky scalar: as a value, in a flow list, in a
// block list.
function trickyUnits(): Array<{ name: string; text: string }> {
  const rand = prng(23)
  const out: Array<{ name: string; text: string }> = []
  for (const [n, unit] of generateUnitCorpus({ count: 150, seed: 11 }).entries()) {
    for (const [k, scalar] of TRICKY_SCALARS.entries()) {
      if (rand() > 0.35) continue
      const eol = unit.text.includes('\r\n') ? '\r\n' : '\n'
      const lines = unit.text.split(eol)
      const close = lines.findIndex((l, i) => i > 0 && /^---[ \t]*$/.test(l))
      if (close < 2) continue
      const keyLines = lines.flatMap((l, i) => (i > 0 && i < close && /^[a-z_]+: \S/.test(l) ? [i] : []))
      if (keyLines.length === 0) continue
      const i = keyLines[Math.floor(rand() * keyLines.length)] as number
      const key = (lines[i] as string).slice(0, (lines[i] as string).indexOf(':'))
      const form = rand()
      if (form < 0.6 || scalar.startsWith('[')) lines[i] = `${key}: ${scalar}`
      else if (form < 0.8) lines[i] = `${key}: [a, ${scalar}]`
      else lines[i] = `${key}:${eol}  - ${scalar}${eol}  - b`
      out.push({ name: `${n}.${k}`, text: lines.join(eol) })
    }
  }
  return out
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
    const files = filesBelow(path.join(repoRoot, 'fixtures')).filter((f) => f.endsWith('.md'))
    expect(files.length).toBeGreaterThan(20)
    const texts = files.flatMap((f) => {
      const d = decodeUnit(readFileSync(f))
      return d.ok ? [{ name: path.relative(repoRoot, f), text: d.text }] : []
    })
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
