import { AasError } from '../errors.js'
import type { Store } from '../git/store.js'
import { pruneSnapshots, type PruneResult, type RetentionPolicy } from '../snapshots/prune.js'
import { readJournal } from '../transaction/journal.js'
import { acquireVaultLock } from '../transaction/lock.js'

// --prune-snapshots under the vault lock, so that no --to or --rollback takes or reads a
// snapshot while refs go and the store is repacked; refused while an interrupted
// transaction waits for recovery (its snapshot must stay).
export async function pruneVault(store: Store, opts: { policy: RetentionPolicy; remote: string | null; command: string; now?: Date }): Promise<PruneResult> {
  if (await readJournal(store.location.stateDir)) {
    throw new AasError('RECOVERY_REQUIRED', 'An interrupted transaction waits for recovery; its snapshot must not be pruned.', {
      hint: 'Run `aas-migrate --status` to complete it, then prune again.',
      data: { stateDir: store.location.stateDir },
    })
  }
  const lock = await acquireVaultLock(store.agentsRoot, { command: opts.command })
  try {
    return await pruneSnapshots(store, { policy: opts.policy, remote: opts.remote, ...(opts.now ? { now: opts.now } : {}) })
  } finally {
    await lock.release()
  }
}
