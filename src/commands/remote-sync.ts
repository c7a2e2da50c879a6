import { asAasError, type AasError } from '../errors.js'
import { displayRemote } from '../git/remote.js'
import type { Store } from '../git/store.js'
import { readConfiguredRemote } from '../snapshots/remote-config.js'
import { pushSnapshots } from '../snapshots/remote.js'

// What --to and --rollback do with aas.remote set (docs/how-it-works.md, "Snapshots on
// a remote"): once the run is done, its snapshots and run are pushed. A push that fails
// is reported and recorded; it never undoes the run.

export interface PushReport {
  remote: string
  ok: boolean
  transferred: number // refs created on the remote
  error: AasError | null
}

// Never throws: a failure comes back in the report.
export async function pushAfterRun(store: Store): Promise<PushReport | null> {
  let remote: string | null = null
  try {
    remote = await readConfiguredRemote(store)
    if (remote === null) return null
    const r = await pushSnapshots(store, remote)
    return { remote: r.remote, ok: r.ok, transferred: r.transferred.length, error: r.error }
  } catch (err) {
    return { remote: displayRemote(remote ?? ''), ok: false, transferred: 0, error: asAasError(err) }
  }
}

// The audit line's `push` field.
export function pushAuditField(p: PushReport): Record<string, unknown> {
  return { remote: p.remote, ok: p.ok, transferred: p.transferred, error: p.error?.message ?? '', error_code: p.error?.code ?? null }
}
