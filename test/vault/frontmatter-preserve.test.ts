import { describe, expect, it } from 'vitest'
import { isAasError } from '../../src/errors.js'
import { parseUnitText, type FrontmatterData, type UnitText } from '../../src/vault/frontmatter.js'

function unitOf(text: string): UnitText {
  const parsed = parseUnitText(text)
  if (!parsed.ok) throw new Error(`fixture does not parse: ${parsed.error.message}`)
  return parsed.unit
}

// Reads, edits with `edit`, writes back, and returns the whole file text.
function rewrite(text: string, edit: (meta: FrontmatterData) => void): string {
  const unit = unitOf(text)
  const meta = unit.readFrontmatter()
  edit(meta)
  unit.writeFrontmatter(meta)
  return unit.toString()
}

const bump = (meta: FrontmatterData): void => {
  meta.schema_version = 2
}

interface Case {
  name: string
  input: string
  edit: (meta: FrontmatterData) => void
  expected: string
}

// One row per property the issue lists as preserved; each asserts exact bytes.
const cases: Case[] = [
  {
    name: 'when one key changes then key order is kept',
    input: '---\nzeta: 1\nschema_version: 1\nalpha: x\n---\nbody\n',
    edit: bump,
    expected: '---\nzeta: 1\nschema_version: 2\nalpha: x\n---\nbody\n',
  },
  {
    name: 'when a key changes then own-line and trailing comments are kept',
    input: '---\n# header comment\nschema_version: 1 # the version\n  # indented own-line comment\nname: x # trailing\n---\n',
    edit: bump,
    expected: '---\n# header comment\nschema_version: 2 # the version\n  # indented own-line comment\nname: x # trailing\n---\n',
  },
  {
    name: 'when another key changes then single, double and unquoted values keep their quoting',
    input: `---\nschema_version: 1\na: 'single'\nb: "double"\nc: plain\nd: 'Locked: it''s'\ne: "tab\\tescape"\n---\n`,
    edit: bump,
    expected: `---\nschema_version: 2\na: 'single'\nb: "double"\nc: plain\nd: 'Locked: it''s'\ne: "tab\\tescape"\n---\n`,
  },
  {
    name: 'when a quoted value is edited then it keeps its quote style',
    input: `---\na: 'one'\nb: "two"\nc: plain\n---\n`,
    edit: (m) => Object.assign(m, { a: "it's", b: 'say "hi"', c: 'still plain' }),
    expected: `---\na: 'it''s'\nb: "say \\"hi\\""\nc: still plain\n---\n`,
  },
  {
    name: 'when another key changes then flow and block collections keep their style',
    input: '---\nschema_version: 1\ntags: [debt, strategy, priority]\npadded: [ a, b ]\nmap: {k: v}\nsources:\n  - one\n  - two\nflat:\n- x\n---\n',
    edit: bump,
    expected: '---\nschema_version: 2\ntags: [debt, strategy, priority]\npadded: [ a, b ]\nmap: {k: v}\nsources:\n  - one\n  - two\nflat:\n- x\n---\n',
  },
  {
    name: 'when a flow list is edited then it stays a flow list on its line',
    input: '---\ntags: [debt, strategy]\npadded: [ a ]\n---\n',
    edit: (m) => Object.assign(m, { tags: ['debt', 'strategy', 'priority'], padded: ['a', 'b'] }),
    expected: '---\ntags: [debt, strategy, priority]\npadded: [ a, b ]\n---\n',
  },
  {
    name: 'when a block list gains an item then only that item line is added, at the list indentation',
    input: '---\nsources:\n    - one # first\n    - two\nnext: 1\n---\n',
    edit: (m) => void (m.sources as string[]).splice(1, 0, 'inserted'),
    expected: '---\nsources:\n    - one # first\n    - inserted\n    - two\nnext: 1\n---\n',
  },
  {
    name: 'when a nested map value changes then only its line changes and the indentation is kept',
    input: '---\nreview:\n    every: 30\n    unit: days\nother: x\n---\n',
    edit: (m) => void ((m.review as Record<string, unknown>).every = 45),
    expected: '---\nreview:\n    every: 45\n    unit: days\nother: x\n---\n',
  },
  {
    name: 'when a key is added to a nested map then it is appended at the map indentation',
    input: '---\nreview:\n    every: 30\nother: x\n---\n',
    edit: (m) => void ((m.review as Record<string, unknown>).owner = 'ana'),
    expected: '---\nreview:\n    every: 30\n    owner: ana\nother: x\n---\n',
  },
  {
    name: 'when a key changes then blank lines are kept',
    input: '---\nschema_version: 1\n\nname: x\n\n\ntags: []\n\n---\n',
    edit: bump,
    expected: '---\nschema_version: 2\n\nname: x\n\n\ntags: []\n\n---\n',
  },
  {
    name: 'when a key changes then the delimiter lines are kept, trailing blanks included',
    input: '--- \nschema_version: 1\n---\t\nbody\n',
    edit: bump,
    expected: '--- \nschema_version: 2\n---\t\nbody\n',
  },
  {
    name: 'when a CRLF file is edited then every line, new ones included, ends with CRLF',
    input: '---\r\nschema_version: 1\r\nsources:\r\n  - a\r\n---\r\nbody\r\n',
    edit: (m) => Object.assign(m, { schema_version: 2, provenance: 'v1_migrated', sources: ['a', 'b'] }),
    expected: '---\r\nschema_version: 2\r\nsources:\r\n  - a\r\n  - b\r\nprovenance: v1_migrated\r\n---\r\nbody\r\n',
  },
  {
    name: 'when an LF file is edited then it stays LF',
    input: '---\nschema_version: 1\n---\nline\r\nin body\n',
    edit: (m) => Object.assign(m, { schema_version: 2, added: true }),
    expected: '---\nschema_version: 2\nadded: true\n---\nline\r\nin body\n',
  },
  {
    name: 'when a file with a BOM is edited then the BOM is kept',
    input: '\uFEFF---\nschema_version: 1\n---\nbody\n',
    edit: bump,
    expected: '\uFEFF---\nschema_version: 2\n---\nbody\n',
  },
  {
    name: 'when the file has no final newline then none is added',
    input: '---\nschema_version: 1\n---\nlast line',
    edit: bump,
    expected: '---\nschema_version: 2\n---\nlast line',
  },
  {
    name: 'when the file ends at the closing delimiter then it still does',
    input: '---\nschema_version: 1\n---',
    edit: bump,
    expected: '---\nschema_version: 2\n---',
  },
  {
    name: 'when front matter changes then the body bytes are kept, a --- line in the body included',
    input: '---\nschema_version: 1\n---\n\n# Title\r\n\n---\n\ntext  \n\twith tab\n',
    edit: bump,
    expected: '---\nschema_version: 2\n---\n\n# Title\r\n\n---\n\ntext  \n\twith tab\n',
  },
  {
    name: 'when a long value is not changed then it is not folded',
    input: `---\nschema_version: 1\ndescription: ${'word '.repeat(30).trim()}\nfolded: >-\n  first part\n  second part\n---\n`,
    edit: bump,
    expected: `---\nschema_version: 2\ndescription: ${'word '.repeat(30).trim()}\nfolded: >-\n  first part\n  second part\n---\n`,
  },
  {
    name: 'when a long value is edited then it is written on one line',
    input: '---\ndescription: short\n---\n',
    edit: (m) => void (m.description = 'word '.repeat(30).trim()),
    expected: `---\ndescription: ${'word '.repeat(30).trim()}\n---\n`,
  },
  {
    name: 'when a key is removed then its lines disappear and the comments around it stay',
    input: '---\na: 1\n# about b\nb: # trailing\n  - x\n  - y\nc: 3\n---\n',
    edit: (m) => void delete m.b,
    expected: '---\na: 1\n# about b\nc: 3\n---\n',
  },
  {
    name: 'when keys are added then they are appended after the last key, before trailing comments',
    input: '---\nschema_version: 1\ntags: [a]\n# end of keys\n---\n',
    edit: (m) => Object.assign(m, { provenance: 'v1_migrated', list: ['x', 'z'], map: { k: 'v' } }),
    expected: '---\nschema_version: 1\ntags: [a]\nprovenance: v1_migrated\nlist:\n  - x\n  - z\nmap:\n  k: v\n# end of keys\n---\n',
  },
  {
    name: 'when an item is appended to the last block list and a key is added then both land in order and the quoting elsewhere is kept',
    input: `---\nschema_version: 1\nname: "Quoted name"\ndescription: 'single'\ntags:\n  - a\n  - b\n---\nbody\n`,
    edit: (m) => {
      m.schema_version = 2
      ;(m.tags as string[]).push('c')
      m.provenance = 'x'
    },
    expected: `---\nschema_version: 2\nname: "Quoted name"\ndescription: 'single'\ntags:\n  - a\n  - b\n  - c\nprovenance: x\n---\nbody\n`,
  },
  {
    name: 'when a key is added after a nested map whose last list grew then both land in order',
    input: '---\nm:\n  l:\n    - a\n---\n',
    edit: (m) => {
      ;((m.m as Record<string, unknown>).l as string[]).push('b')
      m.after = 1
    },
    expected: '---\nm:\n  l:\n    - a\n    - b\nafter: 1\n---\n',
  },
  {
    name: 'when a new key is added then a file indenting by 4 gets the same layout',
    input: '---\nm:\n    k: v\nl:\n    - a\n---\n',
    edit: (m) => void (m.new = { list: ['x'] }),
    expected: '---\nm:\n    k: v\nl:\n    - a\nnew:\n    list:\n        - x\n---\n',
  },
  {
    name: 'when a new key is added then a file without indented lists gets the same layout',
    input: '---\nm:\n  k: v\nl:\n- a\n---\n',
    edit: (m) => void (m.new = { list: ['x'] }),
    expected: '---\nm:\n  k: v\nl:\n- a\nnew:\n  list:\n  - x\n---\n',
  },
  {
    name: 'when a date is edited then it stays a plain YYYY-MM-DD date',
    input: "---\ncaptured: 2026-04-15\nquoted: '2026-04-15'\n---\n",
    edit: (m) => Object.assign(m, { captured: '2026-05-06', quoted: '2026-05-07' }),
    expected: "---\ncaptured: 2026-05-06\nquoted: '2026-05-07'\n---\n",
  },
  {
    name: 'when strings that look like other types are written then they are quoted',
    input: '---\na: x\n---\n',
    edit: (m) => Object.assign(m, { a: '123', when: '2026-05-06', flag: 'yes', nothing: 'null', octal: '0755', text: 'a: b', hash: 'x # y' }),
    expected: "---\na: '123'\nwhen: '2026-05-06'\nflag: 'yes'\nnothing: 'null'\noctal: '0755'\ntext: 'a: b'\nhash: 'x # y'\n---\n",
  },
  {
    name: 'when a null value or an empty value is set then it is written in place',
    input: '---\nexpires_at: null\nsupersedes:\nother: ~\n---\n',
    edit: (m) => Object.assign(m, { expires_at: '2026-06-01', supersedes: 'feedback_old', other: null }),
    expected: "---\nexpires_at: '2026-06-01'\nsupersedes: feedback_old\nother: ~\n---\n",
  },
  {
    name: 'when a literal block value is edited then it stays a literal block',
    input: '---\nnotes: |\n  one\n  two\nnext: 1\n---\n',
    edit: (m) => void (m.notes = 'one\nthree\n'),
    expected: '---\nnotes: |\n  one\n  three\nnext: 1\n---\n',
  },
  {
    name: 'when a unit has no front matter then a new block is written at the top and the body kept',
    input: '# Title\r\n\r\ntext',
    edit: (m) => Object.assign(m, { schema_version: 1, tags: ['a'] }),
    expected: '---\r\nschema_version: 1\r\ntags:\r\n  - a\r\n---\r\n# Title\r\n\r\ntext',
  },
  {
    name: 'when the front matter is empty then keys are written inside it',
    input: '\uFEFF---\n---\nbody',
    edit: (m) => void (m.schema_version = 1),
    expected: '\uFEFF---\nschema_version: 1\n---\nbody',
  },
  {
    name: 'when the last key is removed then the block stays, empty',
    input: '---\nonly: 1\n---\nbody\n',
    edit: (m) => void delete m.only,
    expected: '---\n---\nbody\n',
  },
  {
    name: 'when an integer, a boolean and null are written back unchanged then their spelling is kept',
    input: '---\nn: 0x1F\nf: 1.50\nb: True\nz: NULL\n---\n',
    edit: (m) => void (m.extra = 1),
    expected: '---\nn: 0x1F\nf: 1.50\nb: True\nz: NULL\nextra: 1\n---\n',
  },
  {
    name: 'when an item of a list of maps changes then only that line changes',
    input: '---\nowners:\n  - name: ana\n    role: editor\n  - name: bo\n    role: reviewer\n---\n',
    edit: (m) => void ((m.owners as Array<Record<string, unknown>>)[1]!.role = 'editor'),
    expected: '---\nowners:\n  - name: ana\n    role: editor\n  - name: bo\n    role: editor\n---\n',
  },
  {
    name: 'when a value changes type then only that key is re-emitted, with the file indentation',
    input: '---\na: 1\nsources: [x]\nb: 2\n---\n',
    edit: (m) => Object.assign(m, { a: { nested: [1, 2] }, sources: 'single' }),
    expected: '---\na:\n  nested:\n    - 1\n    - 2\nsources: single\nb: 2\n---\n',
  },
]

