import type { MigrateResult } from '../../engine/migrate.js'
import { renderDiffStat, renderUnifiedDiff } from '../../engine/diff.js'
import { formatFailures, type ValidationResult } from '../../schema/validate.js'
import type { Paint } from './paint.js'

export function renderValidation(v: ValidationResult | null, paint: Paint): string {
  if (!v) return ''
  if (v.ok) return `validation: ${v.checked} unit${v.checked === 1 ? '' : 's'} valid at v${v.version} (${v.note})\n`
  const lines = formatFailures(v.failures)
  return `${paint.error(`validation: ${v.failures.length} of ${v.checked} units invalid at v${v.version}`)} (${v.note}):\n${lines.map((l) => `  ${l}`).join('\n')}\n`
}

// The dry run's stdout: the diff (or --stat), then what was checked and where the preview is.
export function renderDryRun(r: MigrateResult, { stat, paint }: { stat: boolean; paint: Paint }): string {
  let out = ''
  if (r.diff.length > 0) out += stat ? renderDiffStat(r.diff, { color: paint.enabled }) : renderUnifiedDiff(r.diff, { color: paint.enabled })
  return out
}

// The summary that follows a dry run or a real run (stderr for a dry run, so stdout stays a patch).
export function renderMigrateSummary(r: MigrateResult, paint: Paint): string {
  const lines: string[] = []
  const chain = r.steps.map((s) => s.file).join(', ')
  if (r.from !== null && r.steps.length > 0) lines.push(`${r.dryRun ? 'dry run' : 'migrated'}: v${r.from} -> v${r.target} via ${chain}`)
  if (r.units > 0) lines.push(`units: ${r.units} read, ${r.touched} touched, ${r.changed.length} file${r.changed.length === 1 ? '' : 's'} ${r.dryRun ? 'would change' : 'changed'}`)
  let text = lines.length > 0 ? `${lines.join('\n')}\n` : ''
  text += renderValidation(r.validation, paint)
  if (r.snapshot && r.result) {
    if (r.dryRun) {
      text += `preview kept on ${r.result.ref}\n  inspect: git --git-dir=<store> diff ${r.snapshot.ref} ${r.result.ref}\n`
      if (r.ok) text += `nothing was written to the vault; apply with: aas-migrate --to v${r.target}\n`
    } else if (r.applied) {
      text += `result: ${r.result.ref} (${r.result.commit.slice(0, 12)})\nroll back with: aas-migrate --rollback ${r.snapshot.name}\n`
    }
  }
  return text
}
