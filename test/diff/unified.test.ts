import { execFileSync } from 'node:child_process'
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isUtf8 } from 'node:buffer'
import {
  renderDiffStat,
  renderTextChange,
  renderUnifiedDiff,
  renderUnifiedDiffBytes,
  summarizeDiff,
  usablePatch,
  type DiffFile,
} from '../../src/diff/unified.js'
import { hashBlob } from '../../src/transaction/blob-hash.js'
import type { FileMode } from '../../src/vault/walk.js'
import { gitEnv } from '../helpers/make-vault.js'

// Each case builds its "before" tree in a real git repository, renders our diff against the
// "after" contents and checks it three ways: `git apply --check` accepts it in the before
// state, `git apply` turns the before state into exactly the after bytes and modes, and the
// text equals `git diff` of the same change.

interface Entry {
  content: Buffer
  mode: FileMode
}
type Tree = Record<string, Entry>

const file = (text: string | Buffer, mode: FileMode = '100644'): Entry => ({ content: Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'), mode })
const link = (target: string): Entry => ({ content: Buffer.from(target, 'utf8'), mode: '120000' })

function gitBytes(cwd: string, args: string[], input?: Buffer): Buffer {
  return execFileSync('git', args, { cwd, env: gitEnv, input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 })
}

function gitText(cwd: string, ...args: string[]): string {
  return gitBytes(cwd, args).toString('utf8')
}

async function writeTree(dir: string, tree: Tree): Promise<void> {
  for (const [rel, entry] of Object.entries(tree)) {
    const abs = path.join(dir, rel)
    await mkdir(path.dirname(abs), { recursive: true })
    await rm(abs, { force: true })
    if (entry.mode === '120000') {
      await symlink(entry.content.toString('utf8'), abs)
    } else {
      await writeFile(abs, entry.content)
      await chmod(abs, entry.mode === '100755' ? 0o755 : 0o644)
    }
  }
}

async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = []
  for (const dirent of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    if (rel === '' && dirent.name === '.git') continue
    const child = rel ? `${rel}/${dirent.name}` : dirent.name
    if (dirent.isDirectory()) out.push(...(await listFiles(dir, child)))
    else out.push(child)
  }
  return out.sort()
}

async function readEntry(dir: string, rel: string): Promise<Entry> {
  const abs = path.join(dir, rel)
  const st = await lstat(abs)
  if (st.isSymbolicLink()) return { content: Buffer.from(await readlink(abs, { encoding: 'buffer' })), mode: '120000' }
  return { content: await readFile(abs), mode: st.mode & 0o100 ? '100755' : '100644' }
}

function toDiffFiles(before: Tree, after: Tree): DiffFile[] {
  const paths = new Set([...Object.keys(before), ...Object.keys(after)])
  return [...paths].map((p) => ({
    path: p,
    oldMode: before[p]?.mode ?? null,
    newMode: after[p]?.mode ?? null,
    oldOid: null,
    newOid: null,
    oldContent: before[p]?.content ?? null,
    newContent: after[p]?.content ?? null,
  }))
}

interface Repo {
  dir: string
  before: string // commit ids
  after: string
}

// A repository with two commits, before and after, and the work tree back at before.
async function makeRepo(before: Tree, after: Tree): Promise<Repo> {
  const dir = await mkdtemp(path.join(tmpdir(), 'aas-diff-'))
  gitText(dir, 'init', '-q', '-b', 'main')
  gitText(dir, 'config', 'commit.gpgSign', 'false')
  gitText(dir, 'config', 'core.autocrlf', 'false')
  gitText(dir, 'config', 'gc.auto', '0')
  await writeTree(dir, before)
  gitText(dir, 'add', '-A')
  gitText(dir, 'commit', '-q', '--allow-empty', '-m', 'before')
  const beforeId = gitText(dir, 'rev-parse', 'HEAD').trim()
  for (const p of Object.keys(before)) if (!(p in after)) await rm(path.join(dir, p))
  await writeTree(dir, after)
  gitText(dir, 'add', '-A')
  gitText(dir, 'commit', '-q', '--allow-empty', '-m', 'after')
  const afterId = gitText(dir, 'rev-parse', 'HEAD').trim()
  gitText(dir, 'reset', '-q', '--hard', beforeId)
  return { dir, before: beforeId, after: afterId }
}

// `git diff <before> <after>`; flags may end with `--` and paths.
function gitDiff(repo: Repo, ...flags: string[]): Buffer {
  const dashes = flags.indexOf('--')
  const [opts, paths] = dashes === -1 ? [flags, []] : [flags.slice(0, dashes), flags.slice(dashes)]
  return gitBytes(repo.dir, ['-c', 'core.quotePath=true', 'diff', '--no-ext-diff', '--no-color', '--no-renames', ...opts, repo.before, repo.after, ...paths])
}

// The files on disk (all, or those under `under`) are exactly `expected`, bytes and modes.
async function expectTreeEquals(dir: string, expected: Tree, under = ''): Promise<void> {
  expect(await listFiles(dir, under)).toEqual(Object.keys(expected).sort())
  for (const [rel, entry] of Object.entries(expected)) {
    const actual = await readEntry(dir, rel)
    expect({ path: rel, mode: actual.mode }).toEqual({ path: rel, mode: entry.mode })
    expect(actual.content.equals(entry.content), `bytes of ${rel}`).toBe(true)
  }
}

const frontMatter = (extra: string, eol = '\n'): string =>
  [
    '---',
    'schema_version: 1',
    'name: Debt priority order',
    "description: 'Locked: avalanche first'",
    'type: feedback',
    'captured: 2026-04-15',
    extra,
    'sources:',
    '  - conversation_2026-04-15',
    'confidence: high',
    'tags: [debt, strategy]',
    '---',
    '',
    '# Body',
    '',
    'Pay the cards first.',
    '',
  ].join(eol)

const manyLines = (n: number, prefix = 'line'): string => Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}\n`).join('')

interface Case {
  name: string
  before: Tree
  after: Tree
  // why `git diff` output is not compared byte for byte (apply checks still run)
  relaxGitCompare?: string
  // binary patches apply only with full object ids and the blobs in the repository
  fullIndex?: boolean
}

const cases: Case[] = [
  {
    name: 'a modified text file',
    before: { 'a/memory/feedback_debt.md': file(frontMatter('last_seen: 2026-05-06')) },
    after: { 'a/memory/feedback_debt.md': file(frontMatter('last_seen: 2026-06-01')) },
  },
  {
    name: 'two changes far apart (two hunks, function context)',
    before: { 'notes.md': file(manyLines(40)) },
    after: { 'notes.md': file(manyLines(40).replace('line 5\n', 'line five\n').replace('line 30\n', 'line thirty\nline 30b\n')) },
  },
  {
    name: 'a CRLF file',
    before: { 'crlf.md': file(frontMatter('last_seen: 2026-05-06', '\r\n')) },
    after: { 'crlf.md': file(frontMatter('last_seen: 2026-06-01', '\r\n')) },
  },
  {
    name: 'a file with a BOM whose first line changes',
    before: { 'bom.md': file('\uFEFF---\nschema_version: 1\n---\nbody\n') },
    after: { 'bom.md': file('\uFEFF--- \nschema_version: 2\n---\nbody\n') },
  },
  {
    name: 'a file with a BOM changed in the middle',
    before: { 'bom2.md': file('\uFEFF' + frontMatter('last_seen: 2026-05-06')) },
    after: { 'bom2.md': file('\uFEFF' + frontMatter('last_seen: 2026-06-01')) },
  },
  {
    name: 'the old side has no final newline',
    before: { 'nl.md': file('a\nb\nc') },
    after: { 'nl.md': file('a\nb\nc\n') },
  },
  {
    name: 'the new side has no final newline',
    before: { 'nl.md': file('a\nb\nc\n') },
    after: { 'nl.md': file('a\nb\nC') },
  },
  {
    name: 'neither side has a final newline',
    before: { 'nl.md': file('a\nb\nc') },
    after: { 'nl.md': file('a\nB\nc') },
  },
  {
    name: 'an added file',
    before: { 'keep.md': file('k\n') },
    after: { 'keep.md': file('k\n'), 'wiki/new page.md': file('---\ntype: wiki_page\n---\n') },
  },
  {
    name: 'a deleted file',
    before: { 'keep.md': file('k\n'), 'old.md': file('one\ntwo\n') },
    after: { 'keep.md': file('k\n') },
  },
  {
    name: 'a mode change only',
    before: { 'run.sh': file('echo hi\n') },
    after: { 'run.sh': file('echo hi\n', '100755') },
  },
  {
    name: 'a mode change and a content change',
    before: { 'run.sh': file('echo hi\n', '100755') },
    after: { 'run.sh': file('echo bye\n', '100644') },
  },
  {
    name: 'a symlink retargeted',
    before: { 'current.md': link('memory/v1.md') },
    after: { 'current.md': link('memory/v2.md') },
  },
  {
    name: 'a regular file replaced by a symlink',
    before: { 'x.md': file('text\n') },
    after: { 'x.md': link('y.md') },
  },
  {
    name: 'a binary file modified',
    before: { 'img.bin': file(Buffer.from([0x89, 0x50, 0x00, 0x01, 0x02])) },
    after: { 'img.bin': file(Buffer.from([0x89, 0x50, 0x00, 0x01, 0x03, 0x04])) },
    fullIndex: true,
  },
  {
    name: 'a binary file added and a text file that becomes binary',
    before: { 'was-text.md': file('plain\n') },
    after: { 'was-text.md': file(Buffer.from('pla\0in\n')), 'new.bin': file(Buffer.from([0, 1, 2])) },
    fullIndex: true,
  },
  {
    name: 'a path with spaces',
    before: { 'my notes/a b.md': file('x\n') },
    after: { 'my notes/a b.md': file('y\n') },
  },
  {
    name: 'a unicode path',
    before: { 'wiki/café-ünï.md': file('x\n') },
    after: { 'wiki/café-ünï.md': file('y\n') },
  },
  {
    name: 'a path with a double quote, a backslash and a tab',
    before: { 'say "hi"\\now\t.md': file('x\n') },
    after: { 'say "hi"\\now\t.md': file('y\n') },
  },
  {
    name: 'an empty file added and an empty file deleted',
    before: { 'gone.md': file('') },
    after: { 'empty.md': file('') },
  },
  {
    name: 'a file becoming empty and an empty file filled',
    before: { 'shrink.md': file('a\nb\n'), 'grow.md': file('') },
    after: { 'shrink.md': file(''), 'grow.md': file('a\nb\n') },
  },
  {
    name: 'non-UTF-8 bytes (latin1 text)',
    before: { 'latin1.md': file(Buffer.from('caf\xe9\nna\xefve\n', 'latin1')) },
    after: { 'latin1.md': file(Buffer.from('caf\xe9\nna\xeff\n', 'latin1')) },
  },
  {
    name: 'a key inserted between repeated blank lines (hunk placement git chooses)',
    before: { 'slide.md': file('# A\n\nalpha\n\n# B\n\nbeta\n\n# C\n\ngamma\n') },
    after: { 'slide.md': file('# A\n\nalpha\n\n# B\n\nbeta\n\nbeta2\n\n# C\n\ngamma\n') },
  },
  {
    name: 'an indented block inserted (indent heuristic)',
    before: { 'ind.md': file('- a\n  - a1\n- b\n  - b1\n- c\n') },
    after: { 'ind.md': file('- a\n  - a1\n- x\n  - x1\n- b\n  - b1\n- c\n') },
  },
  {
    // Both diffs insert the same 4 lines (both minimal) but keep a different common
    // subsequence: jsdiff's Myers matches old c,c,c to new lines 4-6, git's xdiff to 4, 5
    // and 8. No sliding of groups turns one into the other, so only (a)+(b) are asserted.
    name: 'lines repeated so that two minimal diffs exist',
    before: { 'rep.md': file('b\nc\nc\nc\n') },
    after: { 'rep.md': file('b\na\nb\nc\nc\nc\na\nc\n') },
    relaxGitCompare: 'git and jsdiff pick different (equally minimal) common subsequences',
  },
  {
    name: 'a whole rewrite',
    before: { 'rw.md': file(manyLines(12, 'old')) },
    after: { 'rw.md': file(manyLines(9, 'new')) },
  },
]

describe('renderUnifiedDiff against real git', () => {
  // One repository holds every case under its own folder (one git setup for all); each
  // case diffs and applies only its folder, the last tests take all cases in one patch.
  const folder = (index: number): string => `case${String(index).padStart(2, '0')}`
  const prefixed = (tree: Tree, dir: string): Tree => Object.fromEntries(Object.entries(tree).map(([p, e]) => [`${dir}/${p}`, e]))
  const before: Tree = {}
  const after: Tree = {}
  cases.forEach((c, index) => {
    Object.assign(before, prefixed(c.before, folder(index)))
    Object.assign(after, prefixed(c.after, folder(index)))
  })
  let repo: Repo
  beforeAll(async () => {
    repo = await makeRepo(before, after)
  })
  afterAll(async () => {
    await rm(repo.dir, { recursive: true, force: true })
  })

  cases.forEach((c, index) => {
    it(`when ${c.name} then git apply reproduces the after state and the diff equals git's`, async () => {
      const dir = folder(index)
      const [caseBefore, caseAfter] = [prefixed(c.before, dir), prefixed(c.after, dir)]
      const patch = renderUnifiedDiffBytes(toDiffFiles(caseBefore, caseAfter), { fullIndex: c.fullIndex ?? false })
      expect(patch.length).toBeGreaterThan(0)
      if (!c.relaxGitCompare) {
        const expected = gitDiff(repo, ...(c.fullIndex ? ['--full-index'] : []), '--', dir)
        expect(patch.toString('latin1')).toBe(expected.toString('latin1'))
      } else {
        // line counts of minimal diffs are equal even when the hunks are not
        expect(renderDiffStat(toDiffFiles(caseBefore, caseAfter))).toBe(gitDiff(repo, '--stat=80', '--', dir).toString('utf8'))
      }
      gitBytes(repo.dir, ['apply', '--check', '-'], patch)
      gitBytes(repo.dir, ['apply', '-'], patch)
      await expectTreeEquals(repo.dir, caseAfter, dir)
    })
  })

  it('when every case is in one patch then git apply accepts it and it equals git diff --full-index', async () => {
    gitText(repo.dir, 'reset', '-q', '--hard', repo.before)
    gitText(repo.dir, 'clean', '-q', '-fdx')
    const comparable = cases.flatMap((c, index) => (c.relaxGitCompare ? [] : [folder(index)]))
    const files = toDiffFiles(before, after)
    const byteComparable = files.filter((f) => comparable.includes(f.path.split('/')[0]!))
    const expected = gitDiff(repo, '--full-index', '--', ...comparable)
    expect(renderUnifiedDiffBytes(byteComparable, { fullIndex: true }).toString('latin1')).toBe(expected.toString('latin1'))
    // the input order does not matter: output is in git's path order
    expect(renderUnifiedDiffBytes([...byteComparable].reverse(), { fullIndex: true }).equals(expected)).toBe(true)
    const patch = renderUnifiedDiffBytes(files, { fullIndex: true })
    gitBytes(repo.dir, ['apply', '--check', '-'], patch)
    gitBytes(repo.dir, ['apply', '-'], patch)
    await expectTreeEquals(repo.dir, after)
  })

  it('when rendering --stat at 80 and 40 columns then it equals git diff --stat=80 / --stat=40', () => {
    const files = toDiffFiles(before, after)
    expect(renderDiffStat(files)).toBe(gitDiff(repo, '--stat=80').toString('utf8'))
    expect(renderDiffStat(files, { width: 40 })).toBe(gitDiff(repo, '--stat=40').toString('utf8'))
  })

  it('when summarizing then files, insertions and deletions equal git diff --shortstat', () => {
    const summary = summarizeDiff(toDiffFiles(before, after))
    const short = gitDiff(repo, '--shortstat').toString('utf8')
    const num = (re: RegExp): number => Number(re.exec(short)?.[1] ?? 0)
    expect(summary).toEqual({
      files: num(/(\d+) files? changed/),
      insertions: num(/(\d+) insertions?\(\+\)/),
      deletions: num(/(\d+) deletions?\(-\)/),
    })
    const changed = Object.keys({ ...before, ...after }).filter((p) => {
      const [x, y] = [before[p], after[p]]
      return !x || !y || x.mode !== y.mode || !x.content.equals(y.content)
    })
    expect(summary.files).toBe(changed.length)
  })
})