describe('writeFrontmatter preserves the file around the change', () => {
  it.each(cases)('$name', ({ input, edit, expected }) => {
    const out = rewrite(input, edit)
    expect(out).toBe(expected)
    const back = parseUnitText(out)
    expect(back.ok).toBe(true)
  })

  it('when the values are written back unchanged then the text is identical and not dirty', () => {
    for (const { input } of cases) {
      const unit = unitOf(input)
      unit.writeFrontmatter(unit.readFrontmatter())
      expect(unit.toString()).toBe(input)
      expect(unit.isDirty()).toBe(false)
    }
  })

  it('when a value changes then the unit is dirty and reads back the written values', () => {
    const unit = unitOf('---\na: 1\n---\n')
    unit.writeFrontmatter({ a: 2, b: ['x'] })
    expect(unit.isDirty()).toBe(true)
    expect(unit.readFrontmatter()).toEqual({ a: 2, b: ['x'] })
  })

  it('when a key is set to undefined then it is removed', () => {
    expect(rewrite('---\na: 1\nb: 2\n---\n', (m) => void (m.a = undefined))).toBe('---\nb: 2\n---\n')
  })

  it('when an anchored value is changed then aliases read back as the file says', () => {
    const out = rewrite('---\nx: &a [1]\ny: *a\n---\n', (m) => void (m.x = [2]))
    const back = parseUnitText(out)
    expect(back.ok && back.unit.readFrontmatter()).toEqual({ x: [2], y: [1] })
  })

  it('when the read-back is deferred then every case settles to the same bytes as an immediate read-back', () => {
    const inputs = [
      ...cases.map((c) => ({ input: c.input, edit: c.edit })),
      { input: '---\nx: &a [1]\ny: *a\n---\nbody\n', edit: (m: FrontmatterData) => void (m.x = [2]) },
    ]
    for (const { input, edit } of inputs) {
      const deferred = parseUnitText(input, { deferReadBack: true })
      if (!deferred.ok) throw new Error('fixture does not parse')
      const meta = deferred.unit.readFrontmatter()
      edit(meta)
      deferred.unit.writeFrontmatter(meta)
      deferred.unit.writeBody(`${deferred.unit.readBody()}more\n`)
      deferred.unit.settle()
      expect(deferred.unit.settled).toBe(true)
      const immediate = unitOf(input)
      immediate.writeFrontmatter(meta)
      immediate.writeBody(`${immediate.readBody()}more\n`)
      expect(deferred.unit.toString()).toBe(immediate.toString())
      expect(deferred.unit.readFrontmatter()).toEqual(immediate.readFrontmatter())
    }
  })

  it('when an in-place edit through an alias does not read back then settle re-emits the block (deferred and immediate alike)', () => {
    // Editing the anchored list in place would also change y through the alias: the read-back catches it.
    const input = '---\nx: &a [1]\ny: *a\n---\n'
    const deferred = parseUnitText(input, { deferReadBack: true })
    if (!deferred.ok) throw new Error('fixture does not parse')
    deferred.unit.writeFrontmatter({ x: [2], y: [1] })
    expect(deferred.unit.settled).toBe(false)
    expect(deferred.unit.readFrontmatter()).toEqual({ x: [2], y: [1] }) // what was written, before the check
    deferred.unit.writeFrontmatter({ x: [2], y: [1], z: 3 }) // a second write settles the first
    deferred.unit.settle()
    const back = parseUnitText(deferred.unit.toString())
    expect(back.ok && back.unit.readFrontmatter()).toEqual({ x: [2], y: [1], z: 3 })
  })

  it.each([
    ['a Date', { d: new Date('2026-01-01') }, 'd'],
    ['a Map', { m: new Map() }, 'm'],
    ['undefined in a list', { l: [1, undefined] }, 'l.1'],
    ['a function', { f: () => 1 }, 'f'],
  ])('when %s is written then UNIT_WRITE_INVALID names the key and nothing changes', (_what, meta, key) => {
    const input = '---\na: 1\n---\n'
    const unit = unitOf(input)
    let error: unknown
    try {
      unit.writeFrontmatter(meta as FrontmatterData)
    } catch (err) {
      error = err
    }
    expect(isAasError(error, 'UNIT_WRITE_INVALID')).toBe(true)
    expect((error as { data: { key: string } }).data.key).toBe(key)
    expect(unit.toString()).toBe(input)
  })

  it('when a body is written then the front matter bytes are kept', () => {
    const unit = unitOf('---\r\na: 1 # c\r\n---')
    unit.writeBody('new body\r\n')
    expect(unit.toString()).toBe('---\r\na: 1 # c\r\n---\r\nnew body\r\n')
    expect(unit.readBody()).toBe('new body\r\n')
  })

  it('when a body starting with --- is written to a unit without front matter then it is refused', () => {
    const unit = unitOf('plain\n')
    expect(() => unit.writeBody('---\nx: 1\n---\n')).toThrow(expect.objectContaining({ code: 'UNIT_WRITE_INVALID' }))
    expect(unit.toString()).toBe('plain\n')
  })
})
