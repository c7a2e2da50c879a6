import { AasError } from '../errors.js'
import { displayRemote, listRemoteRefs, pushRefs, type RemoteRefUpdate } from '../git/remote.js'
import { APPLIED_REF_PREFIX, KEPT_REF_PREFIX, PENDING_REF_PREFIX, RUN_REF_PREFIX, SNAPSHOT_REF_PREFIX } from '../git/refs.js'
import { repackEmbeddedStore } from '../git/repack.js'
import type { RefCommit, Store } from '../git/store.js'
import { parseName } from './names.js'
import { checkRemoteBackend } from './remote.js'

// --prune-snapshots (docs/how-it-works.md, "Pruning snapshots"): retention. Each
// snapshot's parent is the previous snapshot (chain.ts), so a snapshot's files never
// depend on an older snapshot's ref: deleting that ref cannot break a later rollback.
// What a rollback of a kept snapshot does need is its run (refs/aas/runs/<id>, whose
// parent is the snapshot): the check for paths changed after the run reads it. So a run
// goes only with its snapshot, and the newest snapshot is always kept.

export interface RetentionPolicy {
  keepLast: number | null // keep the N newest
  keepWithinSeconds: number | null // keep those taken in this many seconds before now
}

export interface PruneCandidate {
  ref: string
  oid: string
  timestamp: number // seconds
}

// The refs to delete among candidates (one kind of ref): those neither among the keepLast
// newest nor within the window, and never the newest of all.
export function refsToPrune(candidates: readonly PruneCandidate[], policy: RetentionPolicy, nowSeconds: number): PruneCandidate[] {
  const sorted = [...candidates].sort((a, b) => b.timestamp - a.timestamp || (a.ref < b.ref ? 1 : a.ref > b.ref ? -1 : 0))
  return sorted.filter((c, i) => {
    if (i === 0) return false
    if (policy.keepLast !== null && i < policy.keepLast) return false
    if (policy.keepWithinSeconds !== null && c.timestamp >= nowSeconds - policy.keepWithinSeconds) return false
    return true
  })
}

export interface PruneResult {
  ok: boolean
  kept: string[] // snapshot names kept
  deleted: string[] // refs deleted here (snapshots, their runs, pending previews)
  remote: { name: string; deleted: string[] } | null
  // Embedded store: repacked, with the bytes its objects took before and after. A user's
  // repository: null (git gc there is the user's to run).
  repack: { bytesBefore: number; bytesAfter: number; bytesFreed: number } | null
  error: AasError | null
}

const toCandidate = (c: RefCommit): PruneCandidate => ({ ref: c.ref, oid: c.oid, timestamp: c.timestamp })

// Which refs go here: snapshots by the policy, the runs of the deleted snapshots (not of
// one still kept under another name), and dry-run previews by the same policy.
async function localPlan(store: Store, policy: RetentionPolicy, now: number): Promise<{ kept: string[]; drop: PruneCandidate[]; snapshots: RefCommit[] }> {
  const snapshots = await store.listRefCommits(SNAPSHOT_REF_PREFIX)
  const drop = refsToPrune(snapshots.map(toCandidate), policy, now)
  const dropped = new Set(drop.map((d) => d.ref))
  const keptCommits = new Set(snapshots.filter((s) => !dropped.has(s.ref)).map((s) => s.oid))
  const droppedCommits = new Set(drop.map((d) => d.oid))
  for (const run of await store.listRefCommits(RUN_REF_PREFIX)) {
    const parent = (await store.readCommit(run.oid)).parents[0]
    if (parent !== undefined && droppedCommits.has(parent) && !keptCommits.has(parent)) drop.push(toCandidate(run))
  }
  // A preview named in --apply (refs/aas/kept/) or applied (refs/aas/applied/) is never pruned.
  const spared = new Set(
    [...(await store.listRefs(KEPT_REF_PREFIX)), ...(await store.listRefs(APPLIED_REF_PREFIX))].map((r) => r.ref.slice(r.ref.lastIndexOf('/') + 1)),
  )
  const previews = (await store.listRefCommits(PENDING_REF_PREFIX)).filter((c) => !spared.has(c.ref.slice(PENDING_REF_PREFIX.length)))
  drop.push(...refsToPrune(previews.map(toCandidate), policy, now))
  const kept = snapshots
    .filter((s) => !dropped.has(s.ref))
    .map((s) => s.ref.slice(SNAPSHOT_REF_PREFIX.length))
    .sort()
  return { kept, drop, snapshots }
}