describe('renderUnifiedDiff options', () => {
  const before: Tree = {
    'a.md': file(manyLines(30)),
    'b.md': file('same\n'),
  }
  const after: Tree = {
    'a.md': file(manyLines(30).replace('line 10\n', 'line ten\n').replace('line 20\n', 'line twenty\n')),
    'b.md': file('same\n', '100755'),
  }
  let repo: Repo
  beforeAll(async () => {
    repo = await makeRepo(before, after)
  })
  afterAll(async () => {
    await rm(repo.dir, { recursive: true, force: true })
  })

  it('when context is 1 or 6 then hunks equal git diff -U1 / -U6', () => {
    for (const context of [0, 1, 6]) {
      const ours = renderUnifiedDiff(toDiffFiles(before, after), { context })
      expect(ours).toBe(gitDiff(repo, `-U${context}`).toString('utf8'))
    }
  })

  it('when color is on then the bytes equal git diff --color=always', () => {
    const ours = renderUnifiedDiff(toDiffFiles(before, after), { color: true })
    expect(ours).toBe(gitDiff(repo, '--color=always').toString('utf8'))
  })

  it('when color is on and added lines have whitespace errors then they are marked like git', async () => {
    // CR and spaces at end of line, a space before a tab in the indent, blank lines added at EOF
    const b: Tree = { 'w.md': file('a\r\nb\r\n\r\n'), 'v.md': file('x\n- y\n') }
    const a: Tree = { 'w.md': file('a\r\nc  \r\n \td\r\n\r\n\r\n \r\n'), 'v.md': file('x\n\n- y\n\n  \n') }
    const r = await makeRepo(b, a)
    try {
      expect(renderUnifiedDiff(toDiffFiles(b, a), { color: true })).toBe(gitDiff(r, '--color=always').toString('utf8'))
    } finally {
      await rm(r.dir, { recursive: true, force: true })
    }
  })

  it('when color is off then the output has no escape bytes', () => {
    expect(renderUnifiedDiff(toDiffFiles(before, after))).not.toContain('\x1b')
  })

  it('when nothing changed then the diff is empty and the stat says 0 files changed', () => {
    const same = toDiffFiles({ 'x.md': file('x\n') }, { 'x.md': file('x\n') })
    expect(renderUnifiedDiff(same)).toBe('')
    expect(renderDiffStat(same)).toBe(' 0 files changed\n')
    expect(summarizeDiff(same)).toEqual({ files: 0, insertions: 0, deletions: 0 })
  })

  it('when oids are given then the index line uses them instead of hashing', () => {
    const [f] = toDiffFiles({ 'x.md': file('x\n') }, { 'x.md': file('y\n') })
    const out = renderUnifiedDiff([{ ...f!, oldOid: 'a'.repeat(40), newOid: 'b'.repeat(40) }])
    expect(out.split('\n')[1]).toBe('index aaaaaaa..bbbbbbb 100644')
  })
})

