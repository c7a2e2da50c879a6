import type { LocatedSnapshot } from '../../snapshots/remote.js'
import type { RollbackResult } from '../../commands/rollback.js'

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

const WHERE: Record<LocatedSnapshot['location'], string> = { local: 'local', remote: 'remote', both: 'both', diverged: 'DIVERGED' }

// remote: the remote compared with (a WHERE column), or null.
export function renderSnapshotList(list: readonly LocatedSnapshot[], remote: string | null = null): string {
  if (list.length === 0) return `no snapshots yet (one is taken by every --to and --rollback)${remote ? `; none on ${remote} either` : ''}\n`
  const rows = list.map((s) => [
    ...(remote ? [WHERE[s.location]] : []),
    s.name,
    s.time.replace('.000Z', 'Z'),
    s.target === null ? '-' : `v${s.target}`,
    s.files === null ? '-' : String(s.files),
    size(s.bytesAdded),
    s.source === 'tarball' ? `legacy tarball, not imported (${s.file})` : s.importedFrom ? `imported from ${s.importedFrom}` : '',
  ])
  const head = [...(remote ? ['WHERE'] : []), 'NAME', 'TIME (UTC)', 'TARGET', 'FILES', 'ADDED', '']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const fmt = (r: string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  const note = remote ? `WHERE: local, remote (${remote}), both, or DIVERGED (another commit under that name there)\n` : ''
  return `${[fmt(head), ...rows.map(fmt)].join('\n')}\n${note}`
}

export function renderRollbackText(r: RollbackResult): string {
  if (!r.snapshot || !r.ok) return r.safety ? `safety snapshot ${r.safety.name} was taken; the vault was not changed\n` : ''
  const lines = [
    `rolled back to ${r.snapshot.name}${r.imported ? ' (imported from its tarball first)' : ''}: ${r.written} file${r.written === 1 ? '' : 's'} restored, ${r.removed} removed`,
  ]
  if (r.changed.length === 0) lines[0] = `the vault already matches ${r.snapshot.name}; nothing to restore`
  if (r.forced && r.foreign.length > 0) lines.push(`--force: discarded later changes to ${r.foreign.length} path${r.foreign.length === 1 ? '' : 's'}`)
  if (r.safety) lines.push(`undo this rollback with: aas-migrate --rollback ${r.safety.name}`)
  return `${lines.join('\n')}\n`
}
