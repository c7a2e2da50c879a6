import { AasError, isAasError } from '../errors.js'
import { validateUnits, type ValidateOptions, type ValidationResult } from '../schema/validate.js'
import { parseUnitText, type UnitText } from '../vault/frontmatter.js'
import type { UnitType } from '../vault/rules.js'
import type { MigrateReturn } from './define.js'
import type { LoadedMigration } from './load.js'
import { createUnitHandle } from './unit.js'

// Runs a planned chain over in-memory unit texts. No global state and no file
// access: the engine feeds texts in and writes results out, so this can later
// run inside a worker thread.

export interface UnitInput {
  unitId: string // vault-relative POSIX path
  unitType: UnitType
  text: string
}

export type StepStatus = 'touched' | 'skipped' | 'not-applicable'

export interface UnitStepResult {
  file: string
  from: number
  to: number
  status: StepStatus
}

export interface UnitApplyResult {
  unitId: string
  unitType: UnitType
  before: string
  after: string // byte-identical to `before` when no step touched the unit
  touched: boolean
  changes: string[]
  steps: UnitStepResult[]
}

export interface ApplyResult {
  ok: boolean
  units: UnitApplyResult[] // empty when a unit is unreadable (no script ran)
  errors: AasError[] // UNIT_UNREADABLE, SCRIPT_FAILED, SCRIPT_NO_BUMP, UNIT_WRITE_INVALID, CHAIN_GAP
  failedStep?: { file: string; from: number; to: number } // later steps did not run
  validation?: ValidationResult // with options.validate, when every step ran
}

export interface ApplyOptions {
  dryRun?: boolean
  // Validate every unit's result too, from the documents the chain already parsed
  // (no second parse of each text).
  validate?: ValidateOptions
}

interface UnitState {
  input: UnitInput
  text: UnitText
  current: string // the serialised text after the last touched step
  touched: boolean
  changes: string[]
  steps: UnitStepResult[]
}

// Step-major: every unit goes through step N before any unit sees step N+1, so
// v1->v2->v3 sees the previous step's output exactly as it would be written.
export async function applyChain(steps: readonly LoadedMigration[], units: readonly UnitInput[], { dryRun = false, validate }: ApplyOptions = {}): Promise<ApplyResult> {
  const chainError = checkContiguous(steps)
  if (chainError) return { ok: false, units: [], errors: [chainError] }

  const states: UnitState[] = []
  const unreadable: AasError[] = []
  for (const input of units) {
    const parsed = parseUnitText(input.text, { deferReadBack: true })
    if (!parsed.ok) {
      const { line, column, message } = parsed.error
      unreadable.push(
        new AasError('UNIT_UNREADABLE', `${input.unitId}:${line}:${column}: front matter does not parse: ${message}.`, {
          hint: `Fix the YAML front matter of ${input.unitId} at line ${line}, column ${column} (e.g. quote a value containing ': '), then run again.`,
          data: { unit: input.unitId, line, column, message },
        }),
      )
      continue
    }
    states.push({ input, text: parsed.unit, current: input.text, touched: false, changes: [], steps: [] })
  }
  if (unreadable.length > 0) return { ok: false, units: [], errors: unreadable }

  for (const step of steps) {
    const errors: AasError[] = []
    for (const state of states) {
      const error = await runStep(step, state, dryRun)
      if (error) errors.push(error)
    }
    if (errors.length > 0) {
      return { ok: false, units: states.map(toResult), errors, failedStep: { file: step.file, from: step.from, to: step.to } }
    }
  }
  const results = states.map(toResult)
  if (!validate) return { ok: true, units: results, errors: [] }
  const validation = await validateUnits(
    states.map((s, i) => ({ unitId: s.input.unitId, unitType: s.input.unitType, text: (results[i] as UnitApplyResult).after, parsed: s.text })),
    validate,
  )
  return { ok: true, units: results, errors: [], validation }
}

