import { spawnSync } from 'node:child_process'
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { findTempFiles, removeFile, replaceWithSymlink, writeFileAtomic } from '../../src/transaction/atomic-write.js'
import { hashBlob } from '../../src/transaction/blob-hash.js'
import {
  clearJournal,
  invalidJournal,
  planRecovery,
  readJournal,
  readLiveStates,
  writeJournal,
  type Journal,
  type JournalChange,
  type JournalInput,
  type RecoveryPlan,
} from '../../src/transaction/journal.js'
import { AasError } from '../../src/errors.js'
import { loadStatCache, saveStatCache, type StatCache } from '../../src/git/stat-cache.js'
import { repoRoot } from '../helpers/make-vault.js'
import { journalSchema } from '../../src/transaction/journal-schema.js'

const S = '1'.repeat(40)
const M = '2'.repeat(40)

async function caught(p: Promise<unknown>): Promise<AasError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  )
  if (!(err instanceof AasError)) throw new Error(`expected an AasError, got ${String(err)}`)
  return err
}

// A small S → M transition covering every kind of change.
const OLD = {
  'alice/memory/edit.md': Buffer.from('---\nschema_version: 1\n---\n'),
  'alice/memory/gone.md': Buffer.from('deleted in M\n'),
  'alice/run.sh': Buffer.from('#!/bin/sh\n'),
  'alice/wiki/link.md': Buffer.from('edit.md'), // a symlink in S
}
const NEW = {
  'alice/memory/edit.md': Buffer.from('---\nschema_version: 2\n---\n'),
  'bob/wiki/new/page.md': Buffer.from('created in M\n'),
  'alice/run.sh': Buffer.from('#!/bin/sh\n'), // mode change only
  'alice/wiki/link.md': Buffer.from('link is now a file\n'),
}
const CHANGES: JournalChange[] = [
  {
    path: 'alice/memory/edit.md',
    oldOid: hashBlob(OLD['alice/memory/edit.md']),
    oldMode: '100644',
    newOid: hashBlob(NEW['alice/memory/edit.md']),
    newMode: '100644',
  },
  { path: 'alice/memory/gone.md', oldOid: hashBlob(OLD['alice/memory/gone.md']), oldMode: '100644', newOid: null, newMode: null },
  { path: 'alice/run.sh', oldOid: hashBlob(OLD['alice/run.sh']), oldMode: '100644', newOid: hashBlob(NEW['alice/run.sh']), newMode: '100755' },
  {
    path: 'alice/wiki/link.md',
    oldOid: hashBlob(OLD['alice/wiki/link.md']),
    oldMode: '120000',
    newOid: hashBlob(NEW['alice/wiki/link.md']),
    newMode: '100644',
  },
  { path: 'bob/wiki/new/page.md', oldOid: null, oldMode: null, newOid: hashBlob(NEW['bob/wiki/new/page.md']), newMode: '100644' },
]
const BLOBS = new Map<string, Buffer>([...Object.values(OLD), ...Object.values(NEW)].map((b) => [hashBlob(b), b]))

function input(overrides: Partial<JournalInput> = {}): JournalInput {
  return { runId: 'run-1', kind: 'migrate', agentsRoot: '/vault', from: S, to: M, changes: CHANGES, startedAt: '2026-05-06T10:00:00.000Z', ...overrides }
}

