import type { StatusResult } from '../../commands/status.js'
import { makePaint, type Paint } from './paint.js'

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

export function renderStatusText(s: StatusResult, paint: Paint = makePaint(false)): string {
  const lines: string[] = []
  const inv = s.inventory
  lines.push(
    `agents_root:   ${s.agentsRoot.path} (from ${s.agentsRoot.origin === 'flag' ? '--agents-root' : s.agentsRoot.origin === 'env' ? 'ATOMIC_AGENTS_ROOT' : 'the default'})`,
  )
  lines.push(
    `store:         ${s.store.kind === 'repo' ? `the vault's git repository ${s.store.gitDir} (refs/aas/*)` : `embedded ${s.store.gitDir}${s.store.exists ? '' : ' (created on the first snapshot)'}`}`,
  )
  lines.push(
    `vault version: ${inv.vaultVersion === null ? 'empty (no readable unit)' : `v${inv.vaultVersion}`}${inv.versions.length > 1 ? ' (mixed versions)' : ''}`,
  )
  lines.push('')
  lines.push(`units: ${inv.units}`)
  for (const row of inv.versions) {
    lines.push(`  v${row.version}: ${String(row.total).padStart(6)}  (memory ${row.memory}, wiki ${row.wiki})${row.version === 0 ? '  unversioned' : ''}`)
  }
  if (inv.unreadable.length > 0) {
    lines.push(`  unreadable: ${inv.unreadable.length}`)
  }
  if (inv.unversioned.length > 0) {
    lines.push('')
    lines.push(paint.warn(`unversioned units (no integer schema_version; count as v0): ${inv.unversioned.length}`))
    for (const u of inv.unversioned) lines.push(`  ${u.unitId}`)
  }
  if (inv.unreadable.length > 0) {
    lines.push('')
    lines.push(paint.error(`unreadable units (front matter does not parse; they block any migration): ${inv.unreadable.length}`))
    for (const u of inv.unreadable) lines.push(`  ${u.unitId}:${u.line}:${u.column}: ${u.message}`)
  }
  lines.push('')
  lines.push(`scripts (${s.scripts.length}, by file name; none executed):`)
  if (s.scripts.length === 0) lines.push('  none in _migrations/')
  for (const sc of s.scripts) lines.push(`  v${sc.from} -> v${sc.to}  ${sc.file}`)
  const py = s.python
  if (py) {
    const found = py.version
      ? `Python ${py.version}${py.executable ? ` (${py.executable})` : ''}, PyYAML ${py.yaml ?? 'missing'}${py.libyaml ? ' with libyaml' : ''}, atomic_agents ${py.atomicAgents ?? 'not installed (the built-in stand-in is used)'}`
      : 'not usable'
    lines.push(`python:        ${py.command} (from ${py.source === 'flag' ? '--python' : py.source === 'PATH' ? 'PATH' : `$${py.source}`}): ${found}`)
    if (py.error) lines.push(`  ${py.error.message} ${py.error.hint ?? ''}`.trimEnd())
  }
  const v = s.validators
  if (v.kind === 'built-in') lines.push(`validators:    built-in rules and the scripts' own (${v.reason})`)
  else {
    const judges = v.note && v.wiki ? 'notes and wiki pages' : v.note ? 'notes only' : 'wiki pages only'
    const accepts = v.schemaVersion === null ? '' : `, accepts schema v${v.schemaVersion} only`
    lines.push(`validators:    ${v.label}${accepts} (${judges}), besides the built-in rules and the scripts' own`)
    if (v.error) lines.push(paint.error(`  it cannot be imported, so a run is refused: ${v.error}`))
  }
  for (const e of s.scriptErrors) lines.push(`  ${paint.error('error:')} ${e.message}${e.hint ? ` (fix: ${e.hint})` : ''}`)
  const c = s.chain
  if (c.latest === null) lines.push('chain:         no scripts; nothing to migrate to')
  else if (inv.vaultVersion === null) lines.push(`chain:         the vault is empty; --to v${c.latest} changes nothing`)
  else if (c.latest <= inv.vaultVersion) lines.push(`chain:         the vault is at the latest scripted version (v${c.latest})`)
  else if (c.complete)
    lines.push(`chain:         v${inv.vaultVersion} -> v${c.latest} complete (${plural(c.steps.length, 'step')}); run --to v${c.latest} --dry-run to preview`)
  else lines.push(`chain:         v${inv.vaultVersion} -> v${c.latest} incomplete: no migration script for v${c.gap?.from} -> v${c.gap?.to}`)
  if (s.skipped.length > 0) {
    lines.push('')
    lines.push(`not snapshotted (not a regular file or symlink): ${s.skipped.length}`)
    for (const k of s.skipped) lines.push(`  ${k.path}: ${k.reason}`)
  }
  return `${lines.join('\n')}\n`
}
