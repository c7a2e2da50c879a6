import type { ApplyPreviewResult } from '../../commands/apply.js'
import type { PreviewStatus } from '../../commands/previews.js'

function age(seconds: number): string {
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h`
  return `${Math.floor(seconds / 86_400)} d`
}

// Why a preview does not apply, in a few words.
function why(p: PreviewStatus): string {
  if (p.applies) return p.kept ? 'applies (kept)' : 'applies'
  const r = p.reasons[0]
  if (!r) return ''
  const listed = (paths: readonly string[] = []): string => `${paths.slice(0, 3).join(', ')}${paths.length > 3 ? `, … (${paths.length})` : ''}`
  switch (r.code) {
    case 'PREVIEW_APPLIED':
      return p.applied ? `applied (${p.applied.commit.slice(0, 12)})` : 'the vault already holds it'
    case 'PREVIEW_SCRIPT_CHANGED':
      return `stale: script changed: ${listed(r.paths)}`
    case 'PREVIEW_STALE':
      return `stale: changed since: ${listed(r.paths)}`
    default:
      return p.validation && p.validation !== 'ok' ? `no: validation ${p.validation}` : 'no: recorded by an older aas-migrate'
  }
}

export function renderPreviewList(list: readonly PreviewStatus[]): string {
  if (list.length === 0) return 'no previews kept (every --to vN --dry-run keeps one)\n'
  const rows = list.map((p) => [
    p.id,
    age(p.ageSeconds),
    `${p.from === null ? '-' : `v${p.from}`} -> ${p.target === null ? '-' : `v${p.target}`}`,
    String(p.touched),
    why(p),
  ])
  const head = ['RUN ID', 'AGE', 'VERSIONS', 'TOUCHED', 'APPLIES']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const fmt = (r: string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return `${[fmt(head), ...rows.map(fmt)].join('\n')}\napply one with: aas-migrate --apply RUN_ID (or latest, the newest)\n`
}

export function renderApplyText(r: ApplyPreviewResult): string {
  if (!r.preview || !r.applied || !r.snapshot || !r.result) return ''
  const n = r.changed.length
  return [
    `applied preview ${r.preview.id}: v${r.from ?? 'empty'} -> v${r.target}, ${n} file${n === 1 ? '' : 's'} changed, no script run`,
    `result: ${r.result.ref} (${r.result.commit.slice(0, 12)})`,
    `roll back with: aas-migrate --rollback ${r.snapshot.name}`,
    '',
  ].join('\n')
}

// One line when a run deleted old previews (AAS_KEEP_PREVIEWS).
export function renderPruned(ids: readonly string[]): string {
  return ids.length === 0 ? '' : `pruned ${ids.length} old preview${ids.length === 1 ? '' : 's'} (AAS_KEEP_PREVIEWS): ${ids.join(', ')}\n`
}
