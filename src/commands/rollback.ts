import { AasError } from '../errors.js'
import { RUN_REF_PREFIX } from '../git/refs.js'
import type { Store, TreeEntry } from '../git/store.js'
import { settled } from '../settled.js'
import { importSnapshot } from '../snapshots/import-tarball.js'
import { resolveSnapshotName, type Snapshot } from '../snapshots/list.js'
import { takeSnapshot, type TakeSnapshotResult } from '../snapshots/take.js'
import { collectGarbage } from '../transaction/collect.js'
import type { JournalChange } from '../transaction/journal.js'
import { journalChangesOf } from '../transaction/transaction.js'
import { prefetchingBlobSource } from '../transaction/blob-prefetch.js'
import { unitTypeOf } from '../vault/rules.js'
import { prepareBranchCommit, recordBranchCommit } from './branch-commit.js'
import { fastForward } from './fast-forward.js'
import { withWriteSession, type EngineEvent, type WriteSession } from './session.js'

// The normalised request (src/api.ts resolves the vault and opens its store).
export interface RollbackInput {
  store: Store
  runId: string
  snapshot: string // a snapshot name, NAME.tar.gz, or a legacy tarball name in _migrations/snapshots/
  force: boolean
  commit: boolean // also record the restored units as one commit on the current branch (git vaults)
  env?: NodeJS.ProcessEnv // AAS_WRITE_THREADS
  lockTimeoutMs: number
  now: () => Date
  onEvent?: (event: EngineEvent) => void
}

export interface RollbackResult {
  ok: boolean
  runId: string
  agentsRoot: string
  snapshot: { name: string; ref: string; commit: string } | null
  imported: boolean // the snapshot was a legacy tarball, imported first
  safety: { name: string; ref: string; commit: string } | null // the state before the rollback
  written: number
  removed: number
  changed: string[] // paths restored, created or removed
  foreign: string[] // paths changed after the run that were not written by it
  forced: boolean
  branchCommit: { branch: string; commit: string } | null // with --commit
  error: AasError | null
  errors: AasError[] // every error found; error is the first
  durationMs: number
}

// The result commit of the run that took this snapshot, if the run was recorded.
async function runOfSnapshot(store: Store, snapshotCommit: string): Promise<string | null> {
  for (const { oid } of await store.listRefs(RUN_REF_PREFIX)) {
    const c = await store.readCommit(oid)
    if (c.parents[0] === snapshotCommit) return oid
  }
  return null
}

// Paths where the live state differs from what the run wrote: someone changed them later.
function foreignPaths(changedPaths: readonly string[], currentEntries: readonly TreeEntry[], runEntries: readonly TreeEntry[]): string[] {
  const index = (entries: readonly TreeEntry[]): Map<string, string> => new Map(entries.map((e) => [e.path, `${e.mode} ${e.oid}`]))
  const current = index(currentEntries)
  const run = index(runEntries)
  return changedPaths.filter((p) => current.get(p) !== run.get(p))
}

type Ref = { name: string; ref: string; commit: string }

// A result from what the steps gave so far: `errors` empty means the rollback succeeded.
export function rollbackResult(
  input: Pick<RollbackInput, 'runId' | 'force'> & { agentsRoot: string; started: number },
  got: Partial<RollbackResult>,
  errors: AasError[] = [],
): RollbackResult {
  return {
    ok: errors.length === 0,
    runId: input.runId,
    agentsRoot: input.agentsRoot,
    snapshot: null,
    imported: false,
    safety: null,
    written: 0,
    removed: 0,
    changed: [],
    foreign: [],
    forced: input.force,
    branchCommit: null,
    ...got,
    error: errors[0] ?? null,
    errors,
    durationMs: Date.now() - input.started,
  }
}

// `--rollback SNAPSHOT` (docs/how-it-works.md, "Rollback"): a safety snapshot of the
// current state first, then the snapshot scope restored — changed files rewritten,
// files created since removed, deleted ones recreated — as one journaled transaction.
// Files outside the scope are never touched. Expected failures come back in the result.
export async function rollbackVault(input: RollbackInput): Promise<RollbackResult> {
  const base = { ...input, agentsRoot: input.store.agentsRoot, started: Date.now() }
  // What the steps found before one threw, so that the result and the audit line keep it.
  let found: Partial<RollbackResult> = {}
  const note = (got: Partial<RollbackResult>): void => void (found = { ...found, ...got })
  return withWriteSession(
    {
      store: input.store,
      runId: input.runId,
      command: `--rollback ${input.snapshot}${input.force ? ' --force' : ''}`,
      takeVaultLock: true,
      lockTimeoutMs: input.lockTimeoutMs,
      ...(input.onEvent ? { onEvent: input.onEvent } : {}),
      audit: (r: RollbackResult) => ({
        from: null,
        to: null,
        dry_run: false,
        units_touched: r.written + r.removed,
        snapshot: r.snapshot?.name ?? null,
        result_commit: r.snapshot?.commit ?? null,
        rolled_back: r.ok,
        safety_snapshot: r.safety?.name ?? null,
        error: r.error,
      }),
    },
    async (session) => rollbackResult(base, await restore(input, session, note)),
    (err) => rollbackResult(base, found, [err]),
  )
}

