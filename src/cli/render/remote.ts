import type { PruneResult } from '../../snapshots/prune.js'
import type { TransferResult } from '../../snapshots/remote.js'

const refs = (n: number): string => `${n} ref${n === 1 ? '' : 's'}`

// The summary of --push-snapshots and --fetch-snapshots; a diverged ref is the error's.
export function renderTransferText(kind: 'push' | 'fetch', r: TransferResult): string {
  const lines = [
    kind === 'push'
      ? `pushed ${refs(r.transferred.length)} to ${r.remote} (${r.upToDate} already there)`
      : `fetched ${refs(r.transferred.length)} from ${r.remote} (${r.upToDate} already here)`,
  ]
  for (const ref of r.transferred) lines.push(`  ${ref}`)
  if (r.diverged.length > 0) lines.push(`${refs(r.diverged.length)} left alone: the same name with another commit on the other side`)
  return `${lines.join('\n')}\n`
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

// The summary of --prune-snapshots.
export function renderPruneText(r: PruneResult): string {
  const lines = [`deleted ${refs(r.deleted.length)}; kept ${r.kept.length} snapshot${r.kept.length === 1 ? '' : 's'}`]
  for (const ref of r.deleted) lines.push(`  ${ref}`)
  if (r.remote) lines.push(`deleted ${refs(r.remote.deleted.length)} on ${r.remote.name}`)
  if (r.repack) lines.push(`store repacked: ${size(r.repack.bytesFreed)} freed (${size(r.repack.bytesBefore)} -> ${size(r.repack.bytesAfter)})`)
  else if (r.deleted.length > 0) lines.push('the objects stay in the repository until git collects them: run `git gc` there to get the space back')
  return `${lines.join('\n')}\n`
}
