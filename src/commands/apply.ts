import { type AasError, isAasError } from '../errors.js'
import { appliedRef, runRef } from '../git/refs.js'
import type { Store } from '../git/store.js'
import { takeSnapshot, type TakeSnapshotResult } from '../snapshots/take.js'
import { collectGarbage } from '../transaction/collect.js'
import { journalChangesOf } from '../transaction/transaction.js'
import { prefetchingBlobSource } from '../transaction/blob-prefetch.js'
import { unitTypeOf } from '../vault/rules.js'
import { ENGINE_VERSION } from '../version.js'
import { prepareBranchCommit, recordBranchCommit } from './branch-commit.js'
import { fastForward } from './fast-forward.js'
import { trailers } from './migrate/result-commit.js'
import {
  alreadyHeld,
  changedScripts,
  changedSince,
  keepPreview,
  keepPreviewsMs,
  prunePreviews,
  resolvePreview,
  scriptsChanged,
  unusable,
  vaultChanged,
  type Preview,
} from './previews.js'
import { withWriteSession, type EngineEvent, type WriteSession } from './session.js'

// `--apply <run id|latest>`: the live vault fast-forwarded to exactly the tree a dry run
// previewed, through the journaled transaction of `--to` (lock, recovery, snapshot first,
// result ref, fast-forward, audit line), running no script. Refused, naming what
// differs, when the vault or a script changed since the preview, or when it was applied.

// The normalised request (src/api.ts resolves the vault and opens its store).
export interface ApplyInput {
  store: Store
  runId: string
  preview: string // a dry run's run id, or 'latest'
  commit: boolean // also record the migration as one commit on the current branch (git vaults)
  env: NodeJS.ProcessEnv // AAS_KEEP_PREVIEWS
  lockTimeoutMs: number
  now: () => Date
  onEvent?: (event: EngineEvent) => void
}

export interface ApplyPreviewResult {
  ok: boolean
  runId: string
  agentsRoot: string
  preview: { id: string; ref: string; commit: string; time: string } | null
  from: number | null
  target: number | null
  snapshot: { name: string; ref: string; commit: string } | null
  result: { ref: string; commit: string } | null // refs/aas/runs/<run id>: the previewed tree, its parent the snapshot
  touched: number // units the preview's scripts touched
  changed: string[] // paths written
  applied: boolean // the live vault now holds the previewed state
  branchCommit: { branch: string; commit: string } | null // with --commit
  prunedPreviews: string[] // previews older than AAS_KEEP_PREVIEWS, deleted by this run
  error: AasError | null
  errors: AasError[]
  durationMs: number
}

export function applyResult(
  input: Pick<ApplyInput, 'runId'> & { agentsRoot: string; started: number },
  got: Partial<ApplyPreviewResult>,
  errors: AasError[] = [],
): ApplyPreviewResult {
  return {
    ok: errors.length === 0,
    runId: input.runId,
    agentsRoot: input.agentsRoot,
    preview: null,
    from: null,
    target: null,
    snapshot: null,
    result: null,
    touched: 0,
    changed: [],
    applied: false,
    branchCommit: null,
    prunedPreviews: [],
    ...got,
    error: errors[0] ?? null,
    errors,
    durationMs: Date.now() - input.started,
  }
}

export async function applyPreview(input: ApplyInput): Promise<ApplyPreviewResult> {
  const base = { runId: input.runId, agentsRoot: input.store.agentsRoot, started: Date.now() }
  // What the steps found before one threw, so that the result and the audit line keep it.
  let found: Partial<ApplyPreviewResult> = {}
  const note = (got: Partial<ApplyPreviewResult>): void => void (found = { ...found, ...got })
  return withWriteSession(
    {
      store: input.store,
      runId: input.runId,
      command: `--apply ${input.preview}`,
      takeVaultLock: true,
      lockTimeoutMs: input.lockTimeoutMs,
      ...(input.onEvent ? { onEvent: input.onEvent } : {}),
      audit: (r: ApplyPreviewResult) => ({
        from: r.from,
        to: r.target,
        dry_run: false,
        units_touched: r.applied ? r.touched : 0,
        snapshot: r.snapshot?.name ?? null,
        result_commit: r.result?.commit ?? null,
        rolled_back: false,
        preview: r.preview?.id ?? null,
        error: r.error,
      }),
    },
    async (session) => applyResult(base, await apply(input, session, note)),
    (err) => applyResult(base, found, [err]),
  )
}

