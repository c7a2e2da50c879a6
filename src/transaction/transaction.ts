import { closeSync, constants, lstatSync, openSync, readFileSync, unlinkSync } from 'node:fs'
import { rename } from 'node:fs/promises'
import path from 'node:path'
import { AasError } from '../errors.js'
import type { Store, TreeChange } from '../git/store.js'
import { loadStatCache } from '../git/stat-cache.js'
import type { FileMode } from '../vault/walk.js'
import {
  claimNameFor,
  fsyncAll,
  modeBits,
  prepareTempSync,
  restoreClaimSync,
  type OwnBytes,
  removeFile,
  removeFileSync,
  removeTempFiles,
  replaceWithSymlink,
  rewriteNameFor,
  writeFileAtomic,
  type VerifiedDirs,
} from './atomic-write.js'
import { claimAndPlaceSync, newTouched, putBackOld, sameState, type BlobContent, type PathOutcome, type Touched } from './claim-write.js'
import { BIG_BLOB_BYTES } from '../git/store.js'
import { writeBlobToTemp } from './blob-stream.js'
import { prefetchingBlobSource, type BlobSource } from './blob-prefetch.js'
import { hashLiveEntrySync } from './blob-hash.js'
import { collectGarbage } from './collect.js'
import { faultPoint } from './faults.js'
import { WriteHelper, useWriteHelper } from './write-helper.js'
import type { WriteItem } from './write-worker.js'
import { clearJournal, planRecovery, readJournal, readLiveStates, replaceJournal, writeJournal, type Journal, type JournalChange } from './journal.js'

// Applies a set of path changes to the live vault as one recoverable transaction
// (docs/how-it-works.md, "The journal and the fast-forward"): journal first, then
// each file, then fsync, then the journal goes.
//
// How one path is written, so that a writer taking no lock never loses a write:
//   1. claim: rename(live, claim) — atomic; from now on a writer opening the path
//      creates a new file instead of editing the claimed one.    kill point mid-claim:<i>
//   2. check the claimed bytes are the old state; if not, put them back (below) and abort.
//   3. place the new state: temp file, then link(temp, live), which fails with EEXIST
//      when a writer created the path since step 1 — never overwritten; the claim is
//      put back and the run aborts.                             kill point mid-link:<i>
//   4. re-check the claim (a writer holding the file open from before step 1 wrote
//      into the claimed inode): if it changed, put it back and abort. Then unlink the claim.
// Putting a claim back (restoreClaimSync) never drops a writer's bytes: a lock-free
// appender (`>>`) that wrote while the file was claimed re-created the path with only
// its new bytes; those are appended to the claim before it goes back, so the path ends
// with the file as it was plus everything the writer added (the engine's own new
// bytes, if it had placed them, are left out).
// Added paths skip 1, 2 and 4 (link refuses an existing file); removed paths skip 3.
// A regular file replaced by another is rewritten in its own claimed inode instead of
// steps 3 and 4 (claim-write.ts, rewriteClaimSync: its name while rewritten, its checks,
// its window); recovery resolves a file left at that name (resolveRewrite, below).
// Remaining windows, each a few system calls wide: a writer that keeps the file open
// from before step 1 and writes into it after step 4's re-check and before the unlink;
// a writer that holds a re-created file open while it is merged into the claim.
// Cooperating agents hold <agent>/.lock, which the engine holds for the whole write
// phase, so they never reach either.
//
// Abort: the journal is narrowed (atomically) to the paths already written, then
// recovered backward. Recovery (any command finding a journal) first puts claim files
// of the journal's paths back (merged with a writer's file at the path, as above; the
// engine's new bytes there are dropped) — then classifies every path as at-old / at-new / neither and restores the old
// state; a path at neither was changed by someone else and is never overwritten.
// A SIGKILL at any instant therefore leaves, per path, old bytes at the path or in
// its claim, or new bytes at the path: each is recovered to exactly the old state.

export type { BlobContent } from './claim-write.js'

export interface TransactionInput {
  store: Store
  runId: string
  kind: Journal['kind']
  from: string // commit of the state the vault is in now
  to: string // commit of the state to reach
  changes: JournalChange[]
  blobs: BlobSource
  faultName: 'mid-fast-forward' | 'mid-rollback'
  env?: NodeJS.ProcessEnv // AAS_WRITE_THREADS (write-helper.ts)
  onProgress?: (done: number, total: number) => void
}

export interface TransactionResult {
  written: number
  removed: number
  byHelper: number // of the paths written, those the write helper thread wrote (write-helper.ts)
}

