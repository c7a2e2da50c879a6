import { type AasError, asAasError } from './errors.js'
import { locateStore } from './git/locate.js'
import type { BackendName, Store, StoreLocation } from './git/store.js'
import { pathExists } from './fs-exists.js'
import type { ApplyPreviewResult } from './commands/apply.js'
import type { DoctorResult } from './commands/doctor.js'
import type { MigrateResult } from './commands/migrate/migrate.js'
import type { RollbackResult } from './commands/rollback.js'
import type { EngineEvent } from './commands/session.js'
import type { StatusResult } from './commands/status.js'
import type * as snapshots from './snapshots/index.js'
import type { PreviewStatus } from './commands/previews.js'
import type { RecordedRun } from './commands/recorded-run.js'
import type * as leaseTypes from './snapshots/lease.js'
import type { PruneResult } from './snapshots/prune.js'
import type * as remoteTypes from './snapshots/remote.js'
import { resolveAgentsRoot, type AgentsRoot } from './vault/agents-root.js'
import path from 'node:path'

// The library's boundary (docs/how-it-works.md, "Where things are"): the only place that
// resolves agents_root, opens the store and calls the commands, which take normalised
// inputs. migrate() and rollback() never throw: every failure, expected or not, comes
// back in the result (`error`, `errors`), with its audit line where there is a vault to
// write it to. The read-only calls reject with an AasError.
// Each call imports its command's modules when it runs, so that `--status` does not load
// the migration engine (yaml, zod, diff, the git backends) it does not use.

export interface VaultOptions {
  agentsRoot?: string | undefined // default: $ATOMIC_AGENTS_ROOT, else ~/docs/agents
  env?: NodeJS.ProcessEnv
  backend?: BackendName // default: $AAS_GIT, else the git binary when on PATH, else isomorphic-git
}

export interface MigrateOptions extends VaultOptions {
  target: number
  dryRun?: boolean
  commit?: boolean // also record the migration as one commit on the current branch (git vaults)
  lockTimeoutMs?: number // how long to wait for an agent's .lock (default 30 s)
  now?: () => Date
  onEvent?: (event: EngineEvent) => void
  python?: string | undefined // the interpreter for .py scripts (else $AAS_PYTHON, $VIRTUAL_ENV/bin/python, python3)
  // A dry run: each changed file's part of the diff, rendered while the chain runs (in its
  // workers) as renderUnifiedDiff would with `color`, kept in MigrateResult.diff[].patch in
  // place of the contents (within the run's buffer, AAS_BUFFER_MB; beyond it, contents or
  // blob ids as without it). For a caller that prints the diff, as the CLI does.
  patches?: { color: boolean } | undefined
}

export interface RollbackOptions extends VaultOptions {
  snapshot: string // a snapshot name, NAME.tar.gz, or a legacy tarball name in _migrations/snapshots/
  force?: boolean
  commit?: boolean // also record the restored units as one commit on the current branch (git vaults)
  lockTimeoutMs?: number
  now?: () => Date
  onEvent?: (event: EngineEvent) => void
}

export interface ApplyOptions extends VaultOptions {
  preview: string // the run id a dry run printed, or 'latest'
  commit?: boolean // also record the migration as one commit on the current branch (git vaults)
  lockTimeoutMs?: number
  now?: () => Date
  onEvent?: (event: EngineEvent) => void
}

export interface StatusOptions extends Omit<VaultOptions, 'backend'> {
  onProgress?: (done: number) => void
  onEvent?: (event: EngineEvent) => void
  python?: string | undefined // the interpreter reported for .py scripts (else $AAS_PYTHON, $VIRTUAL_ENV/bin/python, python3)
}

export interface DoctorOptions extends VaultOptions {
  python?: string | undefined // the interpreter checked for .py scripts (else $AAS_PYTHON, $VIRTUAL_ENV/bin/python, python3)
}

export interface ExportSnapshotOptions extends VaultOptions {
  snapshot: string
  out?: string // default: <agents_root>/_migrations/snapshots/<name>.tar.gz
}

export interface ImportSnapshotOptions extends VaultOptions {
  file: string // a .tar.gz in the Python runner's layout
}