// The steps: the preview found and kept from pruning, old previews pruned, the checks
// that need no scan, the snapshot (checked against the preview's starting tree before its
// ref is set), the result commit and ref, the transaction, the applied mark, --commit.
async function apply(input: ApplyInput, session: WriteSession, note: (got: Partial<ApplyPreviewResult>) => void): Promise<Partial<ApplyPreviewResult>> {
  const { store } = input
  let got: Partial<ApplyPreviewResult> = {}
  const keep = (more: Partial<ApplyPreviewResult>): void => {
    got = { ...got, ...more }
    note(more)
  }
  const p = await resolvePreview(store, input.preview)
  keep({ preview: { id: p.id, ref: p.ref, commit: p.commit, time: p.time }, from: p.from, target: p.target, touched: p.touched })
  await keepPreview(store, p)
  keep({ prunedPreviews: await prunePreviews(store, { now: input.now(), keepMs: keepPreviewsMs(input.env), except: [p.id] }) })
  const refused = unusable(p)
  if (refused) throw refused
  const scripts = await changedScripts(store.agentsRoot, p)
  if (scripts.length > 0) throw scriptsChanged(p, scripts)

  const snap = await snapshotIfUnchanged(input, session, p)
  const snapshot = { name: snap.name, ref: snap.ref as string, commit: snap.commit }
  keep({ snapshot })
  const message = `Migrate ${p.from === null ? 'an empty vault' : `v${p.from}`} -> v${p.target}\n\n${trailers({
    'Aas-Run-Id': input.runId,
    'Aas-From': p.from ?? 'empty',
    'Aas-Target': p.target ?? '',
    'Aas-Snapshot': snap.name,
    'Aas-Dry-Run': 'false',
    'Aas-Units-Touched': p.touched,
    'Aas-Engine-Version': ENGINE_VERSION,
    'Aas-Preview': p.id,
  })}\n`
  const commit = await store.writeCommit({ tree: p.tree, parents: [snap.commit], message, timestamp: Math.floor(input.now().getTime() / 1000) })
  const result = { ref: runRef(input.runId), commit }
  await store.updateRef(result.ref, commit, null)
  keep({ result })
  const changes = journalChangesOf(await store.diffTrees({ tree: snap.tree, entries: snap.entries }, p.tree))
  const changed = changes.map((c) => c.path)
  keep({ changed })
  collectGarbage() // the snapshot's entries and the tree diff
  const units = changes.filter((c) => unitTypeOf(c.path) !== null)
  const plan = input.commit && units.length > 0 ? await prepareBranchCommit(store, units) : null
  const blobs = prefetchingBlobSource(
    store,
    changes.flatMap((c) => (c.newOid ? [c.newOid] : [])),
  )
  try {
    await fastForward(store, session, input.runId, { kind: 'migrate', from: snap.commit, to: commit, changes, blobs, env: input.env })
  } finally {
    await blobs.close()
  }
  keep({ applied: true })
  await markApplied(store, p, commit)
  if (!plan) return got
  const branchMessage = `Migrate vault to v${p.target}\n\nAas-Run-Id: ${input.runId}\nAas-From: ${p.from ?? 'empty'}\nAas-Target: ${p.target}\nAas-Snapshot: ${snap.name}\nAas-Preview: ${p.id}\n`
  return { ...got, branchCommit: await recordBranchCommit(store, plan, units, branchMessage) }
}

// The snapshot of the live vault; refused before its ref is set when its tree is not the
// one the preview started from (a repeat snapshot reads only files whose stat changed).
async function snapshotIfUnchanged(input: ApplyInput, session: WriteSession, p: Preview): Promise<TakeSnapshotResult> {
  session.emit({ type: 'phase', phase: 'snapshot', total: 0 })
  const snap = await takeSnapshot(input.store, {
    target: p.target ?? 0,
    from: p.from,
    runId: input.runId,
    now: input.now(),
    onProgress: (done, total) => session.emit({ type: 'progress', phase: 'snapshot', done, total }),
    beforeRef: async (s) => {
      if (s.tree === p.baseTree) return
      if (s.tree === p.tree) throw alreadyHeld(p)
      throw vaultChanged(p, await changedSince(input.store, p, { tree: s.tree, entries: s.entries }))
    },
  })
  session.emit({ type: 'snapshot', name: snap.name, ref: snap.ref, commit: snap.commit, files: snap.files })
  return snap
}

// The applied mark: refs/aas/applied/<preview id> at the result commit. Set after the
// fast-forward; a crash before it leaves the vault at the previewed tree, which a second
// --apply recognises (alreadyHeld).
async function markApplied(store: Store, p: Preview, commit: string): Promise<void> {
  try {
    await store.updateRef(appliedRef(p.id), commit, null)
  } catch (err) {
    if (!isAasError(err, 'REF_MOVED')) throw err
  }
}
