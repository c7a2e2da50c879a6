import path from 'node:path'
import { AasError } from './errors.js'
import { renderUnifiedDiff, type DiffFile } from './diff/unified.js'
import { applyChain, type UnitApplyResult } from './migrations/apply.js'
import type { Migration } from './migrations/define.js'
import type { ScriptExt, ScriptFile } from './migrations/discover.js'
import { loadScripts, type LoadedMigration } from './migrations/load.js'
import type { PythonBridge } from './migrations/python-bridge.js'
import { choosePython } from './migrations/python-interpreter.js'
import { planChain } from './migrations/plan.js'
import { validateUnits, type ValidationResult } from './schema/validate.js'
import { readUnitVersion } from './vault/inventory.js'
import { unitTypeOf, type UnitType } from './vault/rules.js'

// `aas-migrate/testing`: run migration scripts over unit texts in memory, exactly as
// the engine runs them on its scratch tree (same chain, handle, validation and diff),
// so a script author can test a script without a vault, a store or a snapshot.

export interface InMemoryUnit {
  unitId: string // vault-relative POSIX path; decides the unit type (…/memory/… or …/wiki/…)
  text: string
  unitType?: UnitType // only when unitId has no memory/ or wiki/ folder
}

export interface RunInMemoryOptions {
  scripts?: readonly string[] // script files (v<N>_to_v<N+1>.{mjs,js,ts,mts,py}), loaded like the engine does
  migrations?: readonly Migration[] // or migration objects, e.g. a script's default export
  units: readonly InMemoryUnit[]
  target?: number // default: the highest `to` of the scripts given
  dryRun?: boolean // what unit.dryRun reports to the scripts (default false)
  python?: string // the interpreter for .py scripts (default: $AAS_PYTHON, else $VIRTUAL_ENV/bin/python, else python3)
}

// One unit's outcome: as the engine's, without the per-step details.
export type InMemoryUnitResult = Omit<UnitApplyResult, 'steps'>

export interface InMemoryRunResult {
  from: number // the lowest unit version (unversioned units count as 0)
  target: number
  steps: Array<{ from: number; to: number; file: string }>
  units: InMemoryUnitResult[]
  validation: ValidationResult // every unit at `target`, as the real run checks it
  diff: string // the unified diff of the changed units, as --dry-run prints it
}

const SCRIPT_FILE = /^v(\d+)_to_v(\d+)\.(mjs|js|ts|mts|py)$/

function scriptFileOf(file: string): ScriptFile {
  const abs = path.resolve(file)
  const m = SCRIPT_FILE.exec(path.basename(abs))
  if (!m) {
    throw new AasError('SCRIPT_NAME_INVALID', `${file} is not named like a migration script (v<N>_to_v<N+1>.{mjs,js,ts,mts,py}).`, {
      hint: 'Pass the script file itself, e.g. _migrations/v1_to_v2.ts.',
      data: { file },
    })
  }
  return { file: `_migrations/${path.basename(abs)}`, path: abs, from: Number(m[1]), to: Number(m[2]), ext: m[3] as ScriptExt }
}

// The scripts and migration objects as one list, and the Python bridge the .py scripts
// were loaded into (the caller closes it).
async function loadAll({ scripts = [], migrations = [], python }: RunInMemoryOptions): Promise<{ all: LoadedMigration[]; bridge: PythonBridge | null }> {
  const files = scripts.map(scriptFileOf)
  const loaded = await loadScripts(files, files.some((f) => f.ext === 'py') ? { python: choosePython({ flag: python }).command } : {})
  const bridge = loaded.bridge ?? null
  if (loaded.errors[0]) {
    bridge?.close()
    throw loaded.errors[0]
  }
  const objects = migrations.map(
    (m): LoadedMigration => ({ file: `v${m.from}_to_v${m.to} (in memory)`, path: '', from: m.from, to: m.to, ext: 'mjs', migration: m }),
  )
  const all = [...loaded.loaded, ...objects]
  if (all.length === 0)
    throw new AasError('USAGE', 'runMigrationInMemory needs `scripts` or `migrations`.', {
      hint: 'Pass { migrations: [myMigration] } or { scripts: ["_migrations/v1_to_v2.ts"] }.',
      data: {},
    })
  return { all, bridge }
}

