import path from 'node:path'
import { AasError } from '../errors.js'
import type { UnitFailure, ValidationResult } from '../schema/validate.js'
import { frontmatterSourceOf, type UnitApplyResult } from './apply.js'
import { BridgeDied, PythonBridge } from './python-bridge.js'
import type { PythonRunCheck } from './python-interpreter.js'
import { bridgeFrontmatter } from './python-typed.js'
import { labelOf } from './validators-info.js'

// Validation parity with the Python runner: when the interpreter has atomic-agents
// installed, every unit the chain produced is also checked by that installation's own
// validators (atomic_agents._schema, through the Python bridge's `validate`), so the
// run accepts exactly what the installed agents accept. Their failures join the
// built-in ones as `path: atomic-agents: message`.

// What a worker needs to run them (plain data: it is posted to the worker).
export interface ValidatorsSpec {
  python: string
  agentsRoot: string // unit ids are vault-relative; the validators get the file's name
  label: string // 'atomic-agents 0.2.0 (/venv/lib/python3.11/site-packages/atomic_agents)'
  note: boolean // validate_atomic_note_frontmatter exists
  wiki: boolean // validate_wiki_frontmatter exists
}

export const ATOMIC_FIELD = 'atomic-agents'

// Which validators a run would use (kept in ./validators-info.js, which --status loads
// without the bridge and the front matter editor this module needs).
export { validatorsInfo, type ValidatorsInfo } from './validators-info.js'

export function validatorsSpec(v: NonNullable<PythonRunCheck['validators']>, agentsRoot: string): ValidatorsSpec {
  return { python: v.python, agentsRoot, label: labelOf(v, v.origin), note: v.note, wiki: v.wiki }
}

// A bridge for the validators: the chain's own when it has .py steps, else one started here.
export async function validatorBridge(
  spec: ValidatorsSpec,
  memoryMb: number,
  chainBridge: PythonBridge | null,
): Promise<{ bridge: PythonBridge; own: boolean } | AasError> {
  if (chainBridge) return { bridge: chainBridge, own: false }
  try {
    return { bridge: await PythonBridge.start({ python: spec.python, memoryMb }), own: true }
  } catch (err) {
    if (!(err instanceof BridgeDied)) throw err
    return stopped(spec, err)
  }
}

// The batch's validation with the installed validators' verdicts added.
export async function addAtomicValidation(
  bridge: PythonBridge,
  spec: ValidatorsSpec,
  units: readonly UnitApplyResult[],
  validation: ValidationResult,
): Promise<ValidationResult | AasError> {
  let verdicts: Array<string | null>
  try {
    verdicts = await bridge.validate(
      units.map((u) => ({ id: path.join(spec.agentsRoot, ...u.unitId.split('/')), type: u.unitType, ...bridgeFrontmatter(frontmatterSourceOf(u.after)) })),
    )
  } catch (err) {
    if (!(err instanceof BridgeDied)) throw err
    return stopped(spec, err)
  }
  const byUnit = new Map<string, UnitFailure>(validation.failures.map((f) => [f.unitId, { ...f, issues: [...f.issues] }]))
  verdicts.forEach((message, i) => {
    if (message === null) return
    const u = units[i] as UnitApplyResult
    const f = byUnit.get(u.unitId) ?? { unitId: u.unitId, unitType: u.unitType, issues: [] }
    f.issues.push({ field: ATOMIC_FIELD, message })
    byUnit.set(u.unitId, f)
  })
  const order = new Map(units.map((u, i) => [u.unitId, i]))
  const failures = [...byUnit.values()].sort((a, b) => (order.get(a.unitId) ?? 0) - (order.get(b.unitId) ?? 0))
  const coverage = { memory: spec.note ? 'schema' : validation.coverage.memory, wiki: spec.wiki ? 'schema' : validation.coverage.wiki } as const
  const also = `also checked by ${spec.label}'s own validators${spec.note && spec.wiki ? '' : spec.note ? ' (memory notes only: it has no wiki validator)' : ' (wiki pages only: it has no note validator)'}`
  return { ...validation, ok: failures.length === 0, failures, coverage, mode: 'schema', note: `${validation.note.replace(/\.$/, '')}; ${also}.` }
}

function stopped(spec: ValidatorsSpec, err: BridgeDied): AasError {
  const tail = err.stderrTail.trim().split('\n').pop()?.trim()
  return new AasError(
    'ATOMIC_VALIDATORS_UNUSABLE',
    `The validators of ${spec.label} could not check the migrated units: ${err.message}${tail ? ` (${tail})` : ''}. Nothing was written.`,
    {
      hint: `Run \`${spec.python} -c "import atomic_agents._schema"\` to see what fails; or pass --python PATH (or set AAS_PYTHON) to an interpreter without atomic_agents to validate with the built-in rules only.`,
      data: { python: spec.python, validators: spec.label, reason: 'crash', stderr: err.stderrTail },
    },
  )
}
