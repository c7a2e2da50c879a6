// Every ref name the engine writes, in one place. All live below refs/aas/, so that a
// user's branches, tags and HEAD are never touched (docs/how-it-works.md, "The store
// and its refs").

export const AAS_REF_ROOT = 'refs/aas/'
// A snapshot: refs/aas/snapshots/<YYYY-MM-DDTHHMMSS_pre_v<target>_migration>.
export const SNAPSHOT_REF_PREFIX = `${AAS_REF_ROOT}snapshots/`
// The migrated state of a real run, by run id; its parent is the run's snapshot.
export const RUN_REF_PREFIX = `${AAS_REF_ROOT}runs/`
// The previewed state of a dry run, by run id.
export const PENDING_REF_PREFIX = `${AAS_REF_ROOT}pending/`
// A preview that `--apply` applied: points at the result commit of that apply (its run ref's).
export const APPLIED_REF_PREFIX = `${AAS_REF_ROOT}applied/`
// A preview an operator named in `--apply`: never pruned (points at the preview commit).
export const KEPT_REF_PREFIX = `${AAS_REF_ROOT}kept/`
// Short-lived refs that keep a snapshot's objects alive while it is written.
export const TMP_REF_PREFIX = `${AAS_REF_ROOT}tmp/`

export const snapshotRef = (name: string): string => SNAPSHOT_REF_PREFIX + name
export const runRef = (runId: string): string => RUN_REF_PREFIX + runId
export const pendingRef = (runId: string): string => PENDING_REF_PREFIX + runId
export const appliedRef = (previewId: string): string => APPLIED_REF_PREFIX + previewId
export const keptRef = (previewId: string): string => KEPT_REF_PREFIX + previewId

// Whether the engine may write this ref: a full name below refs/aas/.
export const isAasRef = (ref: string): boolean => ref.startsWith(AAS_REF_ROOT)
// The cross-host lease on a remote: a commit whose message names the holder (host, pid,
// command, start). Created and deleted only by compare-and-swap pushes.
export const LEASE_REF = `${AAS_REF_ROOT}lease`
// What --push-snapshots and --fetch-snapshots carry: the snapshots and the runs that
// record what each migration wrote (a rollback's check for later changes needs them).
export const PORTABLE_REF_PREFIXES = [SNAPSHOT_REF_PREFIX, RUN_REF_PREFIX] as const
