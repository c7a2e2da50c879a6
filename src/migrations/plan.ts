import { AasError } from '../errors.js'
import type { ScriptFile } from './discover.js'

// Which scripts a run needs: forward-only, one per step, contiguous from the
// vault version to the target. Pure: data in, data out, never throws.

export interface ChainStep<S extends ScriptFile = ScriptFile> {
  from: number
  to: number
  script: S
}

export type ChainPlan<S extends ScriptFile = ScriptFile> =
  | { ok: true; current: number | null; target: number; steps: Array<ChainStep<S>> }
  | { ok: false; current: number | null; target: number; error: AasError }

export interface PlanInput<S extends ScriptFile = ScriptFile> {
  current: number | null // the vault version (minimum unit version; unversioned = 0); null: an empty vault
  target: number
  scripts: readonly S[]
}

export function planChain<S extends ScriptFile>({ current, target, scripts }: PlanInput<S>): ChainPlan<S> {
  if (!Number.isSafeInteger(target) || target < 0) {
    return fail(
      current,
      target,
      new AasError('USAGE', `Target version ${String(target)} is not a version number.`, {
        hint: 'Pass --to vN with a whole number N, e.g. --to v2.',
        data: { current, target },
      }),
    )
  }
  // An empty vault has no unit to migrate: any target is reached by no step.
  if (current === null) return { ok: true, current, target, steps: [] }
  if (target <= current) {
    return fail(
      current,
      target,
      new AasError('NOT_ABOVE_CURRENT', `Target version v${target} is not above current v${current}.`, {
        hint:
          target === current
            ? `The vault is already at v${target}; nothing to migrate.`
            : `Migrations only go forward; to return to an earlier state use --rollback SNAPSHOT (see --list-snapshots).`,
        data: { current, target },
      }),
    )
  }
  const byFrom = new Map<number, S[]>()
  for (const s of scripts) byFrom.set(s.from, [...(byFrom.get(s.from) ?? []), s])
  const steps: Array<ChainStep<S>> = []
  const missing: Array<{ from: number; to: number }> = []
  for (let v = current; v < target; v++) {
    const group = (byFrom.get(v) ?? []).filter((s) => s.to === v + 1)
    if (group.length > 1) {
      const files = group.map((s) => s.file)
      return fail(
        current,
        target,
        new AasError('SCRIPT_DUPLICATE', `Two migration scripts for v${v} -> v${v + 1}: ${files.join(', ')}.`, {
          hint: 'Keep one of them; delete the others or prefix their names with _ to ignore them.',
          data: { file: files[0], files, from: v, to: v + 1 },
        }),
      )
    }
    const script = group[0]
    if (script) steps.push({ from: v, to: v + 1, script })
    else missing.push({ from: v, to: v + 1 })
  }
  if (missing.length > 0) {
    const first = missing[0]!
    const found = [...scripts].sort((a, b) => a.from - b.from).map((s) => s.file)
    const expected = missing.map((m) => `_migrations/v${m.from}_to_v${m.to}.{mjs,js,ts,mts,py}`)
    const others =
      missing.length > 1
        ? ` (also missing: ${missing
            .slice(1)
            .map((m) => `v${m.from} -> v${m.to}`)
            .join(', ')})`
        : ''
    return fail(
      current,
      target,
      new AasError(
        'CHAIN_GAP',
        `No migration script for v${first.from} -> v${first.to}${others}; found: ${found.length > 0 ? found.join(', ') : 'no scripts'}.`,
        {
          hint: `Add ${expected.join(' and ')} to the vault, or choose a lower --to.`,
          data: { current, target, missing, found },
        },
      ),
    )
  }
  return { ok: true, current, target, steps }
}

function fail<S extends ScriptFile>(current: number | null, target: number, error: AasError): ChainPlan<S> {
  return { ok: false, current, target, error }
}