function unitTypeFor(u: InMemoryUnit): UnitType {
  const type = u.unitType ?? unitTypeOf(u.unitId)
  if (!type) {
    throw new AasError('USAGE', `${u.unitId} is not a unit path (no memory/ or wiki/ folder, or not a .md file).`, {
      hint: "Use a path such as 'agent/memory/feedback_example.md', or pass unitType.",
      data: { unit: u.unitId },
    })
  }
  return type
}

/**
 * Runs migration scripts over unit texts in memory, as the engine runs them on its scratch
 * tree (same handle, chain, validation and diff), with no vault or store. Throws an
 * `AasError` for what would stop the real run before validation (a chain gap, an
 * unreadable unit, a script that throws or does not bump `schema_version`); validation
 * failures are data, in `validation.failures`.
 * @example
 * import { runMigrationInMemory } from 'aas-migrate/testing'
 * import migration from '../v1_to_v2.ts'
 *
 * const run = await runMigrationInMemory({
 *   migrations: [migration],
 *   units: [{ unitId: 'agent/memory/feedback_example.md', text: '---\nschema_version: 1\nname: Example\n---\nBody.\n' }],
 * })
 * run.units[0]?.after // '---\nschema_version: 2\nname: Example\nprovenance: v1_migrated\n---\nBody.\n'
 * run.validation.failures // [] when every unit is valid at v2
 * run.diff // the unified diff, as --dry-run prints it
 *
 * // A .py script (the atomic-agents form) runs through the same Python bridge as in a run:
 * await runMigrationInMemory({ scripts: ['_migrations/v1_to_v2.py'], units })
 */
export async function runMigrationInMemory(options: RunInMemoryOptions): Promise<InMemoryRunResult> {
  const { all, bridge } = await loadAll(options)
  try {
    return await runLoaded(all, options)
  } finally {
    bridge?.close()
  }
}

async function runLoaded(scripts: LoadedMigration[], options: RunInMemoryOptions): Promise<InMemoryRunResult> {
  const inputs = options.units.map((u) => ({ unitId: u.unitId, unitType: unitTypeFor(u), text: u.text }))
  const versions = inputs.map((u) => {
    const r = readUnitVersion(Buffer.from(u.text, 'utf8'))
    return r.kind === 'versioned' ? r.version : 0
  })
  const from = versions.length > 0 ? Math.min(...versions) : 0
  const target = options.target ?? Math.max(...scripts.map((s) => s.to))
  const plan = planChain({ current: from, target, scripts })
  if (!plan.ok) throw plan.error
  const steps = plan.steps.map((s) => s.script)
  const applied = await applyChain(steps, inputs, { dryRun: options.dryRun ?? false })
  if (!applied.ok) throw applied.errors[0] ?? new AasError('SCRIPT_FAILED', 'The chain failed.', { data: {} })
  const validation = await validateUnits(
    applied.units.map((u) => ({ unitId: u.unitId, unitType: u.unitType, text: u.after })),
    { version: target, scripts: steps },
  )
  const diffFiles: DiffFile[] = applied.units
    .filter((u) => u.after !== u.before)
    .map((u) => ({
      path: u.unitId,
      oldMode: '100644',
      newMode: '100644',
      oldOid: null,
      newOid: null,
      oldContent: Buffer.from(u.before, 'utf8'),
      newContent: Buffer.from(u.after, 'utf8'),
    }))
  return {
    from,
    target,
    steps: steps.map((s) => ({ from: s.from, to: s.to, file: s.file })),
    units: applied.units.map(({ unitId, unitType, before, after, touched, changes }) => ({ unitId, unitType, before, after, touched, changes })),
    validation,
    diff: renderUnifiedDiff(diffFiles),
  }
}
