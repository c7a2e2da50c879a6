import { AasError, isAasError } from '../errors.js'
import { makeValidator, type ValidateOptions, type ValidationResult } from '../schema/validate.js'
import { parseUnitText, type UnitText } from '../vault/frontmatter.js'
import { splitUnitText } from '../vault/frontmatter-split.js'
import type { UnitType } from '../vault/rules.js'
import type { MigrateReturn } from './define.js'
import type { LoadedMigration } from './load.js'
import { applyPythonOutcome, PythonStepFatal, requestPythonStep } from './apply-python.js'
import type { BridgeOutcome } from './python-bridge.js'
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
  // A changed unit's patch, from a chain asked for patches (SandboxOptions.patches): the
  // blob id of `after` it names, checked by the engine against its own.
  patch?: { text: string; color: boolean; newOid: string }
}

export interface ApplyResult {
  ok: boolean
  units: UnitApplyResult[] // empty when a unit is unreadable (no script ran)
  errors: AasError[] // UNIT_UNREADABLE, SCRIPT_FAILED, SCRIPT_NO_BUMP, UNIT_WRITE_INVALID, CHAIN_GAP
  failedStep?: { file: string; from: number; to: number } // the earliest step that failed; no later step's errors are reported
  validation?: ValidationResult // with options.validate, when every step ran
}

export interface ApplyOptions {
  dryRun?: boolean
  // Validate every unit's result too, from the documents the chain already parsed
  // (no second parse of each text).
  validate?: ValidateOptions
  // Every unit is known to parse (the engine's pre-flight read them all): skip the pass
  // that otherwise parses every unit before any script runs, so that no script runs
  // on a vault with an unreadable unit.
  unitsReadable?: boolean
}

interface UnitState {
  input: UnitInput
  text: UnitText
  current: string // the serialised text after the last touched step
  touched: boolean
  changes: string[]
  steps: UnitStepResult[]
}

// Unit by unit: each unit is parsed, taken through every step, settled and (with
// options.validate) validated before the next is parsed, so only one unit's parsed
// document is alive at a time (a chain over 50,000 units must not hold 50,000 YAML
// documents). Each step sees the previous step's output exactly as it would be written.
// After a failure at step k, the remaining units run steps up to k only: the errors
// reported are every failure of the earliest failing step, and no later step's.
export async function applyChain(
  steps: readonly LoadedMigration[],
  units: readonly UnitInput[],
  { dryRun = false, validate, unitsReadable = false }: ApplyOptions = {},
): Promise<ApplyResult> {
  const chainError = checkContiguous(steps)
  if (chainError) return { ok: false, units: [], errors: [chainError] }
  if (!unitsReadable) {
    const unreadable = units.flatMap((u) => {
      const parsed = parseUnitText(u.text)
      return parsed.ok ? [] : [unreadableError(u.unitId, parsed.error)]
    })
    if (unreadable.length > 0) return { ok: false, units: [], errors: unreadable }
  }

  const validator = validate ? await makeValidator(validate) : null
  if (steps.some((s) => s.python)) return applyStaged(steps, units, dryRun, validator)

  const results: UnitApplyResult[] = []
  const unreadable: AasError[] = []
  const errorsByStep = new Map<number, AasError[]>()
  let lastStep = steps.length - 1 // lowers to the earliest step that failed
  for (const input of units) {
    const parsed = parseUnitText(input.text, { deferReadBack: true })
    if (!parsed.ok) {
      unreadable.push(unreadableError(input.unitId, parsed.error))
      continue
    }
    if (unreadable.length > 0) continue // no script runs on a vault with unreadable units
    const state: UnitState = { input, text: parsed.unit, current: input.text, touched: false, changes: [], steps: [] }
    let failed = false
    for (let k = 0; k <= lastStep; k++) {
      const step = steps[k] as LoadedMigration
      const error = await runStep(step, state, dryRun)
      if (!error) continue
      errorsByStep.set(k, [...(errorsByStep.get(k) ?? []), error])
      lastStep = k
      failed = true
      break
    }
    const result = toResult(state)
    results.push(result)
    if (!failed && errorsByStep.size === 0 && validator)
      await validator.check({ unitId: input.unitId, unitType: input.unitType, text: result.after, parsed: state.text })
  }
  if (unreadable.length > 0) return { ok: false, units: [], errors: unreadable }
  if (errorsByStep.size > 0) {
    const k = Math.min(...errorsByStep.keys())
    const step = steps[k] as LoadedMigration
    return { ok: false, units: results, errors: errorsByStep.get(k) as AasError[], failedStep: { file: step.file, from: step.from, to: step.to } }
  }
  return validator ? { ok: true, units: results, errors: [], validation: validator.finish(results.length) } : { ok: true, units: results, errors: [] }
}

