import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from './helpers/make-vault.js'

// The map of src/ in docs/how-it-works.md, "Where things are", must match the tree: every
// top-level folder and file of src/ is named there, and every `src/…` path it names
// exists. Deeper folders may come and go; only the rooms and the top-level files count.
// And every section a comment cites as `docs/<file>.md, "Title"` (or README.md) exists.

const DOC = 'docs/how-it-works.md'
const SECTION = 'Where things are'

// The text of a `## title` section, up to the next heading of the same level.
function sectionOf(markdown: string, title: string): string | null {
  const lines = markdown.split('\n')
  const start = lines.findIndex((l) => l.trim() === `## ${title}`)
  if (start < 0) return null
  const end = lines.findIndex((l, i) => i > start && /^##? /.test(l))
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n')
}

// Every `src/…` path written in backticks, without a trailing slash.
function srcPathsIn(text: string): string[] {
  return [...text.matchAll(/`(src\/[^`\s]*)`/g)].map((m) => (m[1] as string).replace(/\/+$/, ''))
}

// What the map gets wrong: rooms and top-level files it leaves out, paths that do not exist.
function mapProblems(section: string, topLevel: readonly string[], exists: (rel: string) => boolean): string[] {
  const named = srcPathsIn(section)
  const rooms = new Set(named.map((p) => p.split('/')[1]))
  return [
    ...topLevel.filter((t) => !rooms.has(t)).map((t) => `src/${t} is not named in "${SECTION}"`),
    ...[...new Set(named)].filter((p) => !exists(p)).map((p) => `${p} is named in "${SECTION}" but does not exist`),
  ]
}

// The top-level folders and source files of src/.
function topLevelOf(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() || /\.(ts|mts)$/.test(e.name))
    .map((e) => e.name)
    .sort()
}

function existsInRepo(rel: string): boolean {
  return existsSync(path.join(repoRoot, rel))
}

describe(`the map of src/ in ${DOC}, "${SECTION}"`, () => {
  const section = sectionOf(readFileSync(path.join(repoRoot, DOC), 'utf8'), SECTION)

  it('exists', () => {
    expect(section, `${DOC} has no "## ${SECTION}" section`).not.toBeNull()
  })

  it('when src/ gains or loses a folder or a top-level file then the map names exactly what is there', () => {
    const top = topLevelOf(path.join(repoRoot, 'src'))
    expect(top.length).toBeGreaterThan(10)
    expect(mapProblems(section ?? '', top, existsInRepo)).toEqual([])
  })

  it.each([
    ['a room is missing', '- `src/vault/`: files', ['vault', 'git'], [], ['src/git is not named in "Where things are"']],
    ['a top-level file is missing', '- `src/vault/`', ['vault', 'api.ts'], [], ['src/api.ts is not named in "Where things are"']],
    [
      'a named room does not exist',
      '- `src/vault/`, `src/engine/`',
      ['vault'],
      ['src/engine'],
      ['src/engine is named in "Where things are" but does not exist'],
    ],
    [
      'a named file deeper down does not exist',
      '- `src/git/` (`src/git/refs.ts`)',
      ['git'],
      ['src/git/refs.ts'],
      ['src/git/refs.ts is named in "Where things are" but does not exist'],
    ],
    ['everything matches', '- `src/vault/`, `src/api.ts`', ['api.ts', 'vault'], [], []],
  ])('when %s then that is reported', (_what, text, top, missing, problems) => {
    expect(mapProblems(text, top, (p) => !missing.includes(p))).toEqual(problems)
  })

  it('reads a section up to the next heading of its level only', () => {
    const md = '# T\n\n## Where things are\n`src/a/`\n### deeper\n`src/b/`\n## Next\n`src/c/`\n'
    expect(srcPathsIn(sectionOf(md, SECTION) ?? '')).toEqual(['src/a', 'src/b'])
  })
})

// Citations in comments: a document, then one or more quoted section titles
// (`docs/how-it-works.md, "A run"`, `…, "Units and versions" and "What is in a snapshot"`),
// possibly wrapped across `//` lines.
function citationsIn(text: string): Array<{ doc: string; title: string }> {
  const joined = text.replace(/\n\s*(?:\/\/|\*)\s*/g, ' ')
  const out: Array<{ doc: string; title: string }> = []
  for (const m of joined.matchAll(/((?:docs\/[\w-]+|README)\.md),\s*((?:"[^"\n]+"(?:,\s*|\s+and\s+|\s+or\s+)?)+)/g)) {
    for (const t of (m[2] as string).matchAll(/"([^"]+)"/g)) out.push({ doc: m[1] as string, title: t[1] as string })
  }
  return out
}

function headingsOf(markdown: string): Set<string> {
  return new Set(markdown.split('\n').flatMap((l) => /^#{1,6} (.+?)\s*$/.exec(l)?.slice(1) ?? []))
}

function codeFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : codeFiles(p)
    return /\.(ts|mts|js|mjs)$/.test(e.name) ? [p] : []
  })
}

describe('sections cited from the code', () => {
  // This file's own examples of citations are not citations.
  const files = ['src', 'test', 'bench', 'scripts']
    .flatMap((d) => codeFiles(path.join(repoRoot, d)))
    .filter((f) => path.relative(repoRoot, f) !== path.join('test', 'docs-map.test.ts'))
  const cited = files.flatMap((f) => citationsIn(readFileSync(f, 'utf8')).map((c) => ({ ...c, file: path.relative(repoRoot, f) })))

  it('are found', () => {
    expect(cited.length).toBeGreaterThanOrEqual(20)
  })

  it('when a comment cites a section then the document has a heading of that title', () => {
    const headings = new Map<string, Set<string>>()
    const missing = cited.filter(({ doc, title }) => {
      if (!headings.has(doc)) headings.set(doc, existsSync(path.join(repoRoot, doc)) ? headingsOf(readFileSync(path.join(repoRoot, doc), 'utf8')) : new Set())
      return !headings.get(doc)?.has(title)
    })
    expect(missing.map((c) => `${c.file}: ${c.doc}, "${c.title}"`)).toEqual([])
  })

  it('reads titles wrapped across comment lines and lists of titles', () => {
    const text = '// see (docs/a.md, "One\n// two") and docs/b.md, "X" and "Y", README.md, "Z"\n'
    expect(citationsIn(text)).toEqual([
      { doc: 'docs/a.md', title: 'One two' },
      { doc: 'docs/b.md', title: 'X' },
      { doc: 'docs/b.md', title: 'Y' },
      { doc: 'README.md', title: 'Z' },
    ])
  })
})
