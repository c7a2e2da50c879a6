import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseUnitBytes, parseUnitText, type FrontmatterData } from '../../src/vault/frontmatter.js'
import { fixturesDir } from '../helpers/make-vault.js'
import { generateUnitCorpus, prng } from '../helpers/unit-corpus.js'

async function markdownFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await markdownFiles(full)))
    else if (entry.name.endsWith('.md')) out.push(full)
  }
  return out
}

describe('round trip: writing back unchanged front matter gives identical bytes', () => {
  it('when every fixture unit is read and written back then its bytes are identical', async () => {
    const files = await markdownFiles(fixturesDir)
    expect(files.length).toBeGreaterThan(10)
    let readable = 0
    for (const file of files) {
      const bytes = await readFile(file)
      const parsed = parseUnitBytes(bytes)
      if (!parsed.ok) continue // the broken fixture's unreadable unit
      readable++
      parsed.unit.writeFrontmatter(parsed.unit.readFrontmatter())
      parsed.unit.writeBody(parsed.unit.readBody())
      expect(Buffer.from(parsed.unit.toString(), 'utf8').equals(bytes), file).toBe(true)
    }
    expect(readable).toBeGreaterThan(10)
  })

  it('when 1,000 generated units are read and written back then every one is byte-identical', () => {
    const corpus = generateUnitCorpus({ count: 1000, seed: 42 })
    expect(corpus).toHaveLength(1000)
    const features = { crlf: 0, bom: 0, comment: 0, noFinalNewline: 0, noFrontmatter: 0, block: 0 }
    for (const { name, text } of corpus) {
      const parsed = parseUnitText(text)
      expect(parsed.ok, name).toBe(true)
      if (!parsed.ok) continue
      parsed.unit.writeFrontmatter(parsed.unit.readFrontmatter())
      expect(parsed.unit.toString(), name).toBe(text)
      if (text.includes('\r\n')) features.crlf++
      if (text.startsWith('\uFEFF')) features.bom++
      if (text.includes('#')) features.comment++
      if (!text.endsWith('\n')) features.noFinalNewline++
      if (!parsed.unit.hasFrontmatter) features.noFrontmatter++
      if (/: [|>]-?\r?\n/.test(text)) features.block++
    }
    // The corpus really is varied: each feature occurs many times.
    for (const [feature, n] of Object.entries(features)) expect(n, feature).toBeGreaterThan(20)
  })

  it('when the same seed is given then the corpus is the same', () => {
    expect(generateUnitCorpus({ count: 50, seed: 3 })).toEqual(generateUnitCorpus({ count: 50, seed: 3 }))
    expect(generateUnitCorpus({ count: 50, seed: 3 })).not.toEqual(generateUnitCorpus({ count: 50, seed: 4 }))
  })
})

describe('edits read back as written', () => {
  it('when random keys are changed, removed and added then the text reads back as exactly the values written', () => {
    const rand = prng(9)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
    const values: unknown[] = [
      'plain',
      "it's",
      'Locked: x',
      '2026-01-02',
      'yes',
      '12',
      '',
      'multi\nline',
      'café 🚀',
      7,
      1.5,
      true,
      null,
      [],
      ['a', 'b'],
      { k: 'v', n: [1] },
      {},
      ['x', { y: 'z' }],
    ]
    for (const { name, text } of generateUnitCorpus({ count: 600, seed: 5 })) {
      const parsed = parseUnitText(text)
      if (!parsed.ok) throw new Error(`${name} does not parse`)
      const unit = parsed.unit
      const bodyBefore = unit.readBody()
      const meta = unit.readFrontmatter()
      const keys = Object.keys(meta)
      for (let i = 0; i < 3; i++) {
        const key = keys.length > 0 && rand() < 0.8 ? pick(keys) : `new_${i}`
        const op = rand()
        if (op < 0.2) delete meta[key]
        else if (op < 0.5 && Array.isArray(meta[key])) (meta[key] as unknown[]).splice(Math.floor(rand() * 3), rand() < 0.5 ? 1 : 0, pick(values))
        else if (op < 0.6 && meta[key] && typeof meta[key] === 'object' && !Array.isArray(meta[key]))
          (meta[key] as FrontmatterData)[pick(['every', 'unit', 'extra'])] = pick(values)
        else meta[key] = structuredClone(pick(values))
      }
      unit.writeFrontmatter(meta)
      const back = parseUnitText(unit.toString())
      expect(back.ok, name).toBe(true)
      if (!back.ok) continue
      expect(back.unit.readFrontmatter(), name).toEqual(meta)
      expect(back.unit.readBody(), name).toBe(bodyBefore)
    }
  })
})