// A chain with .py steps runs step by step over chunks of a batch: a .py step sends a
// chunk's units to the Python bridge in one request, and the next chunk's first-step
// request is sent before this chunk is worked on, so the interpreter parses while this
// thread edits. Chunks keep few parsed documents alive at once. The errors are those of
// the unit-by-unit order: every failure of the earliest failing step (after a failure at
// step k, later chunks run steps up to k only), and validation only when every step ran.
export const PYTHON_CHUNK_UNITS = 32

// (Called once every unit is known to parse: applyChain checked, or the engine did.)
async function applyStaged(
  steps: readonly LoadedMigration[],
  units: readonly UnitInput[],
  dryRun: boolean,
  validator: Awaited<ReturnType<typeof makeValidator>> | null,
): Promise<ApplyResult> {
  const first = steps[0] as LoadedMigration
  // The first step's request for a chunk: its input is the units' own text.
  const prefetch = (chunk: readonly UnitInput[]): Promise<BridgeOutcome[]> | null =>
    first.python
      ? requestPythonStep(
          first,
          chunk.map((u) => ({ unitId: u.unitId, unitType: u.unitType, fm: frontmatterSourceOf(u.text) })),
          dryRun,
        )
      : null
  const results: UnitApplyResult[] = []
  const errorsByStep = new Map<number, AasError[]>()
  let lastStep = steps.length - 1 // lowers to the earliest step that failed
  const chunks: UnitInput[][] = []
  for (let i = 0; i < units.length; i += PYTHON_CHUNK_UNITS) chunks.push(units.slice(i, i + PYTHON_CHUNK_UNITS))
  let next = chunks[0] ? prefetch(chunks[0]) : null
  for (let c = 0; c < chunks.length; c++) {
    const chunk = chunks[c] as UnitInput[]
    const firstOutcomes = next
    next = chunks[c + 1] ? prefetch(chunks[c + 1] as UnitInput[]) : null
    const states: UnitState[] = []
    const unreadable: AasError[] = []
    for (const input of chunk) {
      const parsed = parseUnitText(input.text, { deferReadBack: true })
      if (!parsed.ok) unreadable.push(unreadableError(input.unitId, parsed.error))
      else states.push({ input, text: parsed.unit, current: input.text, touched: false, changes: [], steps: [] })
    }
    if (unreadable.length > 0) return { ok: false, units: [], errors: unreadable }
    const failed = new Set<UnitState>()
    for (let k = 0; k <= lastStep; k++) {
      const step = steps[k] as LoadedMigration
      const live = states.filter((s) => !failed.has(s))
      const errors: Array<[UnitState, AasError]> = []
      if (step.python) {
        let outcomes: BridgeOutcome[]
        try {
          outcomes = await (k === 0 && firstOutcomes
            ? firstOutcomes
            : requestPythonStep(
                step,
                live.map((s) => ({ unitId: s.input.unitId, unitType: s.input.unitType, fm: s.text.frontmatterSource })),
                dryRun,
              ))
        } catch (err) {
          if (err instanceof PythonStepFatal) return { ok: false, units: [], errors: [err.error] }
          throw err
        }
        live.forEach((state, i) => {
          const o = applyPythonOutcome(step, state, outcomes[i] as BridgeOutcome)
          if (o.error) return void errors.push([state, o.error])
          if (o.touched) {
            state.current = state.text.toString()
            state.touched = true
          }
          state.changes.push(...o.changes)
          state.steps.push({ file: step.file, from: step.from, to: step.to, status: o.status })
          if (o.status === 'not-applicable') return
          const version = state.text.peekFrontmatter().schema_version
          if (version !== step.to) errors.push([state, noBumpError(step, state.input.unitId, version, false)])
        })
      } else {
        for (const state of live) {
          const error = await runStep(step, state, dryRun)
          if (error) errors.push([state, error])
        }
      }
      if (errors.length > 0) {
        errorsByStep.set(k, [...(errorsByStep.get(k) ?? []), ...errors.map(([, e]) => e)])
        for (const [state] of errors) failed.add(state)
        lastStep = k
      }
    }
    for (const state of states) {
      const result = toResult(state)
      results.push(result)
      if (errorsByStep.size === 0 && validator)
        await validator.check({ unitId: state.input.unitId, unitType: state.input.unitType, text: result.after, parsed: state.text })
    }
  }
  if (errorsByStep.size > 0) {
    const k = Math.min(...errorsByStep.keys())
    const step = steps[k] as LoadedMigration
    return { ok: false, units: results, errors: errorsByStep.get(k) as AasError[], failedStep: { file: step.file, from: step.from, to: step.to } }
  }
  return validator ? { ok: true, units: results, errors: [], validation: validator.finish(results.length) } : { ok: true, units: results, errors: [] }
}