// The backend given, else the one AAS_GIT of the caller's env names (the CLI's env, in-process too).
const backendOf = ({ backend, env }: VaultOptions) => (backend ? { backend } : env ? { env } : {})

async function openStore(options: { agentsRoot: string; create?: boolean; backend?: BackendName; env?: NodeJS.ProcessEnv }): Promise<Store> {
  return (await import('./git/open-store.js')).openStore(options)
}

// Whether the store exists, from the file system alone (a repository vault always has one).
async function storeExists(location: StoreLocation): Promise<boolean> {
  return location.kind === 'repo' || (await pathExists(path.join(location.gitDir, 'HEAD')))
}

async function rootOf({ agentsRoot, env = process.env }: VaultOptions): Promise<AgentsRoot> {
  return resolveAgentsRoot({ flag: agentsRoot, env })
}

// The vault's store if one exists (a read-only command never creates one).
async function existingStore(root: string, options: VaultOptions): Promise<{ location: StoreLocation; store: Store | null }> {
  const location = await locateStore(root)
  return { location, store: (await storeExists(location)) ? await openStore({ agentsRoot: root, create: false, ...backendOf(options) }) : null }
}

// A vault and its store, or the failure that prevents opening them: a missing or
// unreadable agents_root (no audit line: there is no vault to write it to), or a store
// that cannot be opened (its audit line is written here).
async function openVault(
  options: VaultOptions,
  runId: string,
  command: string,
  started: number,
): Promise<{ root: string; store: Store } | { root: string | null; error: AasError }> {
  let root: string
  try {
    root = (await rootOf(options)).path
  } catch (err) {
    return { root: null, error: asAasError(err) }
  }
  try {
    return { root, store: await openStore({ agentsRoot: root, ...backendOf(options) }) }
  } catch (err) {
    const error = asAasError(err)
    const fields = { from: null, to: null, dry_run: false, units_touched: 0, snapshot: null, result_commit: null, rolled_back: false, error }
    const [{ appendAudit }, { auditRecord }] = await Promise.all([import('./transaction/audit.js'), import('./commands/session.js')])
    await appendAudit(root, auditRecord({ runId, root, command, started }, fields)).catch(() => undefined)
    return { root, error }
  }
}

function agentsRootGuess(options: VaultOptions, root: string | null): string {
  return root ?? (options.agentsRoot || options.env?.ATOMIC_AGENTS_ROOT || '')
}

/**
 * `--to vN` as a library call: the chain on a scratch tree, every unit validated, then
 * the live vault fast-forwarded (or, with `dryRun`, only previewed). Never throws.
 * @example
 * const r = await migrate({ agentsRoot: '/srv/agents', target: 2, dryRun: true })
 * if (!r.ok) console.error(r.errors.map((e) => e.message))
 * else console.log(`${r.changed.length} units would change; preview at ${r.result?.ref}`)
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const { target, dryRun = false, commit = false, env = process.env, now = () => new Date(), lockTimeoutMs = 30_000, onEvent } = options
  const started = Date.now()
  const [{ migrateResult, migrateVault }, { newRunId }] = await Promise.all([import('./commands/migrate/migrate.js'), import('./commands/run-id.js')])
  const runId = newRunId(now())
  const vault = await openVault(options, runId, `--to v${target}${dryRun ? ' --dry-run' : ''}`, started)
  if ('error' in vault) return migrateResult({ runId, target, dryRun, agentsRoot: agentsRootGuess(options, vault.root), started }, {}, [vault.error])
  return migrateVault({
    store: vault.store,
    runId,
    target,
    dryRun,
    commit,
    env,
    lockTimeoutMs,
    now,
    ...(onEvent ? { onEvent } : {}),
    python: options.python,
    patches: options.patches,
  })
}

/**
 * `--rollback SNAPSHOT` as a library call: a safety snapshot, then the snapshot scope
 * restored as one journaled transaction. Never throws.
 * @example
 * const r = await rollback({ agentsRoot: '/srv/agents', snapshot: '2026-12-01T101500_pre_v2_migration' })
 * console.log(r.ok ? `restored; undo with ${r.safety?.name}` : r.error?.message)
 */