describe('renderDiffStat scaling', () => {
  it('when one file has more changes than the graph fits then the graph is scaled like git', async () => {
    const before: Tree = { 'big.md': file(manyLines(10)), 'small.md': file('a\nb\n') }
    const after: Tree = { 'big.md': file(manyLines(10) + manyLines(150, 'more')), 'small.md': file('a\nc\n') }
    const repo = await makeRepo(before, after)
    try {
      expect(renderDiffStat(toDiffFiles(before, after))).toBe(gitDiff(repo, '--stat=80').toString('utf8'))
      expect(renderDiffStat(toDiffFiles(before, after), { width: 30 })).toBe(gitDiff(repo, '--stat=30').toString('utf8'))
    } finally {
      await rm(repo.dir, { recursive: true, force: true })
    }
  })
})

describe('renderUnifiedDiff on random edits', () => {
  // Seeded random edits over a tiny vocabulary (many repeated lines, blank lines, indents)
  // to stress hunk placement. Hunk shapes may legitimately differ from git's where several
  // minimal diffs exist (about 1 file in 10 with this vocabulary, none in the table
  // above), so this asserts what must always hold: git applies the patch to exactly the
  // after bytes, and the line counts equal git's.
  it('when 80 files get random edits then git apply reproduces every file and the counts equal git diff --shortstat', async () => {
    let seed = 20240515
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed / 0x7fffffff
    }
    const vocab = ['', '', '---', 'a', 'b', '  - x', 'name: z', '# H', '\tq', 'c']
    const pick = (): string => vocab[Math.floor(rnd() * vocab.length)]!
    const before: Tree = {}
    const after: Tree = {}
    for (let i = 0; i < 80; i++) {
      const lines = Array.from({ length: 2 + Math.floor(rnd() * 30) }, pick)
      const edited = [...lines]
      for (let e = 0, edits = 1 + Math.floor(rnd() * 5); e < edits; e++) {
        const at = Math.floor(rnd() * (edited.length + 1))
        const r = rnd()
        if (r < 0.33) edited.splice(at, 1 + Math.floor(rnd() * 3))
        else if (r < 0.66) edited.splice(at, 0, ...Array.from({ length: 1 + Math.floor(rnd() * 3) }, pick))
        else edited.splice(at, 1, pick())
      }
      const p = `r/f${String(i).padStart(2, '0')}.md`
      before[p] = file(lines.join('\n') + (rnd() < 0.8 ? '\n' : ''))
      after[p] = file(edited.join('\n') + (rnd() < 0.8 ? '\n' : ''))
    }
    const repo = await makeRepo(before, after)
    try {
      const files = toDiffFiles(before, after)
      const patch = renderUnifiedDiffBytes(files)
      gitBytes(repo.dir, ['apply', '--check', '-'], patch)
      gitBytes(repo.dir, ['apply', '-'], patch)
      await expectTreeEquals(repo.dir, after)
      const summary = summarizeDiff(files)
      expect(gitDiff(repo, '--shortstat').toString('utf8')).toBe(
        ` ${summary.files} files changed, ${summary.insertions} insertions(+), ${summary.deletions} deletions(-)\n`,
      )
    } finally {
      await rm(repo.dir, { recursive: true, force: true })
    }
  })
})

