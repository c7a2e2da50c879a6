import { chmod, link, lstat, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openStore } from '../../src/git/open-store.js'
import { saveStatCache } from '../../src/git/stat-cache.js'
import type { Store } from '../../src/git/store.js'
import { findTempFiles, rewriteNameFor } from '../../src/transaction/atomic-write.js'
import { readJournal, writeJournal, type JournalChange } from '../../src/transaction/journal.js'
import { recoverTransaction, runTransaction } from '../../src/transaction/transaction.js'

// A claimed file replaced by another regular file is rewritten in its own inode
// (claim-write.ts, rewriteClaimSync) instead of a new temp file: what it keeps (inode,
// permission bits, other hard links untouched), and how recovery resolves a file left
// at its rewrite name in each state a kill can leave it in; and that a writer's change
// hidden from the early check (which takes racy stat-cache rows on trust) is found by
// the claim, which reads the bytes. Real files, a real store.

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

const RUN = 'rewrite-test'
const oldText = (i: number) => `---\nschema_version: 1\nid: n${i}\n---\nbody ${i} with a longer line than the new version has\n`
const newText = (i: number) => `---\nschema_version: 2\nid: n${i}\n---\nbody ${i}\n`
const rel = (i: number) => `agent/memory/n${i}.md`

interface Fixture {
  root: string
  store: Store
  changes: JournalChange[]
  abs: (i: number) => string
}

async function fixture(count: number, newMode: '100644' | '100755' = '100644'): Promise<Fixture> {
  const root = await mkdtemp(path.join(tmpdir(), 'aas-rewrite-'))
  dirs.push(root)
  const store = await openStore({ agentsRoot: root })
  const abs = (i: number) => path.join(root, ...rel(i).split('/'))
  await mkdir(path.dirname(abs(0)), { recursive: true })
  for (let i = 0; i < count; i++) await writeFile(abs(i), oldText(i))
  async function* both() {
    for (let i = 0; i < count; i++) {
      yield Buffer.from(oldText(i))
      yield Buffer.from(newText(i))
    }
  }
  const oids = await store.writeBlobs(both())
  const changes: JournalChange[] = [...Array(count).keys()].map((i) => ({
    path: rel(i),
    oldOid: oids[2 * i] as string,
    oldMode: '100644',
    newOid: oids[2 * i + 1] as string,
    newMode,
  }))
  return { root, store, changes, abs }
}

function run(f: Fixture, env: NodeJS.ProcessEnv = {}) {
  return runTransaction({
    store: f.store,
    runId: RUN,
    kind: 'migrate',
    from: 'f'.repeat(40),
    to: 'e'.repeat(40),
    changes: f.changes,
    blobs: (oid) => f.store.readBlob(oid),
    faultName: 'mid-fast-forward',
    env,
  })
}

// A journal as a write phase leaves it, for recovery to find.
async function journalOf(f: Fixture): Promise<void> {
  await writeJournal(f.store.location.stateDir, {
    runId: RUN,
    kind: 'migrate',
    agentsRoot: f.root,
    from: 'f'.repeat(40),
    to: 'e'.repeat(40),
    changes: f.changes,
    startedAt: new Date().toISOString(),
  })
}

const rewriteOf = (f: Fixture, i: number) => path.join(path.dirname(f.abs(i)), rewriteNameFor(path.basename(f.abs(i)), RUN))

describe('rewriting a claimed file in place', () => {
  it.each([
    ['the main thread', { AAS_WRITE_THREADS: '1' }],
    ['the main thread and the write helper', { AAS_WRITE_THREADS: '2' }],
  ])('written by %s: every file keeps its inode and permission bits and holds the new bytes; nothing is left behind', async (_, env) => {
    const f = await fixture(600)
    for (let i = 0; i < 600; i += 7) await chmod(f.abs(i), 0o664)
    const before = await Promise.all(f.changes.map((_, i) => stat(f.abs(i))))
    const r = await run(f, env)
    expect(r.written).toBe(600)
    if (env.AAS_WRITE_THREADS === '2') expect(r.byHelper).toBeGreaterThan(0)
    for (let i = 0; i < 600; i++) {
      const st = await stat(f.abs(i))
      expect(st.ino).toBe(before[i]!.ino)
      expect(st.mode & 0o777).toBe(i % 7 === 0 ? 0o664 : before[i]!.mode & 0o777)
      expect(await readFile(f.abs(i), 'utf8')).toBe(newText(i))
    }
    expect(await findTempFiles(f.root)).toEqual([])
    expect(await readJournal(f.store.location.stateDir)).toBeNull()
  })

  it('when the executable bit changes then the file gets the new mode bits', async () => {
    const f = await fixture(3, '100755')
    await run(f)
    for (let i = 0; i < 3; i++) expect((await stat(f.abs(i))).mode & 0o777).toBe(0o755)
  })

  it('when the file has another hard link then that link keeps the old bytes (a new file is written instead)', async () => {
    const f = await fixture(3)
    const other = path.join(f.root, 'elsewhere.md')
    await link(f.abs(1), other)
    const ino = (await stat(f.abs(1))).ino
    await run(f)
    expect(await readFile(f.abs(1), 'utf8')).toBe(newText(1))
    expect((await stat(f.abs(1))).ino).not.toBe(ino)
    expect(await readFile(other, 'utf8')).toBe(oldText(1))
    expect((await stat(f.abs(0))).ino).not.toBe((await stat(f.abs(1))).ino)
    expect(await findTempFiles(f.root)).toEqual([])
  })
})