export function journalChangesOf(changes: readonly TreeChange[]): JournalChange[] {
  return changes.map((c) => ({
    path: c.path,
    oldOid: c.status === 'added' ? null : c.oldOid,
    oldMode: c.status === 'added' ? null : c.oldMode,
    newOid: c.status === 'deleted' ? null : c.newOid,
    newMode: c.status === 'deleted' ? null : c.newMode,
  }))
}

function absOf(root: string, rel: string): string {
  return path.join(root, ...rel.split('/'))
}

function concurrentChange(paths: string[], phase: string): AasError {
  const shown = paths.slice(0, 20).join(', ')
  return new AasError(
    'CONCURRENT_CHANGE',
    `${paths.length === 1 ? `${paths[0]} was` : `${paths.length} files were`} changed while the ${phase} ran: ${shown}${paths.length > 20 ? ', …' : ''}. Nothing was overwritten; the vault is as it was before the command.`,
    {
      hint: 'Stop the agents writing to these files (or wait for them to finish), check --status, then run the command again.',
      data: { paths },
    },
  )
}

// Write one target state at a path: a blob with a mode, or nothing.
async function putState(
  store: Store,
  rel: string,
  target: { oid: string; mode: FileMode } | null,
  blobs: BlobSource,
  runId: string,
  touched: Touched,
): Promise<'written' | 'removed'> {
  const root = store.agentsRoot
  const abs = absOf(root, rel)
  touched.dirs.add(path.dirname(abs))
  if (target === null) {
    const r = await removeFile(abs, { within: root, pruneEmptyDirs: true })
    for (const d of r.prunedDirs) touched.dirs.add(path.dirname(d))
    return 'removed'
  }
  const content = await blobs(target.oid)
  let createdDirs: string[]
  if (!Buffer.isBuffer(content)) {
    if (target.mode === '120000')
      throw new AasError('STORE_CORRUPT', `Symlink ${rel} has a ${content.size}-byte target in the store.`, {
        hint: 'Run `aas-migrate --doctor`.',
        data: { path: rel },
      })
    const prepared = prepareTempSync(abs, { within: root, runId })
    createdDirs = prepared.createdDirs
    await writeBlobToTemp(store, content.oid, prepared.temp, target.mode, { expectedSize: content.size })
    await rename(prepared.temp, abs)
  } else {
    const r =
      target.mode === '120000'
        ? await replaceWithSymlink(abs, content, { within: root, runId })
        : await writeFileAtomic(abs, content, { mode: target.mode, within: root, runId, fsync: false })
    createdDirs = r.createdDirs
  }
  for (const d of createdDirs) touched.dirs.add(path.dirname(d))
  if (target.mode !== '120000') touched.files.add(abs)
  return 'written'
}

async function makeDurable(touched: Touched): Promise<void> {
  await fsyncAll({ files: touched.files, dirs: touched.dirs })
}

// The early refusal of paths changed since the snapshot: stat first (the claim of each
// path checks its bytes again). A call of its own, so that the live states and the stat
// cache (a vault's worth each) are dropped before the writes.
// Racy rows count here: a file whose stat is still the one it had when the snapshot
// just before read it is not read again, though it was written within the clock's
// granularity of that read (a rollback right after a --to: every file). A writer's
// change the stat cannot show is found by the claim, which reads the bytes: the write
// phase then stops and undoes what it wrote, as for a writer getting in after this
// check, which no check before the writes can rule out.
async function refuseMoved(root: string, stateDir: string, changes: readonly JournalChange[], kind: Journal['kind']): Promise<void> {
  const before = await readLiveStates(root, changes, await loadStatCache(stateDir), { racy: true })
  const moved = changes.filter((c) => !sameState(before.get(c.path) ?? null, c.oldOid, c.oldMode)).map((c) => c.path)
  if (moved.length > 0) throw concurrentChange(moved, kind === 'migrate' ? 'migration' : 'rollback')
}

