import { spawnSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isAasError } from '../../src/errors.js'
import { openStore } from '../../src/git/open-store.js'
import type { Store } from '../../src/git/store.js'
import { findTempFiles } from '../../src/transaction/atomic-write.js'
import { readJournal, type JournalChange } from '../../src/transaction/journal.js'
import type { BlobSource } from '../../src/transaction/blob-prefetch.js'
import { runTransaction } from '../../src/transaction/transaction.js'
import { useWriteHelper } from '../../src/transaction/write-helper.js'
import { binPath } from '../helpers/run-cli.js'
import { generateVault } from '../helpers/gen-vault.js'
import { captureTree } from '../helpers/tree-state.js'

// The write helper (src/transaction/write-helper.ts): a second thread writing part of a
// big write phase by the same claim protocol. Real files, a real store, a real worker
// thread; the crash case kills a real CLI process from inside the helper's share.

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

const PATHS = 700 // above the default threshold, so the helper takes part without being forced

interface Fixture {
  root: string
  store: Store
  changes: JournalChange[]
  oldText: (i: number) => string
  newText: (i: number) => string
  fileOf: (i: number) => string
}

// `count` files live at rel(i) with oldBytes(i), both versions of each in the store,
// and the changes from the old to the new.
async function committed(
  prefix: string,
  count: number,
  rel: (i: number) => string,
  oldBytes: (i: number) => Buffer,
  newBytes: (i: number) => Buffer,
): Promise<{ root: string; store: Store; changes: JournalChange[] }> {
  const root = await mkdtemp(path.join(tmpdir(), prefix))
  dirs.push(root)
  const store = await openStore({ agentsRoot: root })
  const indices = [...Array(count).keys()]
  for (const i of indices) {
    const abs = path.join(root, ...rel(i).split('/'))
    await mkdir(path.dirname(abs), { recursive: true })
    await writeFile(abs, oldBytes(i))
  }
  async function* both() {
    for (const i of indices) {
      yield oldBytes(i)
      yield newBytes(i)
    }
  }
  const oids = await store.writeBlobs(both())
  const changes: JournalChange[] = indices.map((i) => ({
    path: rel(i),
    oldOid: oids[2 * i] as string,
    oldMode: '100644',
    newOid: oids[2 * i + 1] as string,
    newMode: '100644',
  }))
  return { root, store, changes }
}

// PATHS units, each in a folder of its own (so one folder can be swapped without
// touching the others), committed to the store in their old and new versions.
async function fixture(): Promise<Fixture> {
  const rel = (i: number) => `agent/memory/d${String(i).padStart(4, '0')}/note.md`
  const oldText = (i: number) => `---\nschema_version: 1\nid: n${i}\n---\nbody ${i}\n`
  const newText = (i: number) => `---\nschema_version: 2\nid: n${i}\nprovenance: test\n---\nbody ${i}\n`
  const { root, store, changes } = await committed(
    'aas-helper-',
    PATHS,
    rel,
    (i) => Buffer.from(oldText(i)),
    (i) => Buffer.from(newText(i)),
  )
  return { root, store, changes, oldText, newText, fileOf: (i) => path.join(root, ...rel(i).split('/')) }
}

const storeBlobs =
  (store: Store): BlobSource =>
  (oid) =>
    store.readBlob(oid)

function transaction(f: Fixture, blobs: BlobSource, env: NodeJS.ProcessEnv = {}) {
  return runTransaction({
    store: f.store,
    runId: 'helper-test',
    kind: 'migrate',
    from: 'f'.repeat(40),
    to: 'e'.repeat(40),
    changes: f.changes,
    blobs,
    faultName: 'mid-fast-forward',
    env,
  })
}

async function texts(f: Fixture): Promise<string[]> {
  return Promise.all(f.changes.map((_, i) => readFile(f.fileOf(i), 'utf8')))
}