describe('journal', () => {
  let base: string
  let stateDir: string
  let root: string
  beforeEach(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'aas-journal-'))
    stateDir = path.join(base, 'git', 'aas')
    root = path.join(base, 'vault')
    await mkdir(root)
  })
  afterEach(async () => {
    await rm(base, { recursive: true, force: true })
  })

  // Put the vault in state S (plus the given overrides per path).
  async function materialiseOld(): Promise<void> {
    await mkdir(path.join(root, 'alice', 'memory'), { recursive: true })
    await mkdir(path.join(root, 'alice', 'wiki'), { recursive: true })
    await writeFile(path.join(root, 'alice/memory/edit.md'), OLD['alice/memory/edit.md'])
    await writeFile(path.join(root, 'alice/memory/gone.md'), OLD['alice/memory/gone.md'])
    await writeFile(path.join(root, 'alice/run.sh'), OLD['alice/run.sh'])
    await chmod(path.join(root, 'alice/run.sh'), 0o644)
    await symlink('edit.md', path.join(root, 'alice/wiki/link.md'))
  }

  // Apply a recovery plan with the primitives, as the engine does.
  async function apply(plan: RecoveryPlan): Promise<void> {
    for (const step of plan.steps) {
      const abs = path.join(root, step.path)
      if (step.target === null) await removeFile(abs, { within: root, pruneEmptyDirs: true })
      else if (step.target.mode === '120000') await replaceWithSymlink(abs, BLOBS.get(step.target.oid)!, { within: root })
      else await writeFileAtomic(abs, BLOBS.get(step.target.oid)!, { within: root, mode: step.target.mode })
    }
  }

  async function plan(direction: 'forward' | 'backward' = 'forward'): Promise<RecoveryPlan> {
    return planRecovery({ changes: CHANGES }, await readLiveStates(root, CHANGES), { direction })
  }

  it('when written then it reads back equal, and no temp file remains in the state dir', async () => {
    const written = await writeJournal(stateDir, input())
    expect(await readJournal(stateDir)).toEqual(written)
    expect(written).toMatchObject({ format: 'aas-journal', version: 1, runId: 'run-1', changes: CHANGES })
    expect(await readdir(stateDir)).toEqual(['journal.json'])
  })

  it('when there is no journal then readJournal returns null, and clearJournal is a no-op', async () => {
    expect(await readJournal(stateDir)).toBeNull()
    await mkdir(stateDir, { recursive: true })
    await clearJournal(stateDir)
    await writeJournal(stateDir, input())
    await clearJournal(stateDir)
    expect(await readJournal(stateDir)).toBeNull()
    expect(await readdir(stateDir)).toEqual([])
  })

  it('when a journal already exists then writeJournal refuses with RECOVERY_REQUIRED and keeps the first', async () => {
    await writeJournal(stateDir, input())
    const err = await caught(writeJournal(stateDir, input({ runId: 'run-2' })))
    expect(err.code).toBe('RECOVERY_REQUIRED')
    expect((await readJournal(stateDir))?.runId).toBe('run-1')
    expect(await readdir(stateDir)).toEqual(['journal.json'])
  })

  it.each([
    ['torn', (t: string) => t.slice(0, Math.floor(t.length / 2))],
    ['empty', () => ''],
    ['a bad oid', (t: string) => t.replace(S, 'zz')],
    ['unknown format', (t: string) => t.replace('aas-journal', 'other')],
  ])('when the journal is %s then readJournal fails with STORE_CORRUPT and a hint', async (_name, damage) => {
    await writeJournal(stateDir, input())
    const file = path.join(stateDir, 'journal.json')
    await writeFile(file, damage(await readFile(file, 'utf8')))
    const err = await caught(readJournal(stateDir))
    expect(err.code).toBe('STORE_CORRUPT')
    expect(err.data.file).toBe(file)
    expect(err.hint).toContain(`rm '${file}'`)
  })

  it('when a journal is checked as it is written and as it is read back then both checks give the same verdict', () => {
    const j = { format: 'aas-journal', version: 1, ...input() } as Journal
    const c = CHANGES[0] as JournalChange
    const cases: Array<[string, unknown]> = [
      ['valid', j],
      ['no changes', { ...j, changes: [] }],
      ['another format', { ...j, format: 'other' }],
      ['version 2', { ...j, version: 2 }],
      ['an empty run id', { ...j, runId: '' }],
      ['a numeric run id', { ...j, runId: 7 }],
      ['another kind', { ...j, kind: 'apply' }],
      ['an empty agents root', { ...j, agentsRoot: '' }],
      ['a short from', { ...j, from: 'abc' }],
      ['an upper-case to', { ...j, to: M.toUpperCase() }],
      ['no startedAt', { ...j, startedAt: undefined }],
      ['changes not a list', { ...j, changes: {} }],
      ['a change that is null', { ...j, changes: [null] }],
      ['an empty path', { ...j, changes: [{ ...c, path: '' }] }],
      ['a numeric path', { ...j, changes: [{ ...c, path: 1 }] }],
      ['a bad old id', { ...j, changes: [{ ...c, oldOid: 'x'.repeat(40) }] }],
      ['a directory mode', { ...j, changes: [{ ...c, newMode: '040000' }] }],
      ['a new id without a mode', { ...j, changes: [{ ...c, newMode: null }] }],
      ['an old mode without an id', { ...j, changes: [{ ...c, oldOid: null }] }],
      ['an added path', { ...j, changes: [{ ...c, oldOid: null, oldMode: null }] }],
      ['a removed path', { ...j, changes: [{ ...c, newOid: null, newMode: null }] }],
    ]
    for (const [name, value] of cases) {
      expect({ name, written: invalidJournal(value as Journal) === null }).toEqual({ name, written: journalSchema.safeParse(value).success })
    }
    expect(invalidJournal(j)).toBeNull()
  })

  it('when the input is inconsistent then writeJournal refuses and writes nothing', async () => {
    const bad = [{ ...CHANGES[0]!, newMode: null }]
    const err = await caught(writeJournal(stateDir, input({ changes: bad })))
    expect(err.code).toBe('STORE_FAILED')
    expect(await readJournal(stateDir)).toBeNull()
  })

  it('when nothing was written yet then forward recovery writes every change and reaches M exactly', async () => {
    await materialiseOld()
    const p = await plan()
    expect(p).toMatchObject({ atOld: 5, atNew: 0, conflicts: [] })
    expect(p.steps.map((s) => s.path)).toEqual(CHANGES.map((c) => c.path))
    await apply(p)
    const after = await plan()
    expect(after).toMatchObject({ atNew: 5, steps: [], conflicts: [] })
    expect(await readFile(path.join(root, 'alice/wiki/link.md'), 'utf8')).toBe('link is now a file\n')
    await expect(readFile(path.join(root, 'alice/memory/gone.md'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('when interrupted after every prefix of writes then forward and backward recovery both end exactly at one side', async () => {
    for (let done = 0; done <= CHANGES.length; done++) {
      for (const direction of ['forward', 'backward'] as const) {
        await rm(root, { recursive: true, force: true })
        await mkdir(root)
        await materialiseOld()
        // The first `done` changes were applied before the crash.
        const partial = await plan('forward')
        await apply({ ...partial, steps: partial.steps.slice(0, done) })
        const p = await plan(direction)
        expect(p.conflicts).toEqual([])
        expect(p.steps).toHaveLength(direction === 'forward' ? CHANGES.length - done : done)
        await apply(p)
        const end = await plan(direction)
        expect(end.steps).toEqual([])
        expect(direction === 'forward' ? end.atNew : end.atOld).toBe(CHANGES.length)
        // Recovery is idempotent: planning again finds nothing to do.
        await apply(end)
        expect((await plan(direction)).steps).toEqual([])
      }
    }
    // After backward recovery the tree S is back, including the symlink and no bob/ directory.
    expect(await readdir(root)).toEqual(['alice'])
  })

  it('when a changed path holds neither state then it is a conflict and is not in the steps', async () => {
    await materialiseOld()
    await writeFile(path.join(root, 'alice/memory/edit.md'), 'edited by an agent after the crash\n')
    const p = await plan()
    expect(p.conflicts).toEqual([
      { path: 'alice/memory/edit.md', live: { mode: '100644', oid: hashBlob(Buffer.from('edited by an agent after the crash\n')) } },
    ])
    expect(p.steps.map((s) => s.path)).not.toContain('alice/memory/edit.md')
  })

  it('when only the mode differs then the path counts as not yet written', async () => {
    await materialiseOld()
    const live = await readLiveStates(root, CHANGES)
    expect(live.get('alice/run.sh')).toEqual({ mode: '100644', oid: CHANGES[2]!.oldOid })
    const p = planRecovery({ changes: [CHANGES[2]!] }, live)
    expect(p.steps).toEqual([{ path: 'alice/run.sh', target: { oid: CHANGES[2]!.newOid, mode: '100755' } }])
  })

  it('with a stat cache, a file whose stat matches a trusted row is not read again, and any other is hashed', async () => {
    await materialiseOld()
    const rel = 'alice/memory/edit.md'
    const st = await lstat(path.join(root, rel))
    const entry = {
      path: rel,
      mode: '100644' as const,
      size: st.size,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
      ino: st.ino,
      dev: st.dev,
      unitType: 'memory' as const,
    }
    const cacheOf = async (e: typeof entry, scanStartedMs: number): Promise<StatCache> => {
      const dir = await mkdtemp(path.join(base, 'cache-'))
      await saveStatCache(dir, { tree: '3'.repeat(40), trees: [], entries: [{ e, oid: '9'.repeat(40) }], scanStartedMs })
      return loadStatCache(dir)
    }
    const hashed = hashBlob(await readFile(path.join(root, rel)))
    // The cached id (a made-up one) proves the file was not read.
    expect((await readLiveStates(root, [{ path: rel }], await cacheOf(entry, st.mtimeMs + 60_000))).get(rel)).toEqual({ mode: '100644', oid: '9'.repeat(40) })
    expect((await readLiveStates(root, [{ path: rel }], await cacheOf({ ...entry, mtimeMs: st.mtimeMs - 1 }, st.mtimeMs + 60_000))).get(rel)).toEqual({
      mode: '100644',
      oid: hashed,
    })
    // A row hashed too close to its mtime (racy) is not trusted, unless the caller takes racy
    // rows as a guess (the early check before a write phase): then its stat must still match.
    const racy = await cacheOf(entry, st.mtimeMs)
    expect((await readLiveStates(root, [{ path: rel }], racy)).get(rel)).toEqual({ mode: '100644', oid: hashed })
    expect((await readLiveStates(root, [{ path: rel }], racy, { racy: true })).get(rel)).toEqual({ mode: '100644', oid: '9'.repeat(40) })
    expect((await readLiveStates(root, [{ path: rel }], await cacheOf({ ...entry, size: st.size + 1 }, st.mtimeMs), { racy: true })).get(rel)).toEqual({
      mode: '100644',
      oid: hashed,
    })
  })

  it('when a writer following the protocol is killed -9 at each kill point then recovery ends exactly at M', async () => {
    const src = (f: string) => JSON.stringify(new URL(`file://${path.join(repoRoot, 'src/transaction', f)}`).href)
    const script = path.join(base, 'writer.mts')
    await writeFile(
      script,
      `import { writeFileAtomic, replaceWithSymlink, removeFile, fsyncAll } from ${src('atomic-write.ts')}
import { writeJournal, clearJournal } from ${src('journal.ts')}
import { faultPoint } from ${src('faults.ts')}
import { readFileSync } from 'node:fs'
import path from 'node:path'
const [root, stateDir, dataFile] = process.argv.slice(2)
const { input, blobs } = JSON.parse(readFileSync(dataFile, 'utf8'))
await writeJournal(stateDir, input)
faultPoint('after-journal')
const files = [], dirs = new Set()
for (const [i, c] of input.changes.entries()) {
  faultPoint('mid-fast-forward', i + 1)
  const abs = path.join(root, c.path)
  if (c.newOid === null) { const r = await removeFile(abs, { within: root, pruneEmptyDirs: true }); r.prunedDirs.forEach((d) => dirs.add(path.dirname(d))) }
  else if (c.newMode === '120000') await replaceWithSymlink(abs, Buffer.from(blobs[c.newOid], 'base64'), { within: root, runId: input.runId })
  else { const r = await writeFileAtomic(abs, Buffer.from(blobs[c.newOid], 'base64'), { within: root, mode: c.newMode, runId: input.runId, fsync: false }); files.push(abs); r.createdDirs.forEach((d) => dirs.add(path.dirname(d))) }
  dirs.add(path.dirname(abs))
}
await fsyncAll({ files, dirs })
faultPoint('before-journal-delete')
await clearJournal(stateDir)
`,
    )
    const dataFile = path.join(base, 'data.json')
    const blobs = Object.fromEntries([...BLOBS].map(([oid, b]) => [oid, b.toString('base64')]))
    await writeFile(dataFile, JSON.stringify({ input: input({ agentsRoot: root }), blobs }))
    for (const fault of ['', 'after-journal', 'mid-fast-forward:3', 'before-journal-delete']) {
      await rm(root, { recursive: true, force: true })
      await mkdir(root)
      await materialiseOld()
      const env = { ...process.env, AAS_FAULT: fault }
      const child = spawnSync(process.execPath, ['--import', 'tsx', script, root, stateDir, dataFile], { cwd: repoRoot, env, encoding: 'utf8' })
      expect(child.stderr).toBe('')
      expect(child.signal).toBe(fault ? 'SIGKILL' : null)
      const journal = await readJournal(stateDir)
      expect(journal === null).toBe(fault === '')
      if (journal) {
        const p = planRecovery(journal, await readLiveStates(root, journal.changes))
        expect(p.conflicts).toEqual([])
        await apply(p)
        await clearJournal(stateDir)
      }
      const end = await plan()
      expect(end).toMatchObject({ atNew: CHANGES.length, steps: [], conflicts: [] })
      expect(await findTempFiles(root)).toEqual([])
      expect(await readJournal(stateDir)).toBeNull()
    }
  })
})
