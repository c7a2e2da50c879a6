import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bridgeScriptPath } from '../../src/migrations/python-bridge.js'
import { bridgeFrontmatter, pythonTypedMeta, type PythonTypedValue } from '../../src/migrations/python-typed.js'
import { splitUnitText } from '../../src/vault/frontmatter-split.js'
import { FRONTMATTER_CASES, markdownFixtures, mutatedUnits, TRICKY_SCALARS, trickyUnits } from '../helpers/frontmatter-cases.js'
import { generateVault } from '../helpers/gen-vault.js'
import { generateUnitCorpus } from '../helpers/unit-corpus.js'

// The differential test of the front matter the engine types for the Python bridge
// (src/migrations/python-typed.ts): whenever it types a front matter, the bridge's own
// decoding of it (bridge.py _unit_meta) must be exactly what PyYAML's safe loader gives
// for the text (bridge.py _load_meta): the same keys in the same order, the same values,
// the same Python types (True is not 1, a date is not a string), and PyYAML must accept
// the text. Run by the real python3 with PyYAML.

const PYTHON = process.env.AAS_PYTHON || 'python3'

// Loads bridge.py as a module (its main() does not run) and compares, per case, the typed
// values with PyYAML's; prints the cases that differ and how many were typed.
const CHECKER = `
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("aas_bridge", sys.argv[1])
bridge = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bridge)

def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a.keys()) == list(b.keys()) and all(same(k, l) for k, l in zip(a.keys(), b.keys())) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b

cases = json.load(sys.stdin)
wrong = []
typed = 0
for case in cases:
    if case["meta"] is None:
        continue
    typed += 1
    try:
        want = bridge._unit_meta({"fm": case["fm"]})
    except BaseException as exc:
        wrong.append({"name": case["name"], "pyyaml": "error: %s" % exc})
        continue
    got = bridge._unit_meta({"meta": case["meta"]})
    if not same(want, got):
        wrong.append({"name": case["name"], "pyyaml": repr(want), "typed": repr(got)})
print(json.dumps({"typed": typed, "wrong": wrong}))
`

interface Case {
  name: string
  fm: string
  meta: Array<[string, PythonTypedValue]> | null
}