export async function rollback(options: RollbackOptions): Promise<RollbackResult> {
  const { snapshot, force = false, commit = false, env = process.env, now = () => new Date(), lockTimeoutMs = 30_000, onEvent } = options
  const started = Date.now()
  const [{ rollbackResult, rollbackVault }, { newRunId }] = await Promise.all([import('./commands/rollback.js'), import('./commands/run-id.js')])
  const runId = newRunId(now())
  const vault = await openVault(options, runId, `--rollback ${snapshot}${force ? ' --force' : ''}`, started)
  if ('error' in vault) return rollbackResult({ runId, force, agentsRoot: agentsRootGuess(options, vault.root), started }, {}, [vault.error])
  return rollbackVault({ store: vault.store, runId, snapshot, force, commit, env, lockTimeoutMs, now, ...(onEvent ? { onEvent } : {}) })
}

/**
 * `--apply RUN_ID|latest` as a library call: the live vault fast-forwarded to exactly the
 * tree a dry run previewed (`refs/aas/pending/<run id>`), with a snapshot first and no
 * script run. Refused (`PREVIEW_STALE`, `PREVIEW_SCRIPT_CHANGED`, `PREVIEW_APPLIED`, …)
 * when the vault or a script changed since the preview. Never throws.
 * @example
 * const dry = await migrate({ agentsRoot: '/srv/agents', target: 2, dryRun: true })
 * // … review dry.diff …
 * const r = await apply({ agentsRoot: '/srv/agents', preview: dry.runId })
 * console.log(r.ok ? `applied; roll back with ${r.snapshot?.name}` : r.error?.message)
 */
export async function apply(options: ApplyOptions): Promise<ApplyPreviewResult> {
  const { preview, commit = false, env = process.env, now = () => new Date(), lockTimeoutMs = 30_000, onEvent } = options
  const started = Date.now()
  const [{ applyPreview, applyResult }, { newRunId }] = await Promise.all([import('./commands/apply.js'), import('./commands/run-id.js')])
  const runId = newRunId(now())
  const vault = await openVault(options, runId, `--apply ${preview}`, started)
  if ('error' in vault) return applyResult({ runId, agentsRoot: agentsRootGuess(options, vault.root), started }, {}, [vault.error])
  return applyPreview({ store: vault.store, runId, preview, commit, env, lockTimeoutMs, now, ...(onEvent ? { onEvent } : {}) })
}

/**
 * `--list-previews`: the previews dry runs kept, newest first, with what each recorded;
 * `applies` says whether `apply` would take it now, `reasons` why not. Reads only (the
 * check hashes the files whose stat changed since the last snapshot, as a snapshot
 * would, without setting any ref). Rejects with an {@link AasError}.
 * @example
 * for (const p of await listPreviews({ agentsRoot: '/srv/agents' })) console.log(p.id, p.applies, p.reasons)
 */
export async function listPreviews(options: VaultOptions = {}): Promise<PreviewStatus[]> {
  const store = await openStore({ agentsRoot: (await rootOf(options)).path, create: false, ...backendOf(options) })
  const { listPreviews: listPreviewRefs, previewStatuses } = await import('./commands/previews.js')
  return previewStatuses(store, await listPreviewRefs(store))
}

/**
 * `--status`: inventory by version, unversioned and unreadable units, scripts by name
 * (never run), the chain, the store. Takes no lock, except to complete an interrupted
 * transaction it finds. Rejects with an {@link AasError} (e.g. `AGENTS_ROOT_MISSING`).
 * @example
 * const s = await status({ agentsRoot: '/srv/agents' })
 * console.log(`v${s.inventory.vaultVersion}: ${s.inventory.units} units, ${s.inventory.unreadable.length} unreadable`)
 * if (!s.chain.complete) console.log(`no script for v${s.chain.gap?.from} -> v${s.chain.gap?.to}`)
 */