// The remote's snapshot refs by the same policy (a snapshot only the remote has is dated
// by its name; one whose name carries no date is kept), and the runs deleted here that
// the remote holds with the same commit. Every delete expects the remote's value.
async function remotePlan(store: Store, remote: string, policy: RetentionPolicy, now: number, local: RefCommit[], droppedHere: PruneCandidate[]) {
  const theirs = await listRemoteRefs(store, remote)
  const localTime = new Map(local.map((c) => [c.ref, c]))
  const candidates: PruneCandidate[] = []
  for (const r of theirs) {
    if (!r.ref.startsWith(SNAPSHOT_REF_PREFIX)) continue
    const here = localTime.get(r.ref)
    const timestamp = here && here.oid === r.oid ? here.timestamp : parseName(r.ref.slice(SNAPSHOT_REF_PREFIX.length))?.timestamp
    candidates.push({ ref: r.ref, oid: r.oid, timestamp: timestamp ?? Number.MAX_SAFE_INTEGER })
  }
  const updates: RemoteRefUpdate[] = refsToPrune(candidates, policy, now).map((c) => ({ ref: c.ref, oid: null, expect: c.oid }))
  const there = new Map(theirs.map((r) => [r.ref, r.oid]))
  for (const d of droppedHere) if (d.ref.startsWith(RUN_REF_PREFIX) && there.get(d.ref) === d.oid) updates.push({ ref: d.ref, oid: null, expect: d.oid })
  return updates
}

export async function pruneSnapshots(
  store: Store,
  { policy, remote = null, now = new Date() }: { policy: RetentionPolicy; remote?: string | null; now?: Date },
): Promise<PruneResult> {
  if (policy.keepLast === null && policy.keepWithinSeconds === null) {
    throw new AasError('USAGE', '--prune-snapshots needs --keep-last N or --keep-within DURATION.', {
      hint: 'e.g. --prune-snapshots --keep-last 10, or --keep-within 30d.',
      data: {},
    })
  }
  const seconds = Math.floor(now.getTime() / 1000)
  const plan = await localPlan(store, policy, seconds)
  // The remote is planned before anything is deleted here, so an unreachable one changes nothing.
  const remoteUpdates =
    remote === null ? null : (checkRemoteBackend(store, remote), await remotePlan(store, remote, policy, seconds, plan.snapshots, plan.drop))
  for (const d of plan.drop) await store.deleteRef(d.ref, d.oid)
  let remoteResult: PruneResult['remote'] = null
  let error: AasError | null = null
  if (remote !== null && remoteUpdates !== null) {
    const out = await pushRefs(store, remote, remoteUpdates)
    // With isomorphic-git each delete is its own push: those done before a failure are listed.
    remoteResult = { name: displayRemote(remote), deleted: out.updated }
    if (!out.ok) {
      const left = out.updated.length === 0 ? 'nothing was deleted there' : `the other ${out.updated.length} were deleted there`
      error =
        out.error ??
        new AasError('REMOTE_FAILED', `${displayRemote(remote)} changed while it was pruned: ${out.rejected.map((r) => r.ref).join(', ')}; ${left}.`, {
          hint: 'Run the command again.',
          data: { remote: displayRemote(remote), rejected: out.rejected },
        })
    }
  }
  let repack: PruneResult['repack'] = null
  if (store.location.kind === 'embedded' && store.backend === 'cli' && plan.drop.length > 0) {
    const r = await repackEmbeddedStore(store.location)
    repack = { bytesBefore: r.before, bytesAfter: r.after, bytesFreed: Math.max(0, r.before - r.after) }
  }
  return { ok: error === null, kept: plan.kept, deleted: plan.drop.map((d) => d.ref), remote: remoteResult, repack, error }
}