// What a dry run's chain workers render for each unit they change must be exactly what
// the renderer prints from the two contents.
describe('renderTextChange: one changed text file, as the chain renders it', () => {
  const texts = (t: Tree): boolean => Object.values(t).every((e) => e.mode !== '120000' && !e.content.includes(0) && isUtf8(e.content))
  const changed = cases.flatMap((c) =>
    texts(c.before) && texts(c.after)
      ? Object.keys(c.after).flatMap((p) => {
          const [b, a] = [c.before[p], c.after[p]]
          return b && a && b.mode === a.mode && !b.content.equals(a.content)
            ? [{ name: c.name, path: p, mode: a.mode, before: b.content, after: a.content }]
            : []
        })
      : [],
  )
  // Blank lines added at the end and whitespace errors: what only the colored output marks.
  changed.push(
    {
      name: 'blank lines added at the end',
      path: 'w.md',
      mode: '100644',
      before: Buffer.from('a\r\nb\r\n\r\n'),
      after: Buffer.from('a\r\nb \r\n\r\n\r\n  \n'),
    },
    { name: 'a space before a tab', path: 'v.md', mode: '100644', before: Buffer.from('x\n- y\n'), after: Buffer.from('x\n \t- y\n- z\t\n') },
    {
      name: 'non-ASCII text',
      path: 'ü/ñ.md',
      mode: '100644',
      before: Buffer.from('---\ntitle: café\n---\nβ\n'),
      after: Buffer.from('---\ntitle: café ☕\n---\nβ\nγ\n'),
    },
  )

  it('covers the cases of text files changed in place', () => {
    expect(changed.length).toBeGreaterThanOrEqual(10)
  })

  for (const color of [false, true]) {
    it(`when color is ${color ? 'on' : 'off'} then every change renders to the bytes renderUnifiedDiffBytes gives from the contents`, () => {
      for (const c of changed) {
        const [oldOid, newOid] = [hashBlob(c.before), hashBlob(c.after)]
        const rendered = renderTextChange({ path: c.path, mode: c.mode, oldOid, newOid, oldBytes: c.before, newBytes: c.after }, color)
        const file: DiffFile = { path: c.path, oldMode: c.mode, newMode: c.mode, oldOid, newOid, oldContent: c.before, newContent: c.after }
        expect(rendered.color).toBe(color)
        expect(Buffer.from(rendered.text, 'latin1').equals(renderUnifiedDiffBytes([file], { color })), c.name).toBe(true)
        // and a file given with that patch and no contents renders to the same bytes
        const held: DiffFile = { ...file, oldContent: null, newContent: null, patch: rendered }
        expect(renderUnifiedDiffBytes([held], { color }).equals(renderUnifiedDiffBytes([file], { color })), c.name).toBe(true)
      }
    })
  }

  it('when a render asks for other options then a rendered patch is not used', () => {
    const c = changed[0] as (typeof changed)[number]
    const patch = renderTextChange(
      { path: c.path, mode: c.mode, oldOid: hashBlob(c.before), newOid: hashBlob(c.after), oldBytes: c.before, newBytes: c.after },
      false,
    )
    const file: DiffFile = { path: c.path, oldMode: c.mode, newMode: c.mode, oldOid: null, newOid: null, oldContent: c.before, newContent: c.after, patch }
    expect(usablePatch(file, { color: false })).toBe(true)
    expect(usablePatch(file, { color: true })).toBe(false)
    expect(usablePatch(file, { context: 1 })).toBe(false)
    expect(usablePatch(file, { fullIndex: true })).toBe(false)
    const plain: DiffFile = { ...file, patch: null }
    for (const options of [{ color: true }, { context: 1 }, { fullIndex: true }])
      expect(renderUnifiedDiffBytes([file], options).equals(renderUnifiedDiffBytes([plain], options))).toBe(true)
  })
})