// The front matter's YAML text of a unit's text ('' without front matter), as UnitText has it.
export function frontmatterSourceOf(text: string): string {
  const split = splitUnitText(text)
  return split.kind === 'frontmatter' ? split.parts.source : ''
}

function unreadableError(unitId: string, { line, column, message }: { line: number; column: number; message: string }): AasError {
  return new AasError('UNIT_UNREADABLE', `${unitId}:${line}:${column}: front matter does not parse: ${message}.`, {
    hint: `Fix the YAML front matter of ${unitId} at line ${line}, column ${column} (e.g. quote a value containing ': '), then run again.`,
    data: { unit: unitId, line, column, message },
  })
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
  return version === step.to ? null : noBumpError(step, unitId, version, !returned)
}

// applies_to/appliesTo accepted the unit, and it did not reach the step's version.
function noBumpError(step: LoadedMigration, unitId: string, version: unknown, skipped: boolean): AasError {
  const where = { script: step.file, unit: unitId, step: `v${step.from} -> v${step.to}` }
  const [applies, mig] = step.python ? ['applies_to()', 'migrate()'] : ['appliesTo()', 'migrate()']
  return new AasError(
    'SCRIPT_NO_BUMP',
    `${step.file} applies to ${unitId} but left schema_version ${JSON.stringify(version) ?? 'missing'}; it must be ${step.to} after ${mig}${skipped ? ' (migrate returned a falsy value, so the unit was skipped and its writes discarded)' : ''}.`,
    {
      hint: skipped
        ? `In ${step.file}, return a truthy value such as { changes: [...] } from migrate() after setting schema_version to ${step.to}, or make appliesTo() return false for this unit.`
        : step.python
          ? `In ${step.file}, set meta["schema_version"] = ${step.to} and call unit.write_frontmatter(meta) in migrate() for every unit ${applies} accepts, or make ${applies} return False for it.`
          : `In ${step.file}, set schema_version = ${step.to} in migrate() for every unit appliesTo() accepts, or make appliesTo() return false for it.`,
      data: { ...where, found: version ?? null, expected: step.to, returned: skipped ? 'falsy' : 'truthy' },
    },
  )
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
