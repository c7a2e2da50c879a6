import type { MigrateResult } from '../../commands/migrate/migrate.js'
import type { ChangePattern } from '../../diff/patterns.js'
import { diffStatEntries, renderDiffStatEntries, renderUnifiedDiff, sortDiffFiles, usablePatch, type DiffFile, type DiffStatEntry } from '../../diff/unified.js'
import { diffNeedsStore, withDiffContents } from '../../diff/contents.js'
import { openStore } from '../../git/open-store.js'
import { formatFailures, type ValidationResult } from '../../schema/validate.js'
import type { Paint } from './paint.js'

export function renderValidation(v: ValidationResult | null, paint: Paint): string {
  if (!v) return ''
  if (v.ok) return `validation: ${v.checked} unit${v.checked === 1 ? '' : 's'} valid at v${v.version} (${v.note})\n`
  const lines = formatFailures(v.failures)
  return `${paint.error(`validation: ${v.failures.length} of ${v.checked} units invalid at v${v.version}`)} (${v.note}):\n${lines.map((l) => `  ${l}`).join('\n')}\n`
}

// The dry run's stdout: the diff (or --stat), written a chunk of files at a time; the
// bytes a large run did not keep are read back from the store (the preview commit).
export async function writeDryRun(r: MigrateResult, { stat, paint, write }: { stat: boolean; paint: Paint; write: (text: string) => void }): Promise<void> {
  if (r.diff.length === 0) return
  const files = sortDiffFiles(r.diff)
  if (!stat) {
    // A file the chain rendered already is printed as it was rendered.
    const options = { color: paint.enabled }
    const rendered = (f: DiffFile): boolean => usablePatch(f, options)
    const chunks = diffNeedsStore(files, rendered)
      ? withDiffContents(await openStore({ agentsRoot: r.agentsRoot, create: false }), files, { rendered })
      : [files]
    for await (const chunk of chunks) write(renderUnifiedDiff(chunk, options))
    return
  }
  const chunks = diffNeedsStore(files) ? withDiffContents(await openStore({ agentsRoot: r.agentsRoot, create: false }), files) : [files]
  const entries: DiffStatEntry[] = []
  for await (const chunk of chunks) entries.push(...diffStatEntries(chunk))
  write(renderDiffStatEntries(entries, { color: paint.enabled }))
}

// The summary that follows a dry run or a real run (stderr for a dry run, so stdout stays a patch).
export function renderMigrateSummary(r: MigrateResult, paint: Paint): string {
  const lines: string[] = []
  const chain = r.steps.map((s) => s.file).join(', ')
  // A real run that stopped before the fast-forward changed nothing: it says so.
  const [verb, outcome] = r.dryRun
    ? ['dry run', 'would change']
    : r.applied
      ? ['migrated', 'changed']
      : ['not migrated', 'would have changed (none was written)']
  if (r.from !== null && r.steps.length > 0) lines.push(`${verb}: v${r.from} -> v${r.target} via ${chain}`)
  if (r.units > 0) lines.push(`units: ${r.units} read, ${r.touched} touched, ${r.changed.length} file${r.changed.length === 1 ? '' : 's'} ${outcome}`)
  let text = lines.length > 0 ? `${lines.join('\n')}\n` : ''
  text += renderPatterns(r.patterns, paint)
  text += renderValidation(r.validation, paint)
  if (r.snapshot && r.result) {
    if (r.dryRun) {
      text += `preview kept on ${r.result.ref}\n  inspect: git --git-dir=<store> diff ${r.result.ref}^ ${r.result.ref}\n`
      if (r.ok) text += `nothing was written to the vault; apply exactly this preview with: aas-migrate --apply ${r.runId}\n`
    } else if (r.applied) {
      text += `result: ${r.result.ref} (${r.result.commit.slice(0, 12)})\nroll back with: aas-migrate --rollback ${r.snapshot.name}\n`
    }
  }
  return text
}

// Groups printed in full; the rest are counted (all of them are in --json).
const SHOWN_PATTERNS = 20

// The change patterns: one line per group, largest first, with its count and example
// paths (every path of a small group).
export function renderPatterns(patterns: readonly ChangePattern[], paint: Paint): string {
  if (patterns.length === 0) return ''
  const count = (n: number): string => n.toLocaleString('en-US')
  const shown = patterns.slice(0, SHOWN_PATTERNS)
  const width = Math.max(...shown.map((p) => `${count(p.units)} unit${p.units === 1 ? '' : 's'}`.length))
  const out = [`change patterns: ${count(patterns.length)} group${patterns.length === 1 ? '' : 's'}`]
  for (const p of shown) {
    const head = `${count(p.units)} unit${p.units === 1 ? '' : 's'}`.padEnd(width)
    out.push(`  ${paint.bold(head)}  ${p.unexplained ? paint.warn(p.label) : p.label}`)
    const pad = ' '.repeat(width + 4)
    if (p.units <= p.examples.length) for (const path of p.examples) out.push(`${pad}${path}`)
    else out.push(`${pad}e.g. ${p.examples.join(', ')} (+${count(p.units - p.examples.length)} more)`)
  }
  const rest = patterns.slice(SHOWN_PATTERNS)
  if (rest.length > 0) {
    const units = rest.reduce((n, p) => n + p.units, 0)
    out.push(`  … ${count(rest.length)} more group${rest.length === 1 ? '' : 's'} (${count(units)} unit${units === 1 ? '' : 's'}): --json lists every group`)
  }
  return `${out.join('\n')}\n`
}