export async function runTransaction(input: TransactionInput): Promise<TransactionResult> {
  const { store, runId, changes, faultName } = input
  const root = store.agentsRoot
  const stateDir = store.location.stateDir
  await refuseMoved(root, stateDir, changes, input.kind)
  const journal = await writeJournal(stateDir, {
    runId,
    kind: input.kind,
    agentsRoot: root,
    from: input.from,
    to: input.to,
    changes,
    startedAt: new Date().toISOString(),
  })
  collectGarbage() // the live-state check and the journal's text
  faultPoint('after-journal')
  // Started only now, once those are collected: started before the check, its thread
  // added about 10 MB to the peak RSS of a 50,000-unit --to, which is close to its limit.
  const helper = useWriteHelper(changes.length, input.env) ? new WriteHelper({ root, runId, faultName }) : null
  const phase = await writeAll(store, input, helper)
  if (phase.stop !== null) {
    const { undoIndices, moved, failure } = phase.stop
    const narrowed = { ...journal, changes: undoIndices.map((i) => changes[i] as JournalChange) }
    if (failure !== null) {
      await undoAfterFailure(store, narrowed, failure)
      throw failure
    }
    await undo(store, narrowed)
    throw concurrentChange(
      moved.map((i) => (changes[i] as JournalChange).path),
      input.kind === 'migrate' ? 'migration' : 'rollback',
    )
  }
  await makeDurable(phase.touched)
  faultPoint('before-journal-delete')
  await clearJournal(stateDir)
  return { written: phase.written, removed: phase.removed, byHelper: phase.byHelper }
}

interface WritePhase {
  written: number
  removed: number
  byHelper: number
  touched: Touched
  // Set when a path moved or a write failed: the paths to undo (each path either thread
  // started, but a moved one, which holds nothing of ours), in journal order.
  stop: { undoIndices: number[]; moved: number[]; failure: unknown | null } | null
}

// Blobs are read a chunk ahead of the writes; with a helper, the plain modifications of
// each chunk's last part go to it while the main thread writes the first part. A
// chunk ends at CHUNK paths or once its new bytes reach CHUNK_BYTES, so that big files
// (a rollback putting back attachments) are not all held at once. The helper's part
// starts at half and follows its pace: larger while it has caught up with what it was
// sent when the next chunk is split (the main thread, which also reads the blobs, is
// the slower one), smaller while it is more than a chunk behind.
const CHUNK = 256
const CHUNK_BYTES = 32 * 1024 * 1024
const HELPER_SHARE = { start: 0.5, min: 0.25, max: 0.8, step: 0.05 }

async function writeAll(store: Store, input: TransactionInput, helper: WriteHelper | null): Promise<WritePhase> {
  const { changes, blobs, runId, faultName } = input
  const touched = newTouched()
  const verified: VerifiedDirs = new Set()
  const attempted: number[] = []
  const sent: number[] = []
  const moved: number[] = []
  let failure: unknown | null = null
  let written = 0
  let removed = 0
  let byHelper = 0
  let share = HELPER_SHARE.start
  const stopped = () => failure !== null || moved.length > 0 || (helper?.stopped ?? false)
  try {
    for (let start = 0, end = 0; start < changes.length && !stopped(); start = end) {
      const contents: Array<BlobContent | null> = []
      let bytes = 0
      try {
        for (end = start; end < changes.length && end - start < CHUNK && bytes < CHUNK_BYTES; end++) {
          const oid = (changes[end] as JournalChange).newOid
          const content = oid !== null ? await blobs(oid) : null
          if (Buffer.isBuffer(content)) bytes += content.length
          contents.push(content)
        }
      } catch (err) {
        failure = err // the store could not give a blob: nothing of this chunk was written yet
        break
      }
      const mine: number[] = []
      const theirs: WriteItem[] = []
      if (helper !== null && sent.length > 0) {
        const behind = sent.length - helper.done
        if (behind === 0) share = Math.min(HELPER_SHARE.max, share + HELPER_SHARE.step)
        else if (behind > CHUNK) share = Math.max(HELPER_SHARE.min, share - HELPER_SHARE.step)
      }
      const split = start + Math.ceil((end - start) * (1 - share))
      for (let i = start; i < end; i++) {
        const change = changes[i] as JournalChange
        const content = contents[i - start] ?? null
        if (helper !== null && i >= split && Buffer.isBuffer(content) && isPlainModification(change)) theirs.push({ index: i, change, content })
        else mine.push(i)
      }
      await helper?.send(theirs)
      for (const t of theirs) sent.push(t.index)
      for (const i of mine) {
        if (stopped()) break
        const c = changes[i] as JournalChange
        faultPoint(faultName, i + 1)
        attempted.push(i)
        let outcome: PathOutcome
        try {
          outcome = await writeClaimed(store, c, contents[i - start] ?? null, runId, touched, i + 1, verified)
        } catch (err) {
          // A failed write (no space, no permission, a planted symlink): path i may hold a claim.
          failure = err
          helper?.stop()
          break
        }
        if (outcome === 'moved') {
          moved.push(i)
          helper?.stop()
          break
        }
        if (outcome === 'written') written++
        else removed++
        input.onProgress?.(attempted.length + (helper?.done ?? 0), changes.length)
      }
    }
  } finally {
    if (helper !== null) {
      if (stopped()) helper.stop()
      const report = await helper.finish(touched, sent)
      attempted.push(...report.attempted)
      moved.push(...report.moved)
      written += report.written
      byHelper = report.written
      if (report.failure !== null && failure === null) failure = report.failure.error
    }
  }
  if (!stopped() && failure === null) {
    if (helper !== null) input.onProgress?.(changes.length, changes.length)
    return { written, removed, byHelper, touched, stop: null }
  }
  const skip = new Set(moved)
  const undoIndices = [...new Set(attempted)].filter((i) => !skip.has(i)).sort((a, b) => a - b)
  return { written, removed, byHelper, touched, stop: { undoIndices, moved: moved.sort((a, b) => a - b), failure } }
}

