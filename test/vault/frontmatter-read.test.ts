import { describe, expect, it } from 'vitest'
import { parseUnitBytes, parseUnitText } from '../../src/vault/frontmatter.js'

function read(text: string): Record<string, unknown> {
  const parsed = parseUnitText(text)
  if (!parsed.ok) throw new Error(`does not parse: ${parsed.error.message}`)
  return parsed.unit.readFrontmatter()
}

describe('parseUnitText reads values as the file has them', () => {
  it('when the SPEC sample front matter is read then dates are strings, integers integers and null null', () => {
    const meta = read(
      "---\nschema_version: 1\nname: Debt priority order — credit cards before mortgage prepay\ndescription: 'Locked: avalanche on highest-rate credit cards'\ntype: feedback\ncaptured: 2026-04-15\nlast_seen: 2026-05-06\nsources:\n  - conversation_2026-04-15\nconfidence: high\npinned: false\nexpires_at: null\nsupersedes: null\ntags: [debt, strategy, priority]\n---\nbody\n",
    )
    expect(meta).toEqual({
      schema_version: 1,
      name: 'Debt priority order — credit cards before mortgage prepay',
      description: 'Locked: avalanche on highest-rate credit cards',
      type: 'feedback',
      captured: '2026-04-15',
      last_seen: '2026-05-06',
      sources: ['conversation_2026-04-15'],
      confidence: 'high',
      pinned: false,
      expires_at: null,
      supersedes: null,
      tags: ['debt', 'strategy', 'priority'],
    })
  })

  it('when a timestamp is read then it stays the string written (no Date, no T00:00:00.000Z)', () => {
    expect(read('---\nat: 2026-04-15T10:00:00Z\nd: 2026-04-15\n---\n')).toEqual({ at: '2026-04-15T10:00:00Z', d: '2026-04-15' })
  })

  it('when the result of readFrontmatter is mutated then the unit is not', () => {
    const parsed = parseUnitText('---\nl: [a]\n---\n')
    if (!parsed.ok) throw new Error('parse')
    ;(parsed.unit.readFrontmatter().l as string[]).push('b')
    expect(parsed.unit.readFrontmatter()).toEqual({ l: ['a'] })
  })

  it.each([
    ['no front matter', '# Title\n', false, {}, '# Title\n'],
    ['a thematic break that is not at the top', '\n---\na: 1\n---\n', false, {}, '\n---\na: 1\n---\n'],
    ['---- (four dashes) on the first line', '----\na: 1\n---\n', false, {}, '----\na: 1\n---\n'],
    ['an empty block', '---\n---\n', true, {}, ''],
    ['an empty block with CRLF and a BOM', '\uFEFF---\r\n---\r\nx', true, {}, 'x'],
    ['only comments', '---\n# c\n---\nb', true, {}, 'b'],
    ['a `...` line, which YAML ends the document with and which does not close front matter', '---\na: 1\n...\n---\nb', true, { a: 1 }, 'b'],
    ['a closing line with trailing blanks', '---\na: 1\n---  \nb', true, { a: 1 }, 'b'],
  ])('when the unit has %s then hasFrontmatter, values and body are as expected', (_what, text, has, meta, body) => {
    const parsed = parseUnitText(text)
    expect(parsed.ok).toBe(true)
    if (!parsed.ok) return
    expect(parsed.unit.hasFrontmatter).toBe(has)
    expect(parsed.unit.readFrontmatter()).toEqual(meta)
    expect(parsed.unit.readBody()).toBe(body)
    expect(parsed.unit.toString()).toBe(text)
  })
})

describe('parseUnitText reports unreadable front matter with its place in the whole file', () => {
  it.each([
    [
      'an unquoted value containing ": " (docs/how-it-works.md, "Front matter and minimal diffs")',
      '---\nschema_version: 1\ndescription: Locked: avalanche on cards\n---\n',
      3,
      14,
      /compact mappings/,
    ],
    ['a duplicate key', '---\na: 1\nb: 2\na: 3\n---\n', 4, 1, /unique/],
    ['a tab used as indentation', '---\nm:\n\tk: v\n---\n', 3, 1, /[Tt]ab/],
    ['a list instead of a mapping', '---\n- a\n- b\n---\n', 2, 1, /must be a mapping.*list/],
    ['a single value instead of a mapping', '---\njust text\n---\n', 2, 1, /must be a mapping.*single value/],
    ['an unclosed block', '---\na: 1\nbody without closing line\n', 1, 1, /not closed/],
    ['a BOM and CRLF before the error', '\uFEFF---\r\nok: 1\r\nbad: [1\r\n---\r\n', 4, 1, /./],
  ])('when the unit has %s then it is unreadable at line:column', (_what, text, line, column, message) => {
    const parsed = parseUnitText(text)
    expect(parsed.ok).toBe(false)
    if (parsed.ok) return
    expect({ line: parsed.error.line, column: parsed.error.column }).toEqual({ line, column })
    expect(parsed.error.message).toMatch(message)
  })

  it('when aliases expand exponentially then the unit is unreadable instead of exhausting memory', () => {
    const lines = ['---', 'a: &a [x, x, x, x, x, x, x, x, x, x]']
    for (let i = 1; i < 9; i++)
      lines.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(', ')}]`,
      )
    const parsed = parseUnitText(`${lines.join('\n')}\n---\n`)
    expect(parsed.ok).toBe(false)
    if (!parsed.ok) expect(parsed.error.message).toMatch(/alias/i)
  })

  it('when a few aliases are used then the unit is readable', () => {
    expect(read('---\nx: &a [1, 2]\ny: *a\n---\n')).toEqual({ x: [1, 2], y: [1, 2] })
  })
})

describe('parseUnitBytes', () => {
  it('when the bytes are valid UTF-8 then it reads like parseUnitText and keeps the BOM', () => {
    const text = '\uFEFF---\na: café\n---\nbody'
    const parsed = parseUnitBytes(Buffer.from(text, 'utf8'))
    expect(parsed.ok && parsed.unit.toString()).toBe(text)
  })

  it('when the bytes are not valid UTF-8 then the unit is unreadable at the bad byte', () => {
    const buf = Buffer.concat([Buffer.from('---\na: 1\nb: caf', 'utf8'), Buffer.from([0xe9]), Buffer.from('\n---\n', 'utf8')])
    const parsed = parseUnitBytes(buf)
    expect(parsed.ok).toBe(false)
    if (!parsed.ok) expect({ line: parsed.error.line, column: parsed.error.column }).toEqual({ line: 3, column: 7 })
  })
})
