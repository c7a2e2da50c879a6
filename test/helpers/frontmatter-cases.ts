import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { decodeUnit } from '../../src/vault/unit-reading.js'
import { repoRoot } from './make-vault.js'
import { generateUnitCorpus, prng } from './unit-corpus.js'

// Edge cases of front matter for the differential tests of the quick reading and the fast
// load (test/vault/quick-reading.test.ts, fast-load.test.ts). Each case: its name, the
// text, and whether the quick reading must decide it (true), must leave it to the parser
// (false), or either (undefined). Either way neither may disagree with the parser.
export const FRONTMATTER_CASES: Array<[string, string, boolean | undefined]> = [
  ['simple', '---\nschema_version: 2\nname: x\n---\nbody\n', true],
  ['CRLF', '---\r\nschema_version: 3\r\nname: x\r\ntags:\r\n  - a\r\n---\r\nbody\r\n', true],
  ['BOM', '\uFEFF---\nschema_version: 1\n---\n', true],
  ['no front matter', '# title\n\nschema_version: 4\n', true],
  ['schema_version only in the body', '---\nname: x\n---\nschema_version: 7\n', true],
  ['empty front matter', '---\n---\nbody\n', undefined],
  ['comment-only front matter', '---\n# nothing\n---\n', undefined],
  ['schema_version double-quoted', '---\nschema_version: "2"\n---\n', true],
  ['schema_version single-quoted', "---\nschema_version: '2'\n---\n", true],
  ['schema_version with a trailing comment', '---\nschema_version: 2 # bumped\n---\n', true],
  ['schema_version zero', '---\nschema_version: 0\n---\n', true],
  ['schema_version empty', '---\nschema_version:\nname: x\n---\n', true],
  ['schema_version a list', '---\nschema_version:\n  - 1\n---\n', true],
  ['schema_version a flow list', '---\nschema_version: [1]\n---\n', true],
  ['schema_version nested', '---\nmeta:\n  schema_version: 2\n---\n', false],
  ['schema_version in a flow map', '---\nmeta: {schema_version: 2}\n---\n', false],
  ['schema_version float', '---\nschema_version: 2.0\n---\n', false],
  ['schema_version exponent', '---\nschema_version: 1e1\n---\n', false],
  ['schema_version hex', '---\nschema_version: 0x2\n---\n', false],
  ['schema_version octal', '---\nschema_version: 0o2\n---\n', false],
  ['schema_version leading zero', '---\nschema_version: 02\n---\n', false],
  ['schema_version negative', '---\nschema_version: -1\n---\n', false],
  ['schema_version plus', '---\nschema_version: +1\n---\n', false],
  ['schema_version huge', '---\nschema_version: 12345678901234567890\n---\n', false],
  ['schema_version null', '---\nschema_version: null\n---\n', false],
  ['schema_version tilde', '---\nschema_version: ~\n---\n', false],
  ['schema_version true', '---\nschema_version: true\n---\n', false],
  ['schema_version a word', '---\nschema_version: two\n---\n', false],
  ['schema_version tagged', '---\nschema_version: !!str 2\n---\n', false],
  ['schema_version tagged int', '---\nschema_version: !!int "2"\n---\n', false],
  ['schema_version block scalar', '---\nschema_version: |\n  2\n---\n', true],
  ['literal block scalar', '---\nschema_version: 1\nnotes: |\n  a: b # not a comment\n\n  \'c\' "d" [e\n---\n', true],
  ['folded block scalar, stripped, at the end', '---\nschema_version: 2\ndescription: >-\n  one\n    more indented\n  two\n---\n', true],
  ['block scalar kept, then a comment and a key', '---\nnotes: |+\n  x\n\n# c\nschema_version: 3\n---\n', true],
  ['block scalar with a header comment', '---\nnotes: > # folded\n  x\nschema_version: 3\n---\n', true],
  ['empty block scalar', '---\nnotes: |\nschema_version: 3\n---\n', true],
  ['block scalar with an indentation indicator', '---\nschema_version: 1\nnotes: |2\n    x\n---\n', false],
  ['block scalar with a less indented line', '---\nschema_version: 1\nnotes: |\n    x\n  y\n---\n', false],
  ['block scalar with a more indented leading empty line', '---\nschema_version: 1\nnotes: |\n      \n  x\n---\n', false],
  ['block scalar with text after the header', '---\nschema_version: 1\nnotes: | x\n  y\n---\n', false],
  ['block scalar as a list item', '---\nschema_version: 1\nl:\n  - |\n    x\n---\n', false],
  ['block scalar content that looks like a key', '---\nnotes: |\n  schema_version: 9\nschema_version: 1\n---\n', true],
  ['block scalar followed by a list item', '---\nschema_version: 1\nnotes: |\n  x\n- y\n---\n', false],
  ['schema_version continued', '---\nschema_version: 2\n  3\n---\n', false],
  ['schema_version as a quoted key', '---\n"schema_version": 2\n---\n', false],
  ['schema_version twice', '---\nschema_version: 1\nschema_version: 2\n---\n', false],
  ['duplicate key', '---\nschema_version: 1\nname: a\nname: b\n---\n', false],
  ['alias', '---\na: &x 1\nschema_version: *x\n---\n', false],
  ['anchor', '---\nschema_version: &v 1\n---\n', false],
  ['merge key', '---\nbase: &b {x: 1}\n<<: *b\nschema_version: 1\n---\n', false],
  ['tab indentation', '---\nschema_version: 1\nsources:\n\t- a\n---\n', false],
  ['tab after the colon', '---\nschema_version:\t1\n---\n', false],
  ['tab in a value', '---\nschema_version: 1\nname: a\tb\n---\n', false],
  ['unclosed', '---\nschema_version: 1\n', false],
  ['unquoted colon-space (the upstream sample)', '---\nschema_version: 1\ndescription: Locked: avalanche first\n---\n', false],
  ['value ending in a colon', '---\nschema_version: 1\nname: x:\n---\n', false],
  ['key without a space', '---\nschema_version:1\n---\n', false],
  ['a list as front matter', '---\n- a\n- b\n---\n', false],
  ['a scalar as front matter', '---\njust text\n---\n', false],
  ['an indented first key', '---\n  schema_version: 1\n---\n', false],
  ['mixed list indents', '---\nschema_version: 1\nl:\n  - a\n    - b\n---\n', false],
  ['list item after a scalar', '---\nschema_version: 1\nname: x\n- a\n---\n', false],
  ['list at column 0', '---\nsources:\n- a\n- b\nschema_version: 5\n---\n', true],
  ['list item that is a map', '---\nschema_version: 1\nl:\n  - a: b\n---\n', false],
  ['empty list item', '---\nschema_version: 1\nl:\n  -\n---\n', false],
  ['a lone CR', '---\nschema_version: 1\rname: x\n---\n', false],
  ['mixed CRLF and LF', '---\r\nschema_version: 1\nname: x\r\n---\n', undefined],
  ['a control character', '---\nschema_version: 1\nname: a\u0001b\n---\n', false],
  ['NEL', '---\nschema_version: 1\nname: a\u0085b\n---\n', false],
  ['line separator', '---\nschema_version: 1\nname: a\u2028b\n---\n', false],
  ['a BOM inside', '---\nschema_version: 1\nname: a\uFEFFb\n---\n', false],
  ['unicode values', '---\nschema_version: 1\nname: Zürich — 東京 🚀\ntags: [café, naïve]\n---\n', true],
  ['flow characters inside a plain value', '---\nschema_version: 1\nname: a [b], {c} d,e\n---\n', true],
  ['hash without a space', '---\nschema_version: 1\nname: C#sharp\n---\n', true],
  ['colon without a space', '---\nschema_version: 1\nurl: http://example.com/a:b\n---\n', true],
  ['dots value', '---\nschema_version: 1\nname: ...\n---\n', undefined],
  ['document end marker', '---\nschema_version: 1\n...\n---\n', false],
  ['directive', '---\n%YAML 1.2\nschema_version: 1\n---\n', false],
  ['indented comment', '---\nschema_version: 1\nl:\n  # first\n  - a\n    # inner\n  - b\n---\n', undefined],
  ['comment right after a key', '---\nschema_version: 1 #c\nl: # none\n---\n', true],
  ['trailing spaces', '---\nschema_version: 1   \nname: x   \n---   \n', true],
  ['quoted with escapes', '---\nschema_version: 1\nname: "a\\"b"\n---\n', false],
  ['bad escape', '---\nschema_version: 1\nname: "a\\qb"\n---\n', false],
  ['single quotes doubled', "---\nschema_version: 1\nname: 'it''s'\n---\n", true],
  ['text after a quoted value', '---\nschema_version: 1\nname: "a" b\n---\n', false],
  ['comment glued to a quoted value', '---\nschema_version: 1\nname: "a"#b\n---\n', false],
  ['multi-line quoted', '---\nschema_version: 1\nname: "a\n  b"\n---\n', false],
  ['multi-line flow list', '---\nschema_version: 1\ntags: [a,\n  b]\n---\n', false],
  ['flow list with a trailing comma', '---\nschema_version: 1\ntags: [a, b,]\n---\n', false],
  ['flow list with an empty item', '---\nschema_version: 1\ntags: [a, , b]\n---\n', false],
  ['flow list with quoted items', '---\nschema_version: 1\ntags: ["a, b", \'c\']\n---\n', true],
  ['flow list with a map', '---\nschema_version: 1\ntags: [a: b]\n---\n', false],
  ['nested flow list', '---\nschema_version: 1\ntags: [[a]]\n---\n', false],
  ['empty flow list', '---\nschema_version: 1\ntags: []\n---\n', true],
  ['flow list then text', '---\nschema_version: 1\ntags: [a] b\n---\n', false],
  ['reserved key', '---\ntrue: 1\nschema_version: 1\n---\n', false],
  ['numeric key', '---\n1: a\nschema_version: 1\n---\n', false],
  ['key with a space before the colon', '---\nname : x\nschema_version: 1\n---\n', false],
  ['very long key', `---\n${'k'.repeat(1100)}: 1\nschema_version: 1\n---\n`, false],
  ['four-dash opener', '----\nschema_version: 1\n----\n', true],
  ['closing delimiter with trailing tab', '---\nschema_version: 1\n---\t\nbody\n', true],
  ['no newline after closing', '---\nschema_version: 6\n---', true],
  ['__proto__ key', '---\n__proto__: x\nschema_version: 1\n---\n', undefined],
  ['value starting with an indicator', '---\nschema_version: 1\nname: @x\n---\n', false],
  ['value starting with a dash', '---\nschema_version: 1\nname: -x\n---\n', false],
  ['value that is a block sequence on the same line', '---\nschema_version: 1\nname: - x\n---\n', false],
]