export async function status(options: StatusOptions = {}): Promise<StatusResult> {
  const root = await rootOf(options)
  const location = await locateStore(root.path)
  const { vaultStatus } = await import('./commands/status.js')
  return vaultStatus({
    root,
    location,
    storeExists: await storeExists(location),
    openStore: () => openStore({ agentsRoot: root.path, create: false, ...(options.env ? { env: options.env } : {}) }),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    python: options.python,
    ...(options.env ? { env: options.env } : {}),
  })
}

/**
 * `--doctor`: read-only health checks, each failed one with the commands that fix it.
 * An unhealthy vault resolves with `ok: false`; a missing agents_root rejects with an
 * {@link AasError}.
 * @example
 * const d = await doctor({ agentsRoot: '/srv/agents' })
 * for (const c of d.checks.filter((c) => !c.ok)) console.log(c.message, c.fixes)
 */
export async function doctor(options: DoctorOptions = {}): Promise<DoctorResult> {
  const root = (await rootOf(options)).path
  const { checkVault } = await import('./commands/doctor.js')
  return checkVault({ root, ...(await existingStore(root, options)), python: options.python, ...(options.env ? { env: options.env } : {}) })
}

/**
 * `--list-snapshots`: snapshots newest first, then Python-runner tarballs not yet
 * imported (`source: 'tarball'`); empty when the vault has no store yet. Rejects with an
 * {@link AasError}.
 * @example
 * for (const s of await listSnapshots({ agentsRoot: '/srv/agents' })) console.log(s.name, s.time, s.target)
 */
export async function listSnapshots(options: VaultOptions = {}): Promise<snapshots.Snapshot[]> {
  const { listSnapshots } = await import('./snapshots/index.js')
  return listSnapshots(await openStore({ agentsRoot: (await rootOf(options)).path, create: false, ...backendOf(options) }))
}

/**
 * `--export-snapshot`: a snapshot as a `.tar.gz` in the Python runner's layout, by default
 * `_migrations/snapshots/<name>.tar.gz`. Rejects with an {@link AasError} (e.g.
 * `SNAPSHOT_NOT_FOUND`, `TARBALL_EXISTS`).
 * @example
 * const { file, files } = await exportSnapshot({ agentsRoot: '/srv/agents', snapshot: '2026-12-01T101500_pre_v2_migration', out: '/backups/before-v2.tar.gz' })
 */
export async function exportSnapshot({ snapshot, out, ...options }: ExportSnapshotOptions): Promise<snapshots.ExportResult> {
  const store = await openStore({ agentsRoot: (await rootOf(options)).path, create: false, ...backendOf(options) })
  return (await import('./snapshots/index.js')).exportSnapshot(store, snapshot, out === undefined ? {} : { out })
}

/**
 * `--import-snapshot`: a tarball (the Python runner's, or an export) becomes a snapshot
 * ref named after the file. Rejects with an {@link AasError}: `TARBALL_INVALID` for a
 * member that is absolute, climbs out with `..`, links outside the vault or is a device,
 * FIFO or hard link (every header is vetted before anything is written);
 * `SNAPSHOT_EXISTS` when that snapshot is already there.
 * @example
 * const { name, ref } = await importSnapshot({ agentsRoot: '/srv/agents', file: '/backups/before-v2.tar.gz' })
 */
export async function importSnapshot({ file, ...options }: ImportSnapshotOptions): Promise<snapshots.ImportResult> {
  const store = await openStore({ agentsRoot: (await rootOf(options)).path, ...backendOf(options) })
  return (await import('./snapshots/index.js')).importSnapshot(store, file)
}

/**
 * A recorded run, read from the store: a real run (`refs/aas/runs/<id>`) or a dry run
 * (`refs/aas/pending/<id>`), or the newest of either with `run: 'latest'`; its changed
 * files and change patterns, for `--report FILE.html --run RUN_ID`. Rejects with an
 * {@link AasError} (`REF_INVALID` for an unknown id).
 * @example
 * const r = await recordedRun({ agentsRoot: '/srv/agents', run: 'latest' })
 * console.log(`${r.result.ref}: ${r.diff.length} files, ${r.patterns.length} patterns`)
 */
export async function recordedRun({ run, ...options }: VaultOptions & { run: string }): Promise<RecordedRun> {
  const { readRecordedRun } = await import('./commands/recorded-run.js')
  return readRecordedRun(await openStore({ agentsRoot: (await rootOf(options)).path, create: false, ...backendOf(options) }), run)
}