// Regular file to regular file: what the helper thread may write.
function isPlainModification(c: JournalChange): boolean {
  return c.oldOid !== null && c.newOid !== null && c.oldMode !== '120000' && c.newMode !== '120000'
}

// One path of a write phase by the claim protocol described at the top of this file
// (claim-write.ts). Synchronous file calls (see atomic-write.ts); only a big blob,
// streamed from the store into its temp file, is awaited.
async function writeClaimed(
  store: Store,
  c: JournalChange,
  content: BlobContent | null,
  runId: string,
  touched: Touched,
  n: number,
  verified: VerifiedDirs,
): Promise<PathOutcome> {
  const root = store.agentsRoot
  const abs = absOf(root, c.path)
  touched.dirs.add(path.dirname(abs))
  // A big blob is streamed into its temp file before the claim, so the claim stays short.
  let prepared: string | null = null
  if (content !== null && !Buffer.isBuffer(content)) {
    if (c.newMode === null || c.newMode === '120000')
      throw new AasError('STORE_CORRUPT', `Symlink ${c.path} has a ${content.size}-byte target in the store.`, {
        hint: 'Run `aas-migrate --doctor`.',
        data: { path: c.path },
      })
    const t = prepareTempSync(abs, { within: root, runId, verified })
    for (const d of t.createdDirs) touched.dirs.add(path.dirname(d))
    await writeBlobToTemp(store, content.oid, t.temp, c.newMode, { expectedSize: content.size })
    prepared = t.temp
  }
  try {
    return claimAndPlaceSync(root, abs, c, content, prepared, runId, touched, n, verified)
  } finally {
    if (prepared !== null) removeFileSync(prepared, { within: root, verified })
  }
}

// Return the paths an aborted write phase may have written to their old state: the
// journal is narrowed to them first, so a crash during the undo recovers the same set.
async function undo(store: Store, narrowed: Journal): Promise<void> {
  await replaceJournal(store.location.stateDir, narrowed)
  // The old blobs are read in batches by recovery's own source (the write phase's
  // source holds the new ones: reading old ones through it was a git call per file).
  const result = await recoverTransaction(store)
  if (result && result.conflicts.length > 0) {
    throw new AasError('RECOVERY_REQUIRED', `Could not undo the interrupted write: ${result.conflicts.join(', ')} changed meanwhile.`, {
      hint: 'Inspect these files, then run `aas-migrate --status` to finish the recovery.',
      data: { paths: result.conflicts },
    })
  }
}

// Undo after an I/O failure; when the undo fails too, say so, with the first cause.
async function undoAfterFailure(store: Store, narrowed: Journal, cause: unknown): Promise<void> {
  try {
    await undo(store, narrowed)
  } catch (undoErr) {
    const first = cause instanceof Error ? cause.message : String(cause)
    throw new AasError(
      'RECOVERY_REQUIRED',
      `A write failed (${first}) and undoing the paths written so far failed too: ${undoErr instanceof Error ? undoErr.message : String(undoErr)}`,
      {
        hint: 'Fix the cause (free space, permissions), then run `aas-migrate --status`: it completes the undo from the journal.',
        data: { cause: first, ...(cause instanceof AasError ? cause.data : {}) },
        cause: undoErr,
      },
    )
  }
}

export interface RecoveryResult {
  runId: string
  kind: Journal['kind']
  restored: number // paths put back to their state before the interrupted transaction
  conflicts: string[] // paths changed by someone else since: left untouched, journal kept
  tempFilesRemoved: number
}

