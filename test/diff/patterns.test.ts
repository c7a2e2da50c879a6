import { describe, expect, it } from 'vitest'
import { PatternCollector, unitSignature } from '../../src/diff/patterns.js'

const FM = ['schema_version: 1', 'name: Debt order', "description: 'Locked: avalanche first'", 'tags: [debt, plan]  # why', 'sources:', '  - conversation_1']
const unit = (fm: string[], body = 'Body line.\n', eol = '\n'): string => `---\n${fm.join('\n')}\n---\n${body}`.replace(/\n/g, eol)
const edit = (fm: string[], i: number, line: string | null): string[] => fm.flatMap((l, j) => (j === i ? (line === null ? [] : [line]) : [l]))

describe('unitSignature', () => {
  it.each([
    {
      name: 'a changed key and an added one',
      after: unit([...edit(FM, 0, 'schema_version: 2'), 'provenance: v1_migrated']),
      keys: [
        { key: 'schema_version', change: 'changed' },
        { key: 'provenance', change: 'added' },
      ],
      values: [
        ['1', '2'],
        [null, 'v1_migrated'],
      ],
      body: false,
      only: true,
    },
    {
      name: 'a removed block list',
      after: unit(FM.slice(0, 4)),
      keys: [{ key: 'sources', change: 'removed' }],
      values: [['[conversation_1]', null]],
      body: false,
      only: true,
    },
    {
      name: 'the body',
      after: unit(FM, 'Body line.\nReviewed.\n'),
      keys: [],
      values: [],
      body: true,
      only: true,
    },
    {
      name: 'a requoted value beside a real change',
      after: unit(edit(edit(FM, 0, 'schema_version: 2'), 2, 'description: "Locked: avalanche first"')),
      keys: [{ key: 'schema_version', change: 'changed' }],
      values: [['1', '2']],
      body: false,
      only: false,
    },
    {
      name: 'a comment changed beside a real change',
      after: unit(edit(FM, 0, 'schema_version: 2')).replace('---\nschema', '---\n# migrated\nschema'),
      keys: [{ key: 'schema_version', change: 'changed' }],
      values: [['1', '2']],
      body: false,
      only: false,
    },
    {
      name: 'a long value',
      after: unit(edit(FM, 2, `description: '${'x'.repeat(60)}'`)),
      keys: [{ key: 'description', change: 'changed' }],
      values: [['Locked: avalanche first', '\u0000long']],
      body: false,
      only: true,
    },
  ])('$name', ({ after, keys, values, body, only }) => {
    const sig = unitSignature('a/memory/x.md', unit(FM), after)
    expect(sig.unexplained).toBeNull()
    expect(sig.keys).toEqual(keys)
    expect(sig.values).toEqual(values)
    expect(sig.body).toBe(body)
    expect(sig.only).toBe(only)
  })

  it('in a CRLF unit reads the same change as in an LF one', () => {
    const sig = unitSignature('x.md', unit(FM, 'b\n', '\r\n'), unit(edit(FM, 0, 'schema_version: 2'), 'b\n', '\r\n'))
    expect(sig).toMatchObject({ keys: [{ key: 'schema_version', change: 'changed' }], values: [['1', '2']], only: true, unexplained: null })
  })

  it.each([
    { name: 'only line endings changed', after: unit(FM, 'Body line.\n').replace('schema_version: 1\n', 'schema_version: 1\r\n'), reason: /no value did/ },
    { name: 'a key requoted, nothing else', after: unit(edit(FM, 2, 'description: "Locked: avalanche first"')), reason: /no value did/ },
    { name: 'a BOM added', after: `\uFEFF${unit(FM)}`, reason: /byte order mark/ },
    { name: 'the front matter left unclosed', after: unit(FM).replace(/---\nBody/, 'Body'), reason: /not closed/ },
  ])('when $name then the unit is unexplained', ({ after, reason }) => {
    const sig = unitSignature('x.md', unit(FM), after)
    expect(sig.unexplained).toMatch(reason)
    expect(sig.struct).toBe('!x.md')
  })
})

describe('PatternCollector', () => {
  // 40 units: 30 add provenance v1_migrated, 6 add provenance with their own value (more
  // than five values: not shown), 2 also change tags, each its own way (not shown), 1
  // changes its body, 1 is only reformatted.
  function collect(): PatternCollector {
    const c = new PatternCollector()
    const base = (i: number): string => unit(edit(FM, 3, `tags: [t${i}]`))
    for (let i = 0; i < 30; i++)
      c.add(
        `a/memory/n${String(i).padStart(2, '0')}.md`,
        base(i),
        unit([...edit(edit(FM, 3, `tags: [t${i}]`), 0, 'schema_version: 2'), 'provenance: v1_migrated']),
      )
    for (let i = 30; i < 36; i++)
      c.add(`b/memory/n${i}.md`, base(i), unit([...edit(edit(FM, 3, `tags: [t${i}]`), 0, 'schema_version: 2'), `provenance: p${i}`]))
    for (let i = 36; i < 38; i++)
      c.add(`c/wiki/n${i}.md`, base(i), unit([...edit(edit(FM, 3, `tags: [u${i}]`), 0, 'schema_version: 2'), 'provenance: v1_migrated']))
    c.add('d/memory/body.md', base(38), unit(edit(FM, 3, 'tags: [t38]'), 'Body line.\nReviewed.\n'))
    c.add('d/memory/requoted.md', base(39), unit(edit(FM, 3, "tags: ['t39']")))
    return c
  }

  it('groups by key changes and shared values, largest first, outliers with every path', () => {
    const got = collect().patterns()
    expect(got.map((p) => [p.units, p.label])).toEqual([
      [30, 'schema_version: 1 → 2, + provenance: v1_migrated'],
      [6, 'schema_version: 1 → 2, + provenance'],
      [2, 'schema_version: 1 → 2, tags changed, + provenance: v1_migrated'],
      [1, 'body changed'],
      [1, 'front matter lines changed, no value did'],
    ])
    expect(got[0]?.examples).toEqual(['a/memory/n00.md', 'a/memory/n01.md', 'a/memory/n02.md'])
    expect(got[0]?.paths).toHaveLength(30)
    expect(got[1]?.examples).toHaveLength(3)
    expect(got[2]?.examples).toEqual(['c/wiki/n36.md', 'c/wiki/n37.md'])
    expect(got[2]?.keys).toEqual([
      { key: 'schema_version', change: 'changed', from: '1', to: '2' },
      { key: 'tags', change: 'changed', from: null, to: null },
      { key: 'provenance', change: 'added', from: null, to: 'v1_migrated' },
    ])
    expect(got[4]).toMatchObject({ unexplained: 'front matter lines changed, no value did', paths: ['d/memory/requoted.md'], onlyTheseLines: false })
  })
})