describe('the write helper thread', () => {
  it('is used from 400 paths on a machine with a second core, never with AAS_WRITE_THREADS=1, always with =2', () => {
    expect(useWriteHelper(399, {})).toBe(false)
    expect(useWriteHelper(400, {})).toBe(true) // these machines have 2 cores
    expect(useWriteHelper(100_000, { AAS_WRITE_THREADS: '1' })).toBe(false)
    expect(useWriteHelper(1, { AAS_WRITE_THREADS: '2' })).toBe(true)
  })

  it('writes its share: every path ends at its new bytes, nothing left behind, journal gone', async () => {
    const f = await fixture()
    const r = await transaction(f, storeBlobs(f.store))
    expect(r.written).toBe(PATHS)
    expect(r.byHelper).toBeGreaterThan(PATHS / 4) // about half of the paths
    expect(r.byHelper).toBeLessThan(PATHS)
    expect(await texts(f)).toEqual(f.changes.map((_, i) => f.newText(i)))
    expect(await findTempFiles(f.root)).toEqual([])
    expect(await readJournal(f.store.location.stateDir)).toBeNull()
  })

  it('with AAS_WRITE_THREADS=1 the main thread writes every path', async () => {
    const f = await fixture()
    const r = await transaction(f, storeBlobs(f.store), { AAS_WRITE_THREADS: '1' })
    expect(r).toMatchObject({ written: PATHS, byHelper: 0 })
    expect(await texts(f)).toEqual(f.changes.map((_, i) => f.newText(i)))
  })

  it('when a path of its share changed after the check: CONCURRENT_CHANGE names it, the writer keeps its bytes, every other path is back at its old bytes', async () => {
    const f = await fixture()
    // Index 450 lies in the second half of the second chunk of 256: the helper's share.
    // Its live file changes once the write phase is under way (the second chunk's blobs
    // are read after the first chunk was written), after the early check of every path.
    const moved = 450
    const source = storeBlobs(f.store)
    let changed = false
    const blobs: BlobSource = async (oid) => {
      if (!changed && oid === f.changes[300]?.newOid) {
        changed = true
        await writeFile(f.fileOf(moved), 'an agent wrote this\n')
      }
      return source(oid)
    }
    const err = await transaction(f, blobs).catch((e: unknown) => e)
    expect(isAasError(err, 'CONCURRENT_CHANGE'), String(err)).toBe(true)
    expect((err as { data: { paths: string[] } }).data.paths).toEqual([f.changes[moved]?.path])
    const after = await texts(f)
    expect(after[moved]).toBe('an agent wrote this\n')
    expect(after.filter((_, i) => i !== moved)).toEqual(f.changes.map((_, i) => f.oldText(i)).filter((_, i) => i !== moved))
    expect(await findTempFiles(f.root)).toEqual([])
    expect(await readJournal(f.store.location.stateDir)).toBeNull()
  })

  it('when a write of its share fails: the error names the path and every path is back at its old bytes', async () => {
    const f = await fixture()
    // Index 200 is in the helper's half of the first chunk. Its folder becomes a
    // symlink (to a copy) once the phase is under way: writes never go through one.
    const failing = 200
    const dir = path.dirname(f.fileOf(failing))
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'aas-helper-elsewhere-'))
    dirs.push(elsewhere)
    const source = storeBlobs(f.store)
    let swapped = false
    const blobs: BlobSource = async (oid) => {
      if (!swapped) {
        swapped = true
        await writeFile(path.join(elsewhere, 'note.md'), f.oldText(failing))
        await rm(dir, { recursive: true })
        await symlink(elsewhere, dir)
      }
      return source(oid)
    }
    const err = await transaction(f, blobs).catch((e: unknown) => e)
    expect(isAasError(err), String(err)).toBe(true)
    expect((err as Error).message).toContain(dir)
    const after = await texts(f)
    expect(after.filter((_, i) => i !== failing)).toEqual(f.changes.map((_, i) => f.oldText(i)).filter((_, i) => i !== failing))
    expect(await readFile(path.join(elsewhere, 'note.md'), 'utf8')).toBe(f.oldText(failing)) // never written through the link
    expect(await findTempFiles(f.root)).toEqual([])
  })

  it('when the new files are big: the write phase holds a bounded share of their bytes at once, not a whole chunk of 256 paths', async () => {
    // 100 files of 1.2 MiB, each modified (the helper's kind of path): read ahead in
    // chunks of at most 32 MiB, with at most 32 MiB more waiting for the helper.
    const SIZE = 1_258_291 // 1.2 MiB
    const rel = (i: number) => `agent/raw/d${String(i).padStart(3, '0')}/file.bin`
    const indices = [...Array(100).keys()]
    const { root, store, changes } = await committed(
      'aas-helper-big-',
      indices.length,
      rel,
      (i) => Buffer.alloc(SIZE, i),
      (i) => Buffer.alloc(SIZE + 1, i),
    )
    // At each request: the new bytes handed out so far, less those of paths already written.
    let handed = 0
    let held = 0
    const blobs: BlobSource = async (oid) => {
      const written = indices.filter((i) => statSync(path.join(root, rel(i)), { throwIfNoEntry: false })?.size === SIZE + 1).length
      handed++
      held = Math.max(held, (handed - written) * (SIZE + 1))
      return store.readBlob(oid)
    }
    const r = await runTransaction({
      store,
      runId: 'helper-big',
      kind: 'migrate',
      from: 'f'.repeat(40),
      to: 'e'.repeat(40),
      changes,
      blobs,
      faultName: 'mid-fast-forward',
      env: { AAS_WRITE_THREADS: '2' },
    })
    expect(r.written).toBe(100)
    expect(r.byHelper).toBeGreaterThan(0)
    expect(held).toBeLessThanOrEqual(96 * 1024 * 1024) // 120 MiB when a chunk was 256 paths whatever their size
    for (const i of indices) expect(statSync(path.join(root, rel(i))).size).toBe(SIZE + 1)
  })

  it('a SIGKILL inside its share (mid-link of a path it writes) is recovered by the next command to exactly the vault before', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'aas-helper-kill-'))
    dirs.push(root)
    await generateVault(root, { units: 600, seed: 5, bodyBytes: 300 })
    await mkdir(path.join(root, '_migrations'), { recursive: true })
    await writeFile(path.join(root, '_migrations', 'v1_to_v2.mjs'), await readFile(path.join(__dirname, '..', '..', 'fixtures', 'migrations', 'v1_to_v2.mjs')))
    const notEngine = (rel: string) => rel.startsWith('_migrations/aas.git')
    const before = await captureTree(root, { exclude: notEngine })
    // Path 200 of ~600 changed units: the second half of the first chunk, the helper's.
    const run = spawnSync(process.execPath, [binPath, '--agents-root', root, '--to', 'v2', '--no-progress'], {
      env: { ...process.env, AAS_FAULT: 'mid-link:200', NO_COLOR: '1' },
      encoding: 'utf8',
    })
    expect(run.signal, run.stderr).toBe('SIGKILL')
    const status = spawnSync(process.execPath, [binPath, '--agents-root', root, '--status', '--no-progress'], {
      env: { ...process.env, NO_COLOR: '1' },
      encoding: 'utf8',
    })
    expect(status.status, status.stderr).toBe(0)
    expect(status.stderr + status.stdout).toMatch(/recover/i)
    const after = await captureTree(root, { exclude: (rel) => notEngine(rel) || rel === '_migrations/migration.jsonl' || rel === '.migration.lock' })
    const beforeNoLog = Object.fromEntries(Object.entries(before).filter(([k]) => k !== '_migrations/migration.jsonl' && k !== '.migration.lock'))
    expect(after).toEqual(beforeNoLog)
  })
})
