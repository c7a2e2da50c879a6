import { readFileSync } from 'node:fs'
import type { CommitInput, TreeEntry } from '../../git/store.js'
import type { ScriptFile } from '../../migrations/discover.js'
import type { TakeSnapshotResult } from '../../snapshots/take.js'
import { hashBlob } from '../../transaction/blob-hash.js'
import { ENGINE_VERSION } from '../../version.js'
import type { ChainOutput } from './chain.js'
import type { MigrateInput } from './context.js'

// The result commit's parent and message. The commit is written while the chain still
// runs, so what it records is learnt as the run goes: the snapshot once it is taken, the
// vault version once the snapshot is planned; both before the chain's output ends, when
// the store asks for them.
//
// What a preview records so that `--apply` can check it still holds (src/commands/apply.ts):
// `Aas-Base-Tree`, the snapshot-scope tree the run started from (the tree of the commit's
// parent, the run's snapshot), one `Aas-Script: <file> <blob id>` per script of the chain
// (repeated, as git trailers may be), and `Aas-Validation`, `ok` or how many units failed.

export function trailers(t: Record<string, string | number | ReadonlyArray<string>>): string {
  return Object.entries(t)
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => `${k}: ${x}`) : [`${k}: ${v}`]))
    .join('\n')
}

export interface ResultCommitInfo {
  snapshotTaken(snap: Pick<TakeSnapshotResult, 'name' | 'commit' | 'tree' | 'entries'>): void
  planned(from: number | null, steps: ReadonlyArray<{ script: ScriptFile }>): void
  commit(out: ChainOutput): Omit<CommitInput, 'tree'>
}

// Each script's blob id (`git hash-object` of the file): from the snapshot where it holds
// the file, else (a script listed in _migrations/ignore) hashed from the vault.
function scriptIds(steps: ReadonlyArray<{ script: ScriptFile }>, inSnapshot: ReadonlyMap<string, TreeEntry>): string[] {
  return steps.map(({ script }) => `${script.file} ${inSnapshot.get(script.file)?.oid ?? hashBlob(readFileSync(script.path))}`)
}

export function resultCommitInfo({ runId, target, dryRun, now }: Pick<MigrateInput, 'runId' | 'target' | 'dryRun' | 'now'>): ResultCommitInfo {
  let snapshot: Pick<TakeSnapshotResult, 'name' | 'commit' | 'tree'> | null = null
  let scriptsIn = new Map<string, TreeEntry>()
  let from: number | null | undefined
  let scripts: string[] = []
  return {
    snapshotTaken: (snap) => {
      snapshot = { name: snap.name, commit: snap.commit, tree: snap.tree }
      scriptsIn = new Map(snap.entries.filter((e) => e.path.startsWith('_migrations/')).map((e) => [e.path, e]))
    },
    planned: (version, steps) => {
      from = version
      scripts = scriptIds(steps, scriptsIn)
    },
    commit(out) {
      if (!snapshot || from === undefined) throw new Error('the result commit was asked for before its snapshot was planned')
      const failed = out.validation?.failures.length ?? 0
      const message = `${dryRun ? 'Preview of' : 'Migrate'} ${from === null ? 'an empty vault' : `v${from}`} -> v${target}\n\n${trailers({
        'Aas-Run-Id': runId,
        'Aas-From': from ?? 'empty',
        'Aas-Target': target,
        'Aas-Snapshot': snapshot.name,
        'Aas-Dry-Run': String(dryRun),
        'Aas-Units-Touched': out.touched,
        'Aas-Engine-Version': ENGINE_VERSION,
        'Aas-Base-Tree': snapshot.tree,
        'Aas-Script': scripts,
        'Aas-Validation': out.validation === null ? 'none' : failed === 0 ? 'ok' : `${failed} failed`,
      })}\n`
      return { parents: [snapshot.commit], message, timestamp: Math.floor(now().getTime() / 1000) }
    },
  }
}
