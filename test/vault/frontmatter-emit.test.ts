import { describe, expect, it } from 'vitest'
import { DEFAULT_STYLE, emitMapping, emitMappingByDocument, emitSimpleMapping } from '../../src/vault/frontmatter-emit.js'
import type { FrontmatterValue } from '../../src/vault/frontmatter-values.js'
import { prng } from '../helpers/unit-corpus.js'

// The differential test of the emitter's shortcut (emitSimpleMapping): whenever it writes a
// mapping, it must write exactly what the yaml document writes; where it cannot be sure
// (a value YAML 1.1 or 1.2 reads as something else, a character that needs quotes, a
// collection) it must step aside.

const KEYS = ['name', 'schema_version', 'provenance', 'a-b', '_x', 'Key', 'yes', 'no', 'on', 'null', 'true', '1', 'x y', 'a:b', '-x', 'é']
const STRINGS = [
  'v1_migrated',
  'wiki_page',
  'memory',
  'Caldwell ledger',
  'foo.bar',
  'path/to/x',
  'a b c',
  'x1',
  'yes',
  'No',
  'ON',
  'off',
  'y',
  'n',
  '~',
  'null',
  'Null',
  'true',
  'False',
  '1',
  '42',
  '-7',
  '0755',
  '0x1F',
  '0o17',
  '0b101',
  '1e3',
  '1_000',
  '1.5',
  '3.',
  '2026-01-01',
  '2026-01-01 10:00:00',
  '2026-1-1',
  '12:30',
  '1:20:30',
  '.inf',
  '-.inf',
  '.nan',
  '-',
  '- a',
  '? x',
  'a: b',
  'a #b',
  'a#b',
  '---',
  '...',
  '--- x',
  ' lead',
  'trail ',
  '',
  'é',
  'a\tb',
  "it's",
  'x"y',
  'a\nb',
  '[x]',
  '{x}',
  '@x',
  '%x',
  '!x',
  '&x',
  '*x',
  '|',
  '>',
  'a,b',
  '_',
  '0',
  'x-',
  'x.',
  'x/',
  'a  b',
]
const OTHERS: FrontmatterValue[] = [
  null,
  true,
  false,
  0,
  -0,
  1,
  2,
  -5,
  2 ** 53 - 1,
  2 ** 53,
  1.5,
  -0.25,
  1e21,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  [],
  ['a'],
  {},
  { a: 1 },
]

function values(): FrontmatterValue[] {
  return [...STRINGS, ...OTHERS]
}

describe('the emitter writes simple mappings without a yaml document', () => {
  it('writes the pairs a migration adds, plain, one line each', () => {
    expect(emitSimpleMapping({ provenance: 'v1_migrated' })).toBe('provenance: v1_migrated\n')
    expect(emitSimpleMapping({ schema_version: 2, done: true, note: null })).toBe('schema_version: 2\ndone: true\nnote: null\n')
    expect(emitSimpleMapping({ name: 'Caldwell ledger', path: 'projects/a.md' })).toBe('name: Caldwell ledger\npath: projects/a.md\n')
  })

  it('steps aside for every value YAML could read back as something else', () => {
    for (const v of ['yes', 'No', 'null', '~', 'true', '42', '0755', '0x1F', '1e3', '1_000', '2026-01-01', '12:30', '1.5']) {
      expect(emitSimpleMapping({ k: v }), v).toBeNull()
    }
    for (const v of [1.5, -0, 2 ** 53, Number.NaN, [], ['a'], { a: 1 }] as FrontmatterValue[]) expect(emitSimpleMapping({ k: v }), String(v)).toBeNull()
    for (const k of ['yes', 'null', '1', 'x y', 'é']) expect(emitSimpleMapping({ [k]: 'x' }), k).toBeNull()
  })

  it('writes exactly what the yaml document writes, for every key and value tried alone', () => {
    let written = 0
    for (const key of KEYS) {
      for (const value of values()) {
        const meta = { [key]: value }
        const fast = emitSimpleMapping(meta)
        if (fast === null) continue
        written++
        expect(fast, JSON.stringify(meta)).toBe(emitMappingByDocument(meta, DEFAULT_STYLE))
        expect(emitMapping(meta, DEFAULT_STYLE)).toBe(fast)
      }
    }
    expect(written).toBeGreaterThan(100) // the shortcut is taken, not only refused
  })

  it('writes exactly what the yaml document writes, for random mappings of several pairs', () => {
    const random = prng(7)
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T
    let written = 0
    for (let i = 0; i < 5000; i++) {
      const meta: Record<string, FrontmatterValue> = {}
      const n = 1 + Math.floor(random() * 5)
      for (let j = 0; j < n; j++) meta[random() < 0.8 ? pick(KEYS.slice(0, 6)) : pick(KEYS)] = random() < 0.7 ? pick(STRINGS) : pick(OTHERS)
      const fast = emitSimpleMapping(meta)
      if (fast === null) continue
      written++
      expect(fast, JSON.stringify(meta)).toBe(emitMappingByDocument(meta, DEFAULT_STYLE))
    }
    expect(written).toBeGreaterThan(100)
  })
})