export interface RemoteOptions extends VaultOptions {
  remote?: string | undefined // a remote of the vault's repository, a path or a URL; default: aas.remote, else origin
}

// The store of a remote command and the remote it uses (REMOTE_MISSING when there is none).
async function remoteOf(options: RemoteOptions, flag: string, create: boolean): Promise<{ store: Store; remote: string }> {
  const remoteConfig = await import('./snapshots/remote-config.js')
  const store = await openStore({ agentsRoot: (await rootOf(options)).path, create, ...backendOf(options) })
  const remote = options.remote === undefined ? await remoteConfig.defaultRemote(store) : await remoteConfig.resolveRemoteArg(store, options.remote)
  if (remote === null) throw remoteConfig.noRemote(store, flag)
  return { store, remote }
}

/**
 * `--push-snapshots [REMOTE]`: every snapshot and run ref (`refs/aas/snapshots/*`,
 * `refs/aas/runs/*`) the remote lacks is created there in one atomic push; nothing else
 * is pushed and nothing on the remote is overwritten. A name the remote holds with
 * another commit comes back in `diverged` with `ok: false` and `SNAPSHOT_DIVERGED`.
 * Rejects with an {@link AasError} when the remote cannot be reached (`REMOTE_FAILED`).
 * @example
 * const r = await pushSnapshots({ agentsRoot: '/srv/agents', remote: 'file:///mnt/backup/vault.git' })
 * console.log(`${r.transferred.length} refs pushed to ${r.remote}`)
 */
export async function pushSnapshots(options: RemoteOptions = {}): Promise<remoteTypes.TransferResult> {
  const { store, remote } = await remoteOf(options, '--push-snapshots', false)
  return (await import('./snapshots/remote.js')).pushSnapshots(store, remote)
}

/**
 * `--fetch-snapshots REMOTE`: the remote's snapshot and run refs this store lacks are
 * created here (an empty folder gets a new embedded store); a local snapshot is never
 * overwritten (`diverged`, `SNAPSHOT_DIVERGED`).
 * @example
 * await fetchSnapshots({ agentsRoot: '/srv/new-agents', remote: 'ssh://backup/vault.git' })
 * await rollback({ agentsRoot: '/srv/new-agents', snapshot: '2026-12-01T101500_pre_v2_migration' })
 */
export async function fetchSnapshots(options: RemoteOptions & { remote: string }): Promise<remoteTypes.TransferResult> {
  const { store, remote } = await remoteOf(options, '--fetch-snapshots', true)
  return (await import('./snapshots/remote.js')).fetchSnapshots(store, remote)
}

/**
 * `--list-snapshots` with the remote: every snapshot, newest first, and where it is
 * (`local`, `remote`, `both`, or `diverged`: the same name with another commit there).
 * The remote is `remote`, else `aas.remote`; without one every snapshot is `local`. An
 * unreachable remote does not fail the listing: `remote.reachable` is false.
 * @example
 * const { snapshots } = await locateSnapshots({ agentsRoot: '/srv/agents', remote: 'origin' })
 * for (const s of snapshots) console.log(s.name, s.location)
 */
export async function locateSnapshots(options: RemoteOptions = {}): Promise<remoteTypes.SnapshotListing> {
  const store = await openStore({ agentsRoot: (await rootOf(options)).path, create: false, ...backendOf(options) })
  const remoteConfig = await import('./snapshots/remote-config.js')
  const remote = options.remote === undefined ? await remoteConfig.readConfiguredRemote(store) : await remoteConfig.resolveRemoteArg(store, options.remote)
  return (await import('./snapshots/remote.js')).locateSnapshots(store, remote)
}

/**
 * `--remote REMOTE`: sets `aas.remote` in the store's config (`<store>/aas/config`), the
 * remote that the snapshot commands use by default. A path is stored absolute.
 * @example
 * await setRemote({ agentsRoot: '/srv/agents', remote: 'origin' })
 */
