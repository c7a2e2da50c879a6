import { access } from 'node:fs/promises'
import path from 'node:path'
import { AasError, asAasError, isRefusal } from '../errors.js'
import { displayRemote } from '../git/remote.js'
import type { Store } from '../git/store.js'
import { appendAudit, type AuditRecord } from '../transaction/audit.js'
import { readJournal } from '../transaction/journal.js'
import { acquireVaultLock, AGENT_LOCK_FILE, withAgentLocks as lockAgents, type VaultLock } from '../transaction/lock.js'
import { recoverTransaction, type RecoveryResult } from '../transaction/transaction.js'
import { acquireLease, releaseLease, type Lease } from '../snapshots/lease.js'
import { readConfiguredRemote } from '../snapshots/remote-config.js'
import { pushAfterRun, pushAuditField, type PushReport } from './remote-sync.js'

// Events a long command reports while it works; the CLI renders them (progress,
// the snapshot name before any live write), the library never prints.
export type EngineEvent =
  | { type: 'recovered'; recovery: RecoveryResult }
  | { type: 'lock'; path: string }
  | { type: 'snapshot'; name: string; ref: string | null; commit: string; files: number; purpose?: 'safety' } // ref null: a dry run's base
  | { type: 'phase'; phase: 'snapshot' | 'apply' | 'validate' | 'fast-forward' | 'rollback'; total: number }
  | { type: 'progress'; phase: string; done: number; total: number }
  | { type: 'push'; push: PushReport } // aas.remote set: the run's snapshots pushed (or why not)
  | { type: 'lease'; remote: string; acquired: boolean; error: AasError | null } // the cross-host lease taken, or given back (error: it could not be)

export interface WriteSession {
  emit(event: EngineEvent): void
  // Hold the flock of every agent whose files are in `paths` while fn writes them.
  withAgentLocks<T>(paths: readonly string[], fn: () => Promise<T>): Promise<T>
}

// A command's own fields of its audit line; the session adds the rest (`result`, the
// error's message and code) from the error.
export interface AuditFields extends Pick<AuditRecord, 'dry_run' | 'units_touched' | 'snapshot' | 'result_commit' | 'rolled_back'> {
  from: number | null // the vault's version before, when known
  to: number | null // the target version, when there is one
  error: AasError | null
  [extra: string]: unknown
}

// The audit line of a command, from its own fields.
export function auditRecord(base: { runId: string; root: string; command: string; started: number }, { from, to, error, ...fields }: AuditFields): AuditRecord {
  return {
    run_id: base.runId,
    timestamp: new Date(base.started).toISOString(),
    agents_root: base.root,
    from_version: from ?? -1,
    to_version: to ?? -1,
    ...fields,
    error: error?.message ?? '',
    command: base.command,
    result: error === null ? 'ok' : isRefusal(error) ? 'refused' : 'failed',
    error_code: error?.code ?? null,
    duration_ms: Date.now() - base.started,
  }
}

export interface WriteSessionOptions<R> {
  store: Store
  runId: string
  command: string
  takeVaultLock: boolean
  lockTimeoutMs: number
  onEvent?: (event: EngineEvent) => void
  // The command-specific fields of its audit line, from its outcome.
  audit: (outcome: R) => AuditFields
}

// The agent folder of a vault path: the folder holding its outermost memory/ or wiki/.
export function agentDirOf(rel: string): string | null {
  const parts = rel.split('/')
  const i = parts.findIndex((p, k) => k < parts.length - 1 && (p === 'memory' || p === 'wiki'))
  return i > 0 ? parts.slice(0, i).join('/') : null
}