function check(cases: readonly Case[]): { typed: number; wrong: unknown[] } {
  const out = execFileSync(PYTHON, ['-c', CHECKER, bridgeScriptPath()], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  return JSON.parse(out) as { typed: number; wrong: unknown[] }
}

function casesOf(texts: ReadonlyArray<{ name: string; text: string }>): Case[] {
  return texts.flatMap(({ name, text }) => {
    const split = splitUnitText(text)
    if (split.kind !== 'frontmatter') return []
    return [{ name, fm: split.parts.source, meta: pythonTypedMeta(split.parts.source) }]
  })
}

// Scalars whose Python type turns on YAML 1.1 (PyYAML) rules, beyond the fast load's list.
const PYTHON_SCALARS = [
  ...TRICKY_SCALARS,
  'Yes',
  'YES',
  'no',
  'NO',
  'On',
  'off',
  'Off',
  'Y',
  'N',
  'None',
  'nil',
  '-0',
  '+0',
  '9007199254740991',
  '9007199254740992',
  '2024-02-29',
  '2023-02-29',
  '2026-02-30',
  '2026-13-01',
  '0000-01-01',
  '0001-01-01',
  '2026-1-1',
  '20260101',
  "'yes'",
  '"2026-01-01"',
  "'12'",
  '"~"',
  '😀 emoji',
  'a:b',
  'x#y',
  '.hidden',
  '-dash',
  '=x',
  '<x',
  '~x',
]

// Keys PyYAML may not read as strings.
const PYTHON_KEYS = ['on', 'On', 'yes', 'No', 'off', 'y', 'n', 'Y', 'null', 'Null', '_x', 'True', 'none', 'schema_version']

function scalarCases(): Case[] {
  const texts: string[] = []
  for (const s of PYTHON_SCALARS) {
    texts.push(`a: ${s}\n`, `a: ${s} # c\n`, `a: [${s}, b]\n`, `a:\n  - ${s}\n  - b\n`, `a:\n- ${s}\nb: 1\n`, `a: 1\r\nb: ${s}\r\n`)
  }
  for (const k of PYTHON_KEYS) texts.push(`${k}: 1\n`, `x: 1\n${k}: [a]\n`)
  texts.push(
    'a:\n  - 1\n  - x\nb:\nc:\n  - "q"\n  # between\n  - \'r\'\nd: [ ]\n',
    'a: # nothing\nb: 2\n',
    'a:\n\n  - 1\n\n  - 2\n',
    '# only a comment\n',
    "a: [ \"x, y\" , 'it''s' ]\n",
  )
  return texts.map((fm, i) => ({ name: `scalar ${i}: ${JSON.stringify(fm)}`, fm, meta: pythonTypedMeta(fm) }))
}

describe('front matter typed for the Python bridge agrees with PyYAML', () => {
  it('when the 1,000-unit corpus is typed then every typed front matter is what PyYAML loads, and most are typed', () => {
    const cases = casesOf(generateUnitCorpus({ count: 1000 }))
    const { typed, wrong } = check(cases)
    expect(wrong).toEqual([])
    expect(typed).toBeGreaterThan(400)
    expect(typed).toBeLessThan(cases.length) // nested maps, escapes, block scalars: PyYAML parses those
  })

  it('when every Markdown fixture is typed then each typed one is what PyYAML loads', () => {
    const { files, texts } = markdownFixtures()
    expect(files).toBeGreaterThan(20)
    const { typed, wrong } = check([...casesOf(texts), ...casesOf(FRONTMATTER_CASES.map(([name, text]) => ({ name, text })))])
    expect(wrong).toEqual([])
    expect(typed).toBeGreaterThan(10)
  })

  it('when scalars and keys that YAML 1.1 types differently are typed then each typed one is what PyYAML loads', () => {
    const cases = scalarCases()
    const { typed, wrong } = check(cases)
    expect(wrong).toEqual([])
    expect(typed).toBeGreaterThan(200)
  })

  it('when corpus lines are mutated and values replaced by tricky scalars then every typed one is what PyYAML loads', () => {
    const cases = [...casesOf(mutatedUnits()), ...casesOf(trickyUnits())]
    expect(cases.length).toBeGreaterThan(2000)
    const { typed, wrong } = check(cases)
    expect(wrong).toEqual([])
    expect(typed).toBeGreaterThan(800)
  })

  describe('when the benchmark vault is typed', () => {
    let root = ''
    let units: string[] = []
    beforeAll(async () => {
      root = await mkdtemp(path.join(tmpdir(), 'aas-typed-'))
      units = await generateVault(root, { units: 300, bodyBytes: 200 })
    })
    afterAll(async () => {
      await rm(root, { recursive: true, force: true })
    })
    it('then every unit with front matter is typed, and as PyYAML loads it', () => {
      const cases = casesOf(units.map((u) => ({ name: u, text: readFileSync(path.join(root, u), 'utf8') })))
      const { typed, wrong } = check(cases)
      expect(wrong).toEqual([])
      expect(typed).toBe(cases.length)
    })
  })

  it('when a value is not sure then the bridge gets the text', () => {
    // YAML 1.1 numbers, a key PyYAML reads as True, a block scalar, an invalid date
    for (const fm of ['a: 010\n', 'a: 1_000\n', 'a: 1.5\n', 'on: 1\n', 'a: |\n  x\n', 'a: 2026-02-30\n', 'a: 2026-01-01 10:00:00\n', 'a: =\n'])
      expect({ fm, sent: bridgeFrontmatter(fm) }).toEqual({ fm, sent: { fm } })
    expect(bridgeFrontmatter('')).toEqual({ fm: '' })
    expect(bridgeFrontmatter('a: yes\nb: 2026-01-15\nc: [x, 3]\nd:\n  - ~\ne:\n')).toEqual({
      meta: [
        ['a', true],
        ['b', { $date: '2026-01-15' }],
        ['c', ['x', 3]],
        ['d', [null]],
        ['e', null],
      ],
    })
  })
})
