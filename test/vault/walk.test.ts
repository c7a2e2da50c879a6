import { mkdir, mkdtemp, rm, symlink, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { scanVault } from '../../src/vault/walk.js'
import { unitTypeOf } from '../../src/vault/rules.js'

let root: string

async function put(rel: string, content = '---\nschema_version: 1\n---\n'): Promise<void> {
  await mkdir(path.dirname(path.join(root, rel)), { recursive: true })
  await writeFile(path.join(root, rel), content)
}

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'aas-walk-'))
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('unit enumeration (docs/how-it-works.md, "Units and versions")', () => {
  const cases: Array<[string, 'memory' | 'wiki' | null, string]> = [
    ['caldwell/memory/user_a.md', 'memory', 'a memory note of a top-level agent'],
    ['caldwell/wiki/page.md', 'wiki', 'a wiki page'],
    ['caldwell/wiki/topics/deep/page.md', 'wiki', 'a wiki page in nested folders'],
    ['projects/atlas/agents/researcher/memory/decision_x.md', 'memory', 'a cascaded role layout'],
    ['caldwell/wiki/memory/note.md', 'memory', 'the nearest ancestor decides (memory inside wiki)'],
    ['caldwell/memory/wiki/page.md', 'wiki', 'the nearest ancestor decides (wiki inside memory)'],
    ['caldwell/memory/INDEX.md', null, 'INDEX.md is not a unit'],
    ['caldwell/wiki/INDEX_topics.md', null, 'INDEX_*.md is not a unit'],
    ['caldwell/memory/notes.txt', null, 'only .md files are units'],
    ['caldwell/persona.md', null, 'a .md outside memory/ and wiki/ is not a unit'],
    ['caldwell/.trash/memory/old.md', null, 'anything under a dot-directory is excluded'],
    ['.obsidian/memory/x.md', null, 'a dot-directory at the root is excluded'],
    ['_migrations/memory/x.md', null, '_migrations/ is excluded'],
    ['_dashboard/memory/x.md', null, '_dashboard/ is excluded'],
    ['caldwell/_cache/memory/x.md', null, '_cache/ is excluded at any depth'],
    ['node_modules/pkg/memory/x.md', null, 'node_modules/ is excluded'],
  ]
  it.each(cases)('%s → %s (%s)', async (rel, type) => {
    await put(rel)
    const scan = await scanVault(root)
    const unit = scan.units.find((u) => u.path === rel)
    expect(unit?.unitType ?? null).toBe(type)
  })

  it('when _migrations/ignore matches a path then it is neither a unit nor in the snapshot scope', async () => {
    await put('_migrations/ignore', '# drafts are private\ncaldwell/memory/drafts/\n*.scratch.md\n')
    await put('caldwell/memory/drafts/user_draft.md')
    await put('caldwell/memory/user_x.scratch.md')
    await put('caldwell/memory/user_kept.md')
    const scan = await scanVault(root)
    expect(scan.units.map((u) => u.path)).toEqual(['caldwell/memory/user_kept.md'])
    expect(scan.entries.map((e) => e.path)).toEqual(['_migrations/ignore', 'caldwell/memory/user_kept.md'])
  })

  it('when a unit is a symlink then it is recorded as a link, never followed, and not a unit', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'aas-outside-'))
    try {
      await writeFile(path.join(outside, 'secret.md'), '---\nschema_version: 1\n---\n')
      await mkdir(path.join(root, 'caldwell/memory'), { recursive: true })
      await symlink(path.join(outside, 'secret.md'), path.join(root, 'caldwell/memory/user_link.md'))
      await symlink(outside, path.join(root, 'caldwell/memory/linked_dir'))
      const scan = await scanVault(root)
      expect(scan.units).toEqual([])
      expect(scan.entries.map((e) => [e.path, e.mode])).toEqual([
        ['caldwell/memory/linked_dir', '120000'],
        ['caldwell/memory/user_link.md', '120000'],
      ])
    } finally {
      await rm(outside, { recursive: true, force: true })
    }
  })
})

describe('snapshot scope (docs/how-it-works.md, "What is in a snapshot")', () => {
  it('excludes .git, the store (and one being created), lock files (and the vault lock temps), run logs, legacy tarballs, tool folders and the audit log', async () => {
    const files = [
      '.git/HEAD',
      'sub/.git',
      '_migrations/aas.git/HEAD',
      '_migrations/aas.git.c84f5e0108e1.tmp/info/exclude',
      '_migrations/snapshots/2026-01-01T000000_pre_v2_migration.tar.gz',
      '_migrations/migration.jsonl',
      '.migration.lock',
      '.migration.lock.aas-tmp-17732a2123f31495',
      '.migration.lock.aas-tmp-breaking',
      'caldwell/.lock',
      'caldwell/memory/user_a.md.lock',
      'caldwell/log/2026-05/run.jsonl',
      'caldwell/log/run.jsonl',
      '_cache/x',
      '_dashboard/index.html',
      'node_modules/x/index.js',
    ]
    const kept = [
      '.obsidian/app.json',
      '_migrations/aas.git.notes.md',
      '_migrations/v1_to_v2.mjs',
      'caldwell/log/notes.md',
      'caldwell/logbook.jsonl',
      'caldwell/memory/user_a.md',
      'caldwell/persona.md',
    ]
    for (const f of [...files, ...kept]) await put(f, 'x')
    const scan = await scanVault(root)
    expect(scan.entries.map((e) => e.path)).toEqual(kept)
  })

  it('records the executable bit and sorts entries by path bytes like a git index', async () => {
    await put('b.sh', '#!/bin/sh\n')
    await chmod(path.join(root, 'b.sh'), 0o755)
    await put('a b.md', 'x')
    await put('ä.md', 'x')
    await put('a/z.md', 'x')
    const scan = await scanVault(root)
    expect(scan.entries.map((e) => [e.path, e.mode])).toEqual([
      ['a b.md', '100644'],
      ['a/z.md', '100644'],
      ['b.sh', '100755'],
      ['ä.md', '100644'],
    ])
  })
})

describe('unitTypeOf', () => {
  it('returns null for a path with no memory or wiki ancestor', () => {
    expect(unitTypeOf('caldwell/notes/x.md')).toBeNull()
    expect(unitTypeOf('memory.md')).toBeNull()
  })

  it('takes the innermost memory/ or wiki/ folder and refuses INDEX files, dot folders and _migrations/', () => {
    const cases: Array<[string, 'memory' | 'wiki' | null]> = [
      ['caldwell/memory/x.md', 'memory'],
      ['caldwell/wiki/x.md', 'wiki'],
      ['caldwell/memory/sub/deeper/x.md', 'memory'],
      ['wiki/memory/x.md', 'memory'],
      ['memory/wiki/x.md', 'wiki'],
      ['memory/x.md', 'memory'],
      ['caldwell/memory/x.markdown', null],
      ['caldwell/memory/x.md.bak', null],
      ['caldwell/memory/INDEX.md', null],
      ['caldwell/memory/INDEX_2026.md', null],
      ['caldwell/memory/INDEXES.md', 'memory'],
      ['caldwell/memory/.hidden/x.md', null],
      ['.trash/memory/x.md', null],
      ['caldwell/memory/.x.md', 'memory'],
      ['_migrations/memory/x.md', null],
      ['caldwell/memory/_migrations/x.md', null],
      ['caldwell/memoryx/x.md', null],
      ['caldwell/memory/.md', 'memory'],
      ['x.md', null],
    ]
    for (const [rel, type] of cases) expect(unitTypeOf(rel), rel).toBe(type)
  })
})