// The steps: the snapshot found (a legacy tarball imported first), the safety snapshot
// and the changes, the check for foreign changes, the transaction, the branch commit.
async function restore(input: RollbackInput, session: WriteSession, note: (got: Partial<RollbackResult>) => void): Promise<Partial<RollbackResult>> {
  const { store } = input
  const target = await findSnapshot(store, input.snapshot)
  const snapshot = { name: target.snap.name, ref: target.snap.ref, commit: target.snap.commit }
  note({ snapshot, imported: target.imported })
  const { safety, changes, foreign } = await safetyAndChanges(store, target.snap, input, session)
  const changed = changes.map((c) => c.path)
  note({ safety: refOf(safety), changed, foreign })
  if (foreign.length > 0 && !input.force) throw foreignChanges(target.snap.name, foreign, safety.name)
  collectGarbage() // the safety snapshot's reads and trees, the tree diff
  const done = { snapshot, imported: target.imported, safety: refOf(safety), changed, foreign }
  if (changes.length === 0) return done
  const unitChanges = changes.filter((c) => unitTypeOf(c.path) !== null)
  const commitPlan = input.commit && unitChanges.length > 0 ? await prepareBranchCommit(store, unitChanges) : null
  const blobs = prefetchingBlobSource(
    store,
    changes.flatMap((c) => (c.newOid ? [c.newOid] : [])),
  )
  const t = await fastForward(store, session, input.runId, {
    kind: 'rollback',
    from: safety.commit,
    to: snapshot.commit,
    changes,
    blobs,
    env: input.env ?? process.env,
  }).finally(() => blobs.close())
  note({ written: t.written, removed: t.removed })
  if (!commitPlan) return { ...done, written: t.written, removed: t.removed }
  const message = `Roll back vault to ${snapshot.name}\n\nAas-Run-Id: ${input.runId}\nAas-Snapshot: ${snapshot.name}\nAas-Safety-Snapshot: ${safety.name}\n`
  const branchCommit = await recordBranchCommit(store, commitPlan, unitChanges, message)
  return { ...done, written: t.written, removed: t.removed, branchCommit }
}

// A snapshot taken with its ref (a safety snapshot always is).
function refOf(s: Pick<TakeSnapshotResult, 'name' | 'ref' | 'commit'>): Ref {
  if (s.ref === null) throw new Error(`snapshot ${s.name} was taken without a ref`)
  return { name: s.name, ref: s.ref, commit: s.commit }
}

async function findSnapshot(store: Store, input: string): Promise<{ snap: Snapshot & Ref & { tree: string }; imported: boolean }> {
  let snap: Snapshot = await resolveSnapshotName(store, input)
  let imported = false
  if (snap.source === 'tarball' && snap.file) {
    await importSnapshot(store, snap.file)
    imported = true
    snap = await resolveSnapshotName(store, snap.name)
  }
  if (!snap.commit || !snap.ref || !snap.tree) throw new AasError('SNAPSHOT_NOT_FOUND', `Snapshot ${snap.name} has no commit.`, { data: { name: snap.name } })
  return { snap: snap as Snapshot & Ref & { tree: string }, imported }
}

// The safety snapshot of the current state, then the changes that restore `snap`, and
// the changed paths that a later writer, not the snapshot's run, left as they are. In a
// call of its own so that the snapshot's entries and the tree diff (a vault's worth each)
// are dropped before the transaction runs: held through it, they made a 100,000-unit
// rollback's peak grow faster than the vault.
async function safetyAndChanges(
  store: Store,
  snap: Snapshot & Ref & { tree: string },
  input: RollbackInput,
  session: WriteSession,
): Promise<{ safety: TakeSnapshotResult; changes: JournalChange[]; foreign: string[] }> {
  session.emit({ type: 'phase', phase: 'snapshot', total: 0 })
  // The target's tree and the run that took the snapshot do not depend on the safety
  // snapshot: listed (by git, for the cli backend) while it is taken.
  const target = settled(store.listTree(snap.tree))
  const runEntries = settled(runOfSnapshot(store, snap.commit).then((commit) => (commit ? store.listTree(commit) : null)))
  const safety = await takeSnapshot(store, {
    target: snap.target ?? 0,
    from: snap.from ?? 0,
    runId: input.runId,
    now: input.now(),
    label: 'pre_rollback',
    onProgress: (done, total) => session.emit({ type: 'progress', phase: 'snapshot', done, total }),
  })
  session.emit({ type: 'snapshot', name: safety.name, ref: safety.ref, commit: safety.commit, files: safety.files, purpose: 'safety' })
  // The safety snapshot's files are known from its scan, the target's were listed meanwhile.
  const diff = await store.diffTrees({ tree: safety.tree, entries: safety.entries }, { tree: snap.tree, entries: (await target)() })
  if (diff.length === 0) return { safety, changes: [], foreign: [] }
  // A vault with nothing in its snapshot scope (an empty folder on a new machine, after
  // --fetch-snapshots) holds no later work that a rollback could discard.
  const ran = safety.files > 0 ? (await runEntries)() : null
  const foreign = ran
    ? foreignPaths(
        diff.map((c) => c.path),
        safety.entries,
        ran,
      )
    : []
  return { safety, changes: journalChangesOf(diff), foreign }
}

function foreignChanges(snapshot: string, foreign: string[], safety: string): AasError {
  const shown = foreign.slice(0, 30)
  return new AasError(
    'ROLLBACK_FOREIGN_CHANGES',
    `${foreign.length} path${foreign.length === 1 ? ' was' : 's were'} changed after the migration that took ${snapshot}, not by it; a rollback would discard that work:\n  ${shown.join('\n  ')}${foreign.length > shown.length ? '\n  …' : ''}`,
    {
      hint: `Keep copies of these files if they matter, then run again with --force (the current state stays reachable as the safety snapshot ${safety}).`,
      data: { snapshot, paths: foreign, safetySnapshot: safety },
    },
  )
}
