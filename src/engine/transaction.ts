import path from 'node:path'
import { AasError } from '../errors.js'
import type { Store, TreeChange } from '../git/store.js'
import type { FileMode } from '../vault/walk.js'
import { fsyncAll, removeFile, removeTempFiles, replaceWithSymlink, writeFileAtomic } from './atomic-write.js'
import { hashLiveEntry, type LiveEntry } from './blob-hash.js'
import { faultPoint } from './faults.js'
import { clearJournal, planRecovery, readJournal, readLiveStates, writeJournal, type Journal, type JournalChange } from './journal.js'

// Applies a set of path changes to the live vault as one recoverable transaction
// (SPEC §5): journal first, then each file via temp + rename after checking that
// it still holds the old bytes, then fsync, then the journal goes.

export type BlobSource = (oid: string) => Promise<Buffer>

export interface TransactionInput {
  store: Store
  runId: string
  kind: Journal['kind']
  from: string // commit of the state the vault is in now
  to: string // commit of the state to reach
  changes: JournalChange[]
  blobs: BlobSource
  faultName: 'mid-fast-forward' | 'mid-rollback'
  onProgress?: (done: number, total: number) => void
}

export interface TransactionResult {
  written: number
  removed: number
}

// Blobs read in batches ahead of the writes (one `cat-file --batch` per chunk rather
// than one git call per file), holding at most one chunk in memory.
export function prefetchingBlobSource(store: Store, oidsInOrder: readonly string[], { chunk = 2000 }: { chunk?: number } = {}): BlobSource {
  const position = new Map<string, number>()
  oidsInOrder.forEach((oid, i) => {
    if (!position.has(oid)) position.set(oid, i)
  })
  let cache = new Map<string, Buffer>()
  return async (oid) => {
    const hit = cache.get(oid)
    if (hit) return hit
    const start = position.get(oid)
    if (start === undefined) return store.readBlob(oid)
    cache = new Map()
    const wanted = [...new Set(oidsInOrder.slice(start, start + chunk))]
    for await (const { oid: o, content } of store.readBlobs(wanted)) cache.set(o, content)
    const got = cache.get(oid)
    if (!got) throw new AasError('STORE_CORRUPT', `Object ${oid} is missing from the store.`, { hint: 'Run `aas-migrate --doctor`; the store may be damaged.', data: { oid } })
    return got
  }
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

function sameState(live: LiveEntry | null, oid: string | null, mode: FileMode | null): boolean {
  return oid === null ? live === null : live !== null && live.oid === oid && live.mode === mode
}

function absOf(root: string, rel: string): string {
  return path.join(root, ...rel.split('/'))
}

function concurrentChange(paths: string[], phase: string): AasError {
  const shown = paths.slice(0, 20).join(', ')
  return new AasError('CONCURRENT_CHANGE', `${paths.length === 1 ? `${paths[0]} was` : `${paths.length} files were`} changed while the ${phase} ran: ${shown}${paths.length > 20 ? ', …' : ''}. Nothing was overwritten; the vault is as it was before the command.`, {
    hint: 'Stop the agents writing to these files (or wait for them to finish), check --status, then run the command again.',
    data: { paths },
  })
}

// What a write phase must make durable before its journal goes: written files, and
// every directory whose entries changed (renames, unlinks, created or pruned dirs).
interface Touched {
  files: Set<string>
  dirs: Set<string>
}

const newTouched = (): Touched => ({ files: new Set(), dirs: new Set() })

// Write one target state at a path: a blob with a mode, or nothing.
async function putState(root: string, rel: string, target: { oid: string; mode: FileMode } | null, blobs: BlobSource, runId: string, touched: Touched): Promise<'written' | 'removed'> {
  const abs = absOf(root, rel)
  touched.dirs.add(path.dirname(abs))
  if (target === null) {
    const r = await removeFile(abs, { within: root, pruneEmptyDirs: true })
    for (const d of r.prunedDirs) touched.dirs.add(path.dirname(d))
    return 'removed'
  }
  const content = await blobs(target.oid)
  const r = target.mode === '120000' ? await replaceWithSymlink(abs, content, { within: root, runId }) : await writeFileAtomic(abs, content, { mode: target.mode, within: root, runId, fsync: false })
  for (const d of r.createdDirs) touched.dirs.add(path.dirname(d))
  if (target.mode !== '120000') touched.files.add(abs)
  return 'written'
}

async function makeDurable(touched: Touched): Promise<void> {
  await fsyncAll({ files: touched.files, dirs: touched.dirs })
}

export async function runTransaction(input: TransactionInput): Promise<TransactionResult> {
  const { store, runId, changes, blobs, faultName } = input
  const root = store.agentsRoot
  const stateDir = store.location.stateDir
  const before = await readLiveStates(root, changes)
  const moved = changes.filter((c) => !sameState(before.get(c.path) ?? null, c.oldOid, c.oldMode)).map((c) => c.path)
  if (moved.length > 0) throw concurrentChange(moved, input.kind === 'migrate' ? 'migration' : 'rollback')

  await writeJournal(stateDir, { runId, kind: input.kind, agentsRoot: root, from: input.from, to: input.to, changes, startedAt: new Date().toISOString() })
  faultPoint('after-journal')
  const touched = newTouched()
  let written = 0
  let removed = 0
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i] as JournalChange
    faultPoint(faultName, i + 1)
    const live = await hashLiveEntry(absOf(root, c.path))
    if (!sameState(live, c.oldOid, c.oldMode)) {
      await undo(store, blobs)
      throw concurrentChange([c.path], input.kind === 'migrate' ? 'migration' : 'rollback')
    }
    const target = c.newOid === null || c.newMode === null ? null : { oid: c.newOid, mode: c.newMode }
    if ((await putState(root, c.path, target, blobs, runId, touched)) === 'written') written++
    else removed++
    input.onProgress?.(i + 1, changes.length)
  }
  await makeDurable(touched)
  faultPoint('before-journal-delete')
  await clearJournal(stateDir)
  return { written, removed }
}

// Return every journaled path to its old state after an aborted write phase.
async function undo(store: Store, blobs: BlobSource): Promise<void> {
  const result = await recoverTransaction(store, { blobs })
  if (result && result.conflicts.length > 0) {
    throw new AasError('RECOVERY_REQUIRED', `Could not undo the interrupted write: ${result.conflicts.join(', ')} changed meanwhile.`, {
      hint: 'Inspect these files, then run `aas-migrate --status` to finish the recovery.',
      data: { paths: result.conflicts },
    })
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
  const temps = await removeTempFiles(root)
  const live = await readLiveStates(root, journal.changes)
  const plan = planRecovery(journal, live, { direction: 'backward' })
  blobs ??= prefetchingBlobSource(store, plan.steps.flatMap((s) => (s.target ? [s.target.oid] : [])))
  if (plan.conflicts.length > 0) {
    return { runId: journal.runId, kind: journal.kind, restored: 0, conflicts: plan.conflicts.map((c) => c.path), tempFilesRemoved: temps.length }
  }
  const touched = newTouched()
  for (let i = 0; i < plan.steps.length; i++) {
    const step = plan.steps[i]!
    faultPoint('mid-recovery', i + 1)
    await putState(root, step.path, step.target, blobs, journal.runId, touched)
  }
  await makeDurable(touched)
  await clearJournal(stateDir)
  return { runId: journal.runId, kind: journal.kind, restored: plan.steps.length, conflicts: [], tempFilesRemoved: temps.length }
}