// Every writing command runs inside one: vault lock, recovery of an interrupted
// transaction first, the command, then one audit line, then the lock goes. What the body
// throws becomes its outcome through onError — an AasError as it is, anything else as
// INTERNAL — so the audit line is written whatever happened.
export async function withWriteSession<R>(
  options: WriteSessionOptions<R>,
  body: (session: WriteSession) => Promise<R>,
  onError: (err: AasError) => R | Promise<R>,
): Promise<R> {
  const { store, runId, command, onEvent } = options
  const root = store.agentsRoot
  const started = Date.now()
  const emit = (e: EngineEvent): void => onEvent?.(e)
  let lock: VaultLock | null = null
  let lease: Lease | null = null
  let outcome: R
  try {
    // With aas.remote set, a writing run first takes the cross-host lease there.
    const remote = options.takeVaultLock ? await readConfiguredRemote(store) : null
    if (remote !== null) {
      lease = await acquireLease(store, remote, command)
      emit({ type: 'lease', remote: displayRemote(remote), acquired: true, error: null })
    }
    const journal = await readJournal(store.location.stateDir)
    if (options.takeVaultLock || journal) {
      // After a crash the journal is left with a stale lock: recovery may break it.
      lock = await acquireVaultLock(root, { command, breakStale: journal !== null })
      emit({ type: 'lock', path: lock.path })
    }
    if (journal) await recoverUnderLock(store, emit)
    outcome = await body({
      emit,
      withAgentLocks: async (paths, fn) => {
        const dirs = [...new Set(paths.map(agentDirOf).filter((d): d is string => d !== null))].map((d) => path.join(root, d))
        const locked: string[] = []
        for (const dir of dirs) {
          // Only agents that use a lock file; the engine never creates one in an agent folder.
          if (
            await access(path.join(dir, AGENT_LOCK_FILE)).then(
              () => true,
              () => false,
            )
          )
            locked.push(dir)
        }
        return lockAgents(locked, { timeoutMs: options.lockTimeoutMs }, fn)
      },
    })
  } catch (err) {
    outcome = await onError(asAasError(err))
  }
  try {
    const fields = options.audit(outcome)
    // A run that changed the vault: its snapshots go to aas.remote, if one is set.
    if (lock !== null && options.takeVaultLock && fields.error === null && !fields.dry_run) {
      const push = await pushAfterRun(store)
      if (push) {
        emit({ type: 'push', push })
        fields.push = pushAuditField(push)
      }
    }
    if (lease) {
      const held = lease
      lease = null
      const error = await releaseLease(store, held)
      emit({ type: 'lease', remote: displayRemote(held.remote), acquired: false, error })
      if (error) fields.lease = { remote: displayRemote(held.remote), released: false, error: error.message }
    }
    await appendAudit(root, auditRecord({ runId, root, command, started }, fields))
  } finally {
    if (lease) await releaseLease(store, lease)
    await release(lock)
  }
  return outcome
}

// Undo an interrupted transaction; the caller holds the vault lock.
async function recoverUnderLock(store: Store, emit: (e: EngineEvent) => void): Promise<RecoveryResult | null> {
  const recovery = await recoverTransaction(store)
  if (recovery && recovery.conflicts.length > 0) {
    throw new AasError(
      'RECOVERY_REQUIRED',
      `An interrupted ${recovery.kind} (run ${recovery.runId}) cannot be undone: ${recovery.conflicts.join(', ')} changed since.`,
      {
        hint: 'Compare these files with the snapshot (git diff refs/aas/snapshots/<name> -- <path>), keep what you need, restore them, then run the command again.',
        data: { runId: recovery.runId, paths: recovery.conflicts },
      },
    )
  }
  if (recovery) emit({ type: 'recovered', recovery })
  return recovery
}

// For read-only commands: they take no lock, except to complete an interrupted
// transaction they find (docs/how-it-works.md, "Recovery": the writing commands and
// --status complete a journal first).
export async function recoverIfInterrupted(
  store: Store,
  { command, onEvent }: { command: string; onEvent?: (e: EngineEvent) => void },
): Promise<RecoveryResult | null> {
  if (!(await readJournal(store.location.stateDir))) return null
  const lock = await acquireVaultLock(store.agentsRoot, { command, breakStale: true })
  try {
    return await recoverUnderLock(store, (e) => onEvent?.(e))
  } finally {
    await lock.release()
  }
}

async function release(lock: VaultLock | null): Promise<void> {
  if (lock) await lock.release()
}
