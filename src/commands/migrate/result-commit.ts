import type { CommitInput } from '../../git/store.js'
import type { TakeSnapshotResult } from '../../snapshots/take.js'
import { ENGINE_VERSION } from '../../version.js'
import type { ChainOutput } from './chain.js'
import type { MigrateInput } from './context.js'

// The result commit's parent and message. The commit is written while the chain still
// runs, so what it records is learnt as the run goes: the snapshot once it is taken, the
// vault version once the snapshot is planned; both before the chain's output ends, when
// the store asks for them.

export function trailers(t: Record<string, string | number>): string {
  return Object.entries(t)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n')
}

export interface ResultCommitInfo {
  snapshotTaken(snap: Pick<TakeSnapshotResult, 'name' | 'commit'>): void
  planned(from: number | null): void
  commit(out: ChainOutput): Omit<CommitInput, 'tree'>
}

export function resultCommitInfo({ runId, target, dryRun, now }: Pick<MigrateInput, 'runId' | 'target' | 'dryRun' | 'now'>): ResultCommitInfo {
  let snapshot: Pick<TakeSnapshotResult, 'name' | 'commit'> | null = null
  let from: number | null | undefined
  return {
    snapshotTaken: (snap) => void (snapshot = snap),
    planned: (version) => void (from = version),
    commit(out) {
      if (!snapshot || from === undefined) throw new Error('the result commit was asked for before its snapshot was planned')
      const message = `${dryRun ? 'Preview of' : 'Migrate'} ${from === null ? 'an empty vault' : `v${from}`} -> v${target}\n\n${trailers({
        'Aas-Run-Id': runId,
        'Aas-From': from ?? 'empty',
        'Aas-Target': target,
        'Aas-Snapshot': snapshot.name,
        'Aas-Dry-Run': String(dryRun),
        'Aas-Units-Touched': out.touched,
        'Aas-Engine-Version': ENGINE_VERSION,
      })}\n`
      return { parents: [snapshot.commit], message, timestamp: Math.floor(now().getTime() / 1000) }
    },
  }
}