export async function setRemote(options: RemoteOptions & { remote: string }): Promise<{ remote: string; file: string }> {
  const store = await openStore({ agentsRoot: (await rootOf(options)).path, ...backendOf(options) })
  const remoteConfig = await import('./snapshots/remote-config.js')
  const remote = await remoteConfig.resolveRemoteArg(store, options.remote)
  await remoteConfig.writeConfiguredRemote(store, remote)
  return { remote, file: remoteConfig.remoteConfigPath(store) }
}

/**
 * `--unset-remote`: removes `aas.remote` from the store's config (`<store>/aas/config`);
 * the snapshot commands then use `origin` of the vault's repository, if it has one, and
 * `--to` and `--rollback` take no lease and push nothing. `removed` is the remote that
 * was set (an http(s) URL's password hidden), or `null` when none was (nothing changed).
 * @example
 * const { removed } = await unsetRemote({ agentsRoot: '/srv/agents' })
 * console.log(removed === null ? 'no aas.remote was set' : `aas.remote ${removed} removed`)
 */
export async function unsetRemote(options: VaultOptions = {}): Promise<{ removed: string | null; file: string }> {
  const store = await openStore({ agentsRoot: (await rootOf(options)).path, create: false, ...backendOf(options) })
  const remoteConfig = await import('./snapshots/remote-config.js')
  const { displayRemote } = await import('./git/remote.js')
  const removed = await remoteConfig.removeConfiguredRemote(store)
  return { removed: removed === null ? null : displayRemote(removed), file: remoteConfig.remoteConfigPath(store) }
}

export interface PruneSnapshotsOptions extends VaultOptions {
  keepLast?: number | undefined // keep the N newest snapshots
  keepWithinSeconds?: number | undefined // keep the snapshots taken in this many seconds before now
  remote?: string | undefined // prune there too (a remote of the vault's repository, a path or a URL)
  now?: Date
}

/**
 * `--prune-snapshots`: deletes the snapshot refs that neither `keepLast` nor
 * `keepWithinSeconds` keeps (never the newest), the runs of those snapshots and the
 * dry-run previews by the same rule, here and, with `remote`, there (compare-and-swap
 * deletes). The embedded store is then repacked (`repack.bytesFreed`); in a user's
 * repository only refs are deleted (`git gc` gives the space back). Takes the vault lock.
 * @example
 * const r = await pruneSnapshots({ agentsRoot: '/srv/agents', keepLast: 10 })
 * console.log(`${r.deleted.length} refs deleted, ${r.repack?.bytesFreed ?? 0} bytes freed`)
 */
export async function pruneSnapshots(options: PruneSnapshotsOptions): Promise<PruneResult> {
  const store = await openStore({ agentsRoot: (await rootOf(options)).path, create: false, ...backendOf(options) })
  const remoteConfig = await import('./snapshots/remote-config.js')
  const remote = options.remote === undefined ? null : await remoteConfig.resolveRemoteArg(store, options.remote)
  const policy = { keepLast: options.keepLast ?? null, keepWithinSeconds: options.keepWithinSeconds ?? null }
  const command = `--prune-snapshots${policy.keepLast === null ? '' : ` --keep-last ${policy.keepLast}`}${policy.keepWithinSeconds === null ? '' : ` --keep-within ${policy.keepWithinSeconds}s`}`
  const { pruneVault } = await import('./commands/prune.js')
  return pruneVault(store, { policy, remote, command, ...(options.now ? { now: options.now } : {}) })
}

/**
 * `--break-lease`: removes `refs/aas/lease` from the remote (`remote`, else `aas.remote`,
 * else origin) whoever holds it, by a delete that expects the lease just read; returns
 * its holder. For a run that died on another machine; a live run's lease must be left.
 * @example
 * const r = await breakLease({ agentsRoot: '/srv/agents' })
 * if (r.broken) console.log(`removed the lease of ${r.holder?.host}`)
 */
export async function breakLease(options: RemoteOptions = {}): Promise<leaseTypes.LeaseState & { broken: boolean }> {
  const { store, remote } = await remoteOf(options, '--break-lease', false)
  return (await import('./snapshots/lease.js')).breakLease(store, remote)
}
