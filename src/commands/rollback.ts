import { AasError } from '../errors.js'
import { openStore } from '../git/open-store.js'
import type { BackendName, Store, TreeEntry } from '../git/store.js'
import { resolveAgentsRoot } from '../vault/agents-root.js'
import { RUN_REF_PREFIX } from '../git/refs.js'
import { collectGarbage } from '../transaction/collect.js'
import { newRunId } from './run-id.js'
import { withWriteSession, type EngineEvent, type WriteSession } from './session.js'
import { importSnapshot, resolveSnapshotName, takeSnapshot, type Snapshot } from '../snapshots/snapshots.js'
import { prepareBranchCommit, recordBranchCommit } from './branch-commit.js'
import { unitTypeOf } from '../vault/rules.js'
import type { JournalChange } from '../transaction/journal.js'
import { journalChangesOf, prefetchingBlobSource, runTransaction } from '../transaction/transaction.js'

export interface RollbackOptions {
  agentsRoot?: string | undefined
  env?: NodeJS.ProcessEnv
  snapshot: string // a snapshot name, NAME.tar.gz, or a legacy tarball name in _migrations/snapshots/
  force?: boolean
  commit?: boolean // also record the restored units as one commit on the current branch (git vaults)
  backend?: BackendName
  lockTimeoutMs?: number
  now?: () => Date
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
async function foreignPaths(store: Store, changedPaths: readonly string[], currentEntries: readonly TreeEntry[], runCommit: string): Promise<string[]> {
  const index = (entries: readonly TreeEntry[]): Map<string, string> => new Map(entries.map((e) => [e.path, `${e.mode} ${e.oid}`]))
  const current = index(currentEntries)
  const run = index(await store.listTree(runCommit))
  return changedPaths.filter((p) => current?.get(p) !== run?.get(p))
}

// The safety snapshot of the current state, then the changes that restore `snap`, with
// result.safety, .changed and .foreign set (also when the foreign check refuses). In a
// call of its own so that the snapshot's entries and the tree diff (a vault's worth each)
// are dropped before the transaction runs: held through it, they made a 100,000-unit
// rollback's peak grow faster than the vault.
async function safetyAndChanges(
  store: Store,
  snap: Snapshot & { commit: string; tree: string },
  { runId, now, force, session, result }: { runId: string; now: () => Date; force: boolean; session: WriteSession; result: RollbackResult },
): Promise<JournalChange[]> {
  session.emit({ type: 'phase', phase: 'snapshot', total: 0 })
  const safety = await takeSnapshot(store, { target: snap.target ?? 0, from: snap.from ?? 0, runId, now: now(), label: 'pre_rollback', onProgress: (done, total) => session.emit({ type: 'progress', phase: 'snapshot', done, total }) })
  result.safety = { name: safety.name, ref: safety.ref, commit: safety.commit }
  session.emit({ type: 'snapshot', name: safety.name, ref: safety.ref, commit: safety.commit, files: safety.files, purpose: 'safety' })

  // The safety snapshot's files are known from its scan: only the target is listed.
  const diff = await store.diffTrees({ tree: safety.tree, entries: safety.entries }, snap.tree)
  result.changed = diff.map((c) => c.path)
  if (diff.length === 0) return []
  const runCommit = await runOfSnapshot(store, snap.commit)
  if (runCommit) {
    result.foreign = await foreignPaths(store, result.changed, safety.entries, runCommit)
    if (result.foreign.length > 0 && !force) {
      const shown = result.foreign.slice(0, 30)
      throw new AasError(
        'ROLLBACK_FOREIGN_CHANGES',
        `${result.foreign.length} path${result.foreign.length === 1 ? ' was' : 's were'} changed after the migration that took ${snap.name}, not by it; a rollback would discard that work:\n  ${shown.join('\n  ')}${result.foreign.length > shown.length ? '\n  …' : ''}`,
        {
          hint: `Keep copies of these files if they matter, then run again with --force (the current state stays reachable as the safety snapshot ${safety.name}).`,
          data: { snapshot: snap.name, paths: result.foreign, safetySnapshot: safety.name },
        },
      )
    }
  }
  return journalChangesOf(diff)
}

// `--rollback SNAPSHOT` (SPEC §4): a safety snapshot of the current state first, then the
// snapshot scope restored — changed files rewritten, files created since removed, deleted
// ones recreated — as one journaled transaction. Files outside the scope are never touched.
export async function rollback(options: RollbackOptions): Promise<RollbackResult> {
  const { force = false, env = process.env, now = () => new Date(), onEvent } = options
  const started = Date.now()
  const runId = newRunId(now())
  const root = await resolveAgentsRoot({ flag: options.agentsRoot, env })
  const result: RollbackResult = {
    ok: false,
    runId,
    agentsRoot: root.path,
    snapshot: null,
    imported: false,
    safety: null,
    written: 0,
    removed: 0,
    changed: [],
    foreign: [],
    forced: force,
    branchCommit: null,
    error: null,
    durationMs: 0,
  }
  const store = await openStore({ agentsRoot: root.path, ...(options.backend ? { backend: options.backend } : {}) })
  const out = await withWriteSession(
    {
      store,
      runId,
      command: `--rollback ${options.snapshot}${force ? ' --force' : ''}`,
      takeVaultLock: true,
      lockTimeoutMs: options.lockTimeoutMs ?? 30_000,
      ...(onEvent ? { onEvent } : {}),
      audit: () => ({
        result: result.ok ? 'ok' : result.error && ['CONCURRENT_CHANGE', 'LOCKED', 'SNAPSHOT_NOT_FOUND', 'SNAPSHOT_NAME_INVALID', 'ROLLBACK_FOREIGN_CHANGES'].includes(result.error.code) ? 'refused' : 'failed',
        from: null,
        to: null,
        dry_run: false,
        units_touched: result.written + result.removed,
        snapshot: result.snapshot?.name ?? null,
        result_commit: result.snapshot?.commit ?? null,
        rolled_back: result.ok,
        safety_snapshot: result.safety?.name ?? null,
        error: result.error ? { code: result.error.code, message: result.error.message } : null,
      }),
    },
    async (session) => {
      let snap: Snapshot = await resolveSnapshotName(store, options.snapshot)
      if (snap.source === 'tarball' && snap.file) {
        await importSnapshot(store, snap.file)
        result.imported = true
        snap = await resolveSnapshotName(store, snap.name)
      }
      if (!snap.commit || !snap.ref || !snap.tree) throw new AasError('SNAPSHOT_NOT_FOUND', `Snapshot ${snap.name} has no commit.`, { data: { name: snap.name } })
      result.snapshot = { name: snap.name, ref: snap.ref, commit: snap.commit }

      const changes = await safetyAndChanges(store, snap as Snapshot & { commit: string; tree: string }, { runId, now, force, session, result })
      collectGarbage() // the safety snapshot's reads and trees, the tree diff
      if (changes.length === 0) {
        result.ok = true
        return result
      }
      const safety = result.safety as NonNullable<RollbackResult['safety']>
      const unitChanges = changes.filter((c) => unitTypeOf(c.path) !== null)
      const commitPlan = options.commit && unitChanges.length > 0 ? await prepareBranchCommit(store, unitChanges) : null
      await session.withAgentLocks(result.changed, async () => {
        session.emit({ type: 'phase', phase: 'rollback', total: changes.length })
        const t = await runTransaction({
          store,
          runId,
          kind: 'rollback',
          from: safety.commit,
          to: snap.commit as string,
          changes,
          blobs: prefetchingBlobSource(store, changes.flatMap((c) => (c.newOid ? [c.newOid] : []))),
          faultName: 'mid-rollback',
          onProgress: (done, total) => session.emit({ type: 'progress', phase: 'rollback', done, total }),
        })
        result.written = t.written
        result.removed = t.removed
      })
      if (commitPlan) result.branchCommit = await recordBranchCommit(store, commitPlan, unitChanges, `Roll back vault to ${snap.name}\n\nAas-Run-Id: ${runId}\nAas-Snapshot: ${snap.name}\nAas-Safety-Snapshot: ${safety.name}\n`)
      result.ok = true
      return result
    },
    (err) => {
      result.error = err
      return result
    },
  )
  out.durationMs = Date.now() - started
  return out
}
