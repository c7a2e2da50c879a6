import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fullReadingOfText, quickReading, readUnitVersion, type UnitReading } from '../../src/vault/inventory.js'
import { generateVault } from '../helpers/gen-vault.js'
import { FRONTMATTER_CASES, markdownFixtures, mutatedUnits } from '../helpers/frontmatter-cases.js'
import { generateUnitCorpus } from '../helpers/unit-corpus.js'

// The differential test of the quick reading (src/vault/unit-reading.ts): whenever it
// decides a unit, it must say exactly what the full parse says; when it cannot be sure
// it must say nothing (null), and the full parse decides.

// What the quick reading says about a text, checked against the full parse.
function compare(text: string): { decided: boolean; quick: UnitReading | null; full: UnitReading } {
  const quick = quickReading(text)
  const full = fullReadingOfText(text)
  return { decided: quick !== null, quick, full }
}

function disagreements(texts: ReadonlyArray<{ name: string; text: string }>): Array<{ name: string; quick: UnitReading; full: UnitReading }> {
  const out: Array<{ name: string; quick: UnitReading; full: UnitReading }> = []
  for (const { name, text } of texts) {
    const { quick, full } = compare(text)
    if (quick !== null && JSON.stringify(quick) !== JSON.stringify(full)) out.push({ name, quick, full })
  }
  return out
}

describe('the quick reading agrees with the full parse', () => {
  it('when it reads the 1,000-unit corpus then every unit it decides reads as the full parse reads it, and it decides most of them', () => {
    const corpus = generateUnitCorpus({ count: 1000 })
    expect(disagreements(corpus)).toEqual([])
    const decided = corpus.filter((u) => quickReading(u.text) !== null).length
    expect(decided).toBeGreaterThan(500)
    expect(decided).toBeLessThan(1000) // block scalars, nested maps: the corpus has units only the parser can read
  })

  it('when it reads every Markdown fixture then it agrees with the full parse', () => {
    const { files, texts } = markdownFixtures()
    expect(files).toBeGreaterThan(20)
    expect(disagreements(texts)).toEqual([])
    // The broken fixtures are unreadable: the quick reading must leave them to the parser.
    const broken = texts.filter((t) => t.name.startsWith('fixtures/vault-broken/') && fullReadingOfText(t.text).kind === 'unreadable')
    expect(broken.length).toBeGreaterThan(0)
    for (const t of broken) expect(quickReading(t.text)).toBeNull()
  })

  describe('when it reads the benchmark vault', () => {
    let root = ''
    let units: string[] = []
    beforeAll(async () => {
      root = await mkdtemp(path.join(tmpdir(), 'aas-quick-'))
      units = await generateVault(root, { units: 300, bodyBytes: 200 })
    })
    afterAll(async () => {
      await rm(root, { recursive: true, force: true })
    })
    it('then it decides every unit (CRLF ones too) as the full parse does', () => {
      for (const u of units) {
        const text = readFileSync(path.join(root, u), 'utf8')
        const { quick, full } = compare(text)
        expect({ u, quick }).toEqual({ u, quick: full })
      }
    })
  })

  const CASES = FRONTMATTER_CASES

  it.each(CASES)('edge case: %s', (_name, text, decides) => {
    const { decided, quick, full } = compare(text)
    if (quick !== null) expect(quick).toEqual(full)
    if (decides !== undefined) expect(decided).toBe(decides)
    // readUnitVersion (quick, then full) always answers as the full parse does.
    expect(readUnitVersion(Buffer.from(text, 'utf8'))).toEqual(full)
  })

  it('when front matter lines of corpus units are mutated at random then every unit it decides reads as the full parse reads it', () => {
    const variants = mutatedUnits()
    expect(variants.length).toBeGreaterThan(1000)
    // Many variants stay simple enough to decide: the comparison is not only of fallbacks.
    expect(variants.filter((v) => quickReading(v.text) !== null).length).toBeGreaterThan(300)
    expect(disagreements(variants)).toEqual([])
  })
})