// Complete an interrupted transaction by returning the vault to the state before it
// (the snapshot for a migration, the pre-rollback state for a rollback). Idempotent:
// a crash during recovery leaves the journal, and the next run classifies files afresh.
export async function recoverTransaction(store: Store, { blobs }: { blobs?: BlobSource } = {}): Promise<RecoveryResult | null> {
  const stateDir = store.location.stateDir
  const journal = await readJournal(stateDir)
  if (!journal) return null
  const root = store.agentsRoot
  const claims = await resolveClaims(store, journal)
  const temps = await removeTempFiles(root)
  const live = await readLiveStates(root, journal.changes)
  const plan = planRecovery(journal, live, { direction: 'backward' })
  if (plan.conflicts.length > 0) {
    return { runId: journal.runId, kind: journal.kind, restored: 0, conflicts: plan.conflicts.map((c) => c.path), tempFilesRemoved: temps.length }
  }
  const own = blobs
    ? null
    : prefetchingBlobSource(
        store,
        plan.steps.flatMap((s) => (s.target ? [s.target.oid] : [])),
      )
  const source = blobs ?? (own as BlobSource)
  const touched = newTouched()
  for (const d of claims) touched.dirs.add(d)
  try {
    for (let i = 0; i < plan.steps.length; i++) {
      const step = plan.steps[i]!
      faultPoint('mid-recovery', i + 1)
      await putState(store, step.path, step.target, source, journal.runId, touched)
    }
  } finally {
    await own?.close()
  }
  await makeDurable(touched)
  await clearJournal(stateDir)
  return { runId: journal.runId, kind: journal.kind, restored: plan.steps.length, conflicts: [], tempFilesRemoved: temps.length }
}

// The engine's new bytes of a journaled path, to tell them from a writer's appends.
async function newBytesOf(store: Store, oid: string): Promise<OwnBytes> {
  const size = (await store.blobSizes([oid])).get(oid) ?? 0
  return size > BIG_BLOB_BYTES ? { oid, length: size } : store.readBlob(oid)
}

// Claims of the journal's paths left by a crash, put back (merged with whatever a
// writer created at the path meanwhile). Returns the directories changed.
async function resolveClaims(store: Store, journal: Journal): Promise<string[]> {
  const root = store.agentsRoot
  const dirs: string[] = []
  for (const c of journal.changes) {
    if (c.oldOid === null) continue
    const abs = absOf(root, c.path)
    const claim = path.join(path.dirname(abs), claimNameFor(path.basename(abs), journal.runId))
    if (await resolveRewrite(store, journal, c, abs)) dirs.push(path.dirname(abs))
    if (hashLiveEntrySync(claim) === null) continue
    await putClaimBack(store, c, claim, abs)
    dirs.push(path.dirname(abs))
  }
  return dirs
}

// At the path: nothing, the new state (a kill after the link), or a writer's file
// (a lock-free appender re-created it): the claim goes back, merged with the latter.
async function putClaimBack(store: Store, c: JournalChange, claim: string, abs: string): Promise<void> {
  const live = hashLiveEntrySync(abs)
  const ours = live !== null && c.newOid !== null && live.oid === c.newOid ? await newBytesOf(store, c.newOid) : null
  restoreClaimSync(claim, abs, { ours })
}

// A file left at its rewrite name (claim-write.ts, rewriteClaimSync): its bytes were
// checked to be the old state before the rename, then were being replaced by the new.
// Linked at the path already (a kill after the link), the path holds it and the name
// goes. Otherwise it becomes a claim again: bytes that do not start with the old
// state's (ours, or a mix) are replaced by the old state's from the store, and it goes
// back as a claim does. True when it was there.
async function resolveRewrite(store: Store, journal: Journal, c: JournalChange, abs: string): Promise<boolean> {
  if (c.oldOid === null || c.oldMode === null || c.oldMode === '120000') return false
  const rewrite = path.join(path.dirname(abs), rewriteNameFor(path.basename(abs), journal.runId))
  let st: ReturnType<typeof lstatSync>
  try {
    st = lstatSync(rewrite)
  } catch {
    return false
  }
  if (!st.isFile()) return false // not ours to resolve: the temp-file sweep removes it
  const atPath = lstatSync(abs, { throwIfNoEntry: false }) // its folder exists: the rewrite is in it
  if (atPath !== undefined && atPath.ino === st.ino && atPath.dev === st.dev) {
    unlinkSync(rewrite)
    return true
  }
  const old = await store.readBlob(c.oldOid)
  const bytes = readFileSync(rewrite)
  if (!(bytes.length >= old.length && bytes.subarray(0, old.length).equals(old))) {
    const fd = openSync(rewrite, constants.O_RDWR | constants.O_NOFOLLOW)
    try {
      putBackOld(fd, old, c.oldMode === c.newMode ? st.mode & 0o777 : modeBits(c.oldMode))
    } finally {
      closeSync(fd)
    }
  }
  await putClaimBack(store, c, rewrite, abs)
  return true
}