describe('recovering a file left at its rewrite name', () => {
  it('when its bytes are a mix of old and new and the path is empty then the path gets the old bytes', async () => {
    const f = await fixture(2)
    // the new bytes written over the old, the kill before the truncation
    const torn = newText(0) + oldText(0).slice(newText(0).length)
    await writeFile(f.abs(0), torn)
    await rename(f.abs(0), rewriteOf(f, 0))
    await journalOf(f)
    const r = await recoverTransaction(f.store)
    expect(r?.conflicts).toEqual([])
    expect(await readFile(f.abs(0), 'utf8')).toBe(oldText(0))
    expect(await readFile(f.abs(1), 'utf8')).toBe(oldText(1))
    expect(await findTempFiles(f.root)).toEqual([])
    expect(await readJournal(f.store.location.stateDir)).toBeNull()
  })

  it('when it is already linked at the path (a kill after the link) then the name goes and the path gets the old bytes', async () => {
    const f = await fixture(2)
    await writeFile(f.abs(0), newText(0))
    await link(f.abs(0), rewriteOf(f, 0))
    await journalOf(f)
    const r = await recoverTransaction(f.store)
    expect(r?.conflicts).toEqual([])
    expect(await readFile(f.abs(0), 'utf8')).toBe(oldText(0))
    expect(await findTempFiles(f.root)).toEqual([])
  })

  it("when a writer re-created the path meanwhile then the path ends with the old bytes followed by the writer's", async () => {
    const f = await fixture(2)
    await writeFile(f.abs(0), newText(0))
    await rename(f.abs(0), rewriteOf(f, 0))
    await writeFile(f.abs(0), 'a line the writer appended\n')
    await journalOf(f)
    const r = await recoverTransaction(f.store)
    // old + the writer's line is neither state: reported, kept, never overwritten
    expect(r?.conflicts).toEqual([rel(0)])
    expect(await readFile(f.abs(0), 'utf8')).toBe(`${oldText(0)}a line the writer appended\n`)
    expect(await lstat(rewriteOf(f, 0)).catch(() => null)).toBeNull()
  })

  it("when it holds the old bytes followed by a writer's (a write before the rewrite) then those bytes go back as they are", async () => {
    const f = await fixture(2)
    await writeFile(f.abs(0), `${oldText(0)}late line\n`)
    await rename(f.abs(0), rewriteOf(f, 0))
    await journalOf(f)
    const r = await recoverTransaction(f.store)
    expect(r?.conflicts).toEqual([rel(0)])
    expect(await readFile(f.abs(0), 'utf8')).toBe(`${oldText(0)}late line\n`)
  })
})

describe('the early check before the journal', () => {
  // A stat-cache row for path i with its stat now and the old blob id, hashed at its own
  // mtime: a racy row, as a snapshot leaves for a file written just before it read it.
  async function racyRow(f: Fixture, i: number): Promise<void> {
    const st = await lstat(f.abs(i))
    const e = { path: rel(i), mode: '100644' as const, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, dev: st.dev, unitType: null }
    const entries = [{ e, oid: f.changes[i]!.oldOid as string }]
    await saveStatCache(f.store.location.stateDir, { tree: '3'.repeat(40), trees: [], entries, scanStartedMs: st.mtimeMs })
  }

  it("when a racy stat-cache row hides a writer's change then the claim finds it: the writes are undone and the writer's bytes stay", async () => {
    const f = await fixture(40)
    const before = await Promise.all(f.changes.map((_, i) => stat(f.abs(i))))
    // A writer put bytes of the same length into n20 after a snapshot read its old bytes, in
    // the same clock tick: the stat the snapshot recorded (with the old id) is its stat now.
    const theirs = oldText(20).replace('longer', 'LONGER')
    await writeFile(f.abs(20), theirs)
    await racyRow(f, 20)
    await expect(run(f, { AAS_WRITE_THREADS: '1' })).rejects.toMatchObject({ code: 'CONCURRENT_CHANGE', data: { paths: [rel(20)] } })
    // The early check let it through: the paths before n20 were written, then undone.
    expect((await stat(f.abs(0))).ctimeMs).not.toBe(before[0]!.ctimeMs)
    expect(await readFile(f.abs(20), 'utf8')).toBe(theirs)
    for (let i = 0; i < 40; i++) if (i !== 20) expect(await readFile(f.abs(i), 'utf8')).toBe(oldText(i))
    expect(await findTempFiles(f.root)).toEqual([])
    expect(await readJournal(f.store.location.stateDir)).toBeNull()
  })

  it("when the writer's change shows in the stat then the early check refuses before any write", async () => {
    const f = await fixture(40)
    const before = await Promise.all(f.changes.map((_, i) => stat(f.abs(i))))
    await racyRow(f, 20)
    await writeFile(f.abs(20), `${oldText(20)}a line the writer appended\n`)
    await expect(run(f, { AAS_WRITE_THREADS: '1' })).rejects.toMatchObject({ code: 'CONCURRENT_CHANGE', data: { paths: [rel(20)] } })
    for (let i = 0; i < 40; i++) if (i !== 20) expect((await stat(f.abs(i))).ctimeMs).toBe(before[i]!.ctimeMs)
    expect(await readJournal(f.store.location.stateDir)).toBeNull()
  })
})