// Corpus units with one front matter line mutated at random (an indicator, a tab, a quote
// inserted; a line duplicated, indented, dedented, replaced or removed), six per unit.
export function mutatedUnits({
  count = 200,
  seed = 7,
  mutationSeed = 18,
}: {
  count?: number
  seed?: number
  mutationSeed?: number
} = {}): Array<{ name: string; text: string }> {
  const rand = prng(mutationSeed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const inserts = [
    '\t',
    ': ',
    ' #',
    '#',
    '"',
    "'",
    '&a ',
    '*a',
    '!',
    '|',
    '>',
    '[',
    ']',
    '{',
    '}',
    ',',
    '-',
    '- ',
    '? ',
    '%',
    '@',
    '`',
    '\r',
    '\u0085',
    '  ',
    '...',
    '~',
    'null',
    '0x1',
    '1.5',
    '\\',
  ]
  const corpus = generateUnitCorpus({ count, seed })
  const variants: Array<{ name: string; text: string }> = []
  for (const [n, unit] of corpus.entries()) {
    for (let k = 0; k < 6; k++) {
      const lines = unit.text.split('\n')
      const close = lines.findIndex((l, i) => i > 0 && /^---[ \t]*\r?$/.test(l))
      if (close < 2) continue
      const i = 1 + Math.floor(rand() * (close - 1))
      const line = lines[i] as string
      const r = rand()
      if (r < 0.45) {
        const at = Math.floor(rand() * (line.length + 1))
        lines[i] = line.slice(0, at) + pick(inserts) + line.slice(at)
      } else if (r < 0.6)
        lines.splice(i, 0, line) // a duplicate line
      else if (r < 0.7)
        lines[i] = `  ${line}` // indented
      else if (r < 0.8) lines[i] = line.trimStart()
      else if (r < 0.9) lines[i] = `schema_version: ${pick(['1', '"1"', '01', '1.0', '-1', '', '[1]', '2 # x', '3\r', 'x'])}`
      else lines.splice(i, 1)
      variants.push({ name: `${n}.${k}`, text: lines.join('\n') })
    }
  }
  return variants
}

// Values that YAML readers are known to type differently, or that look like numbers.
export const TRICKY_SCALARS = [
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
// block list (the differential tests of the fast load and of the values typed for Python).
export function trickyUnits(): Array<{ name: string; text: string }> {
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

function filesBelow(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? filesBelow(p) : [p]
  })
}

// Every Markdown file below fixtures/ that decodes as UTF-8 (named repo-relative), and
// how many there are in all.
export function markdownFixtures(): { files: number; texts: Array<{ name: string; text: string }> } {
  const files = filesBelow(path.join(repoRoot, 'fixtures')).filter((f) => f.endsWith('.md'))
  const texts = files.flatMap((f) => {
    const d = decodeUnit(readFileSync(f))
    return d.ok ? [{ name: path.relative(repoRoot, f), text: d.text }] : []
  })
  return { files: files.length, texts }
}
