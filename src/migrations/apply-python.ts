import path from 'node:path'
import { AasError, isAasError } from '../errors.js'
import type { UnitText } from '../vault/frontmatter.js'
import type { UnitType } from '../vault/rules.js'
import type { StepStatus } from './apply.js'
import type { LoadedMigration } from './load.js'
import { BridgeDied, type BridgeOutcome } from './python-bridge.js'
import { BadBridgeValue, fromBridgeValue, setKey } from './python-values.js'
import { bridgeFrontmatter } from './python-typed.js'

// One .py step over a batch of units: their front matter goes to the Python bridge in
// one request, and what each script changed (keys removed, keys set) comes back and is
// written with the minimal-diff editor, so unchanged keys keep their bytes.

export interface PythonUnitState {
  input: { unitId: string; unitType: UnitType }
  text: UnitText
}

export interface PythonStepOutcome {
  status: StepStatus
  touched: boolean // the unit's text is this step's output (a truthy return, or writes kept)
  changes: string[]
  error: AasError | null
}

// A failure that ends the whole run (the interpreter died): no step failed.
export class PythonStepFatal extends Error {
  constructor(readonly error: AasError) {
    super(error.message)
  }
}

export interface PythonRequestUnit {
  unitId: string
  unitType: UnitType
  fm: string // the front matter's YAML text as the step's input has it
}

// Sends one .py step's units to the bridge. Resolves with each unit's outcome in order,
// or rejects with PythonStepFatal when the interpreter dies. Several may be in flight
// (the bridge answers in order), so the next units can be sent before these are used;
// a request never awaited does not leave an unhandled rejection.
export function requestPythonStep(step: LoadedMigration, units: readonly PythonRequestUnit[], dryRun: boolean): Promise<BridgeOutcome[]> {
  const py = step.python
  if (!py) throw new Error(`${step.file} is not a Python step`)
  let current = 0
  const request = py.bridge
    .run(
      py.step,
      dryRun,
      units.map((u) => ({ id: path.join(py.agentsRoot, ...u.unitId.split('/')), type: u.unitType, ...bridgeFrontmatter(u.fm) })),
      (i) => {
        current = i
        const u = units[i]
        if (u) py.onUnit?.(u.unitId)
      },
    )
    .catch((err: unknown) => {
      if (!(err instanceof BridgeDied)) throw err
      const unitId = units[current]?.unitId ?? null
      const tail = err.stderrTail.trim().split('\n').pop()?.trim()
      throw new PythonStepFatal(
        new AasError(
          'SCRIPT_FAILED',
          `${step.file}${unitId ? ` on ${unitId}` : ''} (step v${step.from} -> v${step.to}) stopped the Python interpreter: ${err.message}${tail ? ` (${tail})` : ''}. Nothing was written.`,
          {
            hint: `Run the script on that unit alone to see why the interpreter stopped (a crash in a C extension, os._exit(), or the system killing it for memory); nothing was written.`,
            data: { script: step.file, unit: unitId, step: `v${step.from} -> v${step.to}`, reason: 'crash', stderr: err.stderrTail },
          },
        ),
      )
    })
  request.catch(() => undefined)
  return request
}

// What one unit's outcome does to it: the changed keys written with the minimal-diff
// editor, or the unit's error.
export function applyPythonOutcome(step: LoadedMigration, state: PythonUnitState, outcome: BridgeOutcome): PythonStepOutcome {
  return applyOutcome(step, state, outcome, { script: step.file, unit: state.input.unitId, step: `v${step.from} -> v${step.to}` })
}

function applyOutcome(
  step: LoadedMigration,
  state: PythonUnitState,
  outcome: BridgeOutcome,
  where: { script: string; unit: string; step: string },
): PythonStepOutcome {
  const unitId = state.input.unitId
  const failed = (error: AasError): PythonStepOutcome => ({ status: 'skipped', touched: false, changes: [], error })
  if ('error' in outcome) {
    const f = outcome.error
    if (f.phase === 'parse') {
      const line = f.line === null ? null : f.line + 1 // +1: the opening --- line
      const at = line === null ? '' : `:${line}:${f.column ?? 1}`
      return failed(
        new AasError('UNIT_UNREADABLE', `${unitId}${at}: front matter does not parse under PyYAML, which ${step.file} reads it with: ${f.message}.`, {
          hint: `Fix the YAML front matter of ${unitId}${line === null ? '' : ` at line ${line}`} so that both YAML 1.2 and PyYAML read it, then run again; nothing was written.`,
          data: { ...where, line, column: f.column ?? null, message: f.message },
        }),
      )
    }
    const at = f.line ? ` (${step.file}:${f.line})` : ''
    return failed(
      new AasError('SCRIPT_FAILED', `${step.file} ${f.phase}() raised on ${unitId} (step ${where.step}): ${f.message}${at}`, {
        hint: f.memory
          ? `Fix the allocation in ${step.file}; if it really needs more, raise AAS_SCRIPT_MEMORY_MB. Nothing was written.`
          : `Fix ${step.file} for this unit (or make applies_to() return False for it), then run again; nothing was written.`,
        data: { ...where, phase: f.phase, exception: f.type, line: f.line, traceback: f.traceback, ...(f.memory ? { reason: 'memory' } : {}) },
      }),
    )
  }
  if ('invalid' in outcome) {
    const { key, path: at, what } = outcome.invalid
    return failed(
      new AasError('UNIT_WRITE_INVALID', `${step.file} wrote an invalid value to ${unitId}: ${what} at ${at}, which front matter cannot store.`, {
        hint: `Write only str, int, float, bool, None, dates, datetimes, lists and dicts with string keys (a set becomes a sorted list, e.g. sorted(tags)). (in ${step.file})`,
        data: { ...where, field: at, key, what },
      }),
    )
  }
  if (!outcome.applies) return { status: 'not-applicable', touched: false, changes: [], error: null }
  // The Python runner writes at write_frontmatter() and keeps the write whatever migrate()
  // returns; a falsy return only counts the unit as skipped. So do we.
  if (outcome.wrote && (outcome.removed.length > 0 || outcome.set.length > 0)) {
    const next: Record<string, unknown> = { ...state.text.peekFrontmatter() }
    for (const key of outcome.removed) delete next[key]
    for (const [key, value] of outcome.set) {
      try {
        setKey(next, key, fromBridgeValue(value))
      } catch (err) {
        if (!(err instanceof BadBridgeValue)) throw err
        return failed(
          new AasError('UNIT_WRITE_INVALID', `${step.file} wrote an invalid value to ${unitId}: ${err.message} at ${key}.`, {
            hint: `Write plain values to ${key}. (in ${step.file})`,
            data: { ...where, field: key, key },
          }),
        )
      }
    }
    try {
      state.text.writeFrontmatter(next)
      state.text.settle()
    } catch (err) {
      if (!isAasError(err, 'UNIT_WRITE_INVALID')) throw err
      Object.assign(err.data, where)
      return failed(err)
    }
  }
  const status: StepStatus = outcome.returned ? 'touched' : 'skipped'
  const touched = outcome.returned || (outcome.wrote && (outcome.removed.length > 0 || outcome.set.length > 0))
  return { status, touched, changes: outcome.changes, error: null }
}