async function runStep(step: LoadedMigration, state: UnitState, dryRun: boolean): Promise<AasError | null> {
  const { unitId, unitType } = state.input
  const where = { script: step.file, unit: unitId, step: `v${step.from} -> v${step.to}` }
  const handle = createUnitHandle({ unitId, unitType, text: state.text, dryRun, script: step.file })
  let applies: boolean
  let returned: MigrateReturn
  try {
    try {
      applies = Boolean(await step.migration.appliesTo(handle.unit))
    } catch (err) {
      return scriptFailed(step, where, 'appliesTo', err)
    }
    if (!applies) {
      state.steps.push({ file: step.file, from: step.from, to: step.to, status: 'not-applicable' })
      return null
    }
    try {
      returned = await step.migration.migrate(handle.unit)
    } catch (err) {
      if (isAasError(err, 'UNIT_WRITE_INVALID')) {
        err.data.step = where.step
        return err
      }
      return scriptFailed(step, where, 'migrate', err)
    }
  } finally {
    handle.close()
  }

  if (returned) {
    try {
      state.text.settle()
    } catch (err) {
      if (!isAasError(err, 'UNIT_WRITE_INVALID')) throw err
      Object.assign(err.data, { script: step.file, unit: unitId, step: where.step })
      return err
    }
    // Values are plain data (the handle refuses anything else), so the edited
    // UnitText reads back exactly what a re-parse of its text would.
    state.current = state.text.toString()
    state.touched = true
    state.changes.push(...changesOf(returned))
  } else if (handle.wrote()) {
    // A falsy return means "skipped": the unit keeps the text it had before this step.
    const restored = parseUnitText(state.current, { deferReadBack: true })
    if (!restored.ok) {
      return new AasError('UNIT_WRITE_INVALID', `${unitId} does not parse after an earlier step: ${restored.error.message}.`, {
        hint: `Check the scripts that ran before ${step.file} on this unit.`,
        data: { ...where, line: restored.error.line, column: restored.error.column },
      })
    }
    state.text = restored.unit
  }
  state.steps.push({ file: step.file, from: step.from, to: step.to, status: returned ? 'touched' : 'skipped' })

  const version = state.text.peekFrontmatter().schema_version
  if (version !== step.to) {
    const skipped = !returned
    return new AasError(
      'SCRIPT_NO_BUMP',
      `${step.file} applies to ${unitId} but left schema_version ${JSON.stringify(version) ?? 'missing'}; it must be ${step.to} after migrate()${skipped ? ' (migrate returned a falsy value, so the unit was skipped and its writes discarded)' : ''}.`,
      {
        hint: skipped
          ? `In ${step.file}, return a truthy value such as { changes: [...] } from migrate() after setting schema_version to ${step.to}, or make appliesTo() return false for this unit.`
          : `In ${step.file}, set schema_version = ${step.to} in migrate() for every unit appliesTo() accepts, or make appliesTo() return false for it.`,
        data: { ...where, found: version ?? null, expected: step.to, returned: skipped ? 'falsy' : 'truthy' },
      },
    )
  }
  return null
}

function scriptFailed(step: LoadedMigration, where: { script: string; unit: string; step: string }, phase: 'appliesTo' | 'migrate', err: unknown): AasError {
  const reason = err instanceof Error ? err.message : String(err)
  return new AasError('SCRIPT_FAILED', `${step.file} ${phase}() threw on ${where.unit} (step ${where.step}): ${reason}`, {
    hint: `Fix ${step.file} for this unit (or make appliesTo() return false for it), then run again; nothing was written.`,
    data: { ...where, phase },
    cause: err,
  })
}

function changesOf(returned: MigrateReturn): string[] {
  if (typeof returned !== 'object' || returned === null) return []
  const changes = (returned as { changes?: unknown }).changes
  return Array.isArray(changes) ? changes.map((c) => String(c)) : []
}

function checkContiguous(steps: readonly LoadedMigration[]): AasError | null {
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!
    const prev = steps[i - 1]
    if (step.to !== step.from + 1 || (prev && prev.to !== step.from)) {
      return new AasError('CHAIN_GAP', `The chain given to applyChain is not contiguous at ${step.file} (v${step.from} -> v${step.to}).`, {
        hint: 'Pass the steps of a plan from planChain(), in order.',
        data: { file: step.file, from: step.from, to: step.to },
      })
    }
  }
  return null
}

function toResult(state: UnitState): UnitApplyResult {
  const { unitId, unitType, text: before } = state.input
  return { unitId, unitType, before, after: state.touched ? state.current : before, touched: state.touched, changes: state.changes, steps: state.steps }
}
