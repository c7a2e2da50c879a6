import { parentPort, workerData } from 'node:worker_threads'
import { applyChain, type ApplyResult, type UnitApplyResult, type UnitInput } from './apply.js'
import type { ScriptFile } from './discover.js'
import { loadScripts, type LoadedMigration } from './load.js'
import { AasError } from '../errors.js'
import { addAtomicValidation, validatorBridge, type ValidatorsSpec } from './atomic-validators.js'
import type { PythonBridge } from './python-bridge.js'
import { readingOfText, type UnitReading } from '../vault/inventory.js'
import { PHASE } from './sandbox-phase.js'
import type { PatchedUnitInput } from './sandbox.js'
import type { FileMode } from '../vault/walk.js'

// The worker side of sandbox.ts: answers the pool's commands one at a time, in order:
// `read` (the pre-flight: each unit's reading, no script loaded), `load` (the chain's
// scripts) and `apply` (the chain and its validation over one batch of units). While a
// script runs it records in a shared counter which step and unit it is on, so that the
// parent can name them when it has to terminate this thread.

export interface SandboxWorkerData {
  dryRun: boolean
  validateVersion?: number // also validate every result at this version (in this thread)
  unitsReadable?: boolean // the engine has parsed every unit already (applyChain's unitsReadable)
  progress: SharedArrayBuffer // Int32Array [phase, step, unit in batch, beat]: phase 0 load, 1 apply, 3 validate, 4 read, 2 idle
  python?: string // the interpreter for .py steps (started at load, one per worker)
  memoryMb?: number // also the Python process's limit
  patches?: { color: boolean; renderer: string } // render each changed unit's patch (SandboxOptions.patches)
}

export type SandboxCommand =
  | { type: 'read'; units: UnitInput[] }
  | { type: 'load'; scripts: ScriptFile[]; validators?: ValidatorsSpec | null }
  | { type: 'apply'; units: PatchedUnitInput[]; patches?: boolean }

export type SandboxMessage =
  | { type: 'readings'; readings: UnitReading[] }
  | { type: 'loaded' }
  | { type: 'load-errors'; errors: SerializedError[] }
  | { type: 'result'; result: SerializedApplyResult }
  | { type: 'crash'; reason: string }

export interface SerializedError {
  code: string
  message: string
  hint?: string
  data: Record<string, unknown>
}

export interface SerializedApplyResult extends Omit<ApplyResult, 'errors'> {
  errors: SerializedError[]
}

const input = workerData as SandboxWorkerData
const progress = new Int32Array(input.progress)
let batchIndex = new Map<string, number>()
let chain: { loaded: LoadedMigration[]; wrapped: LoadedMigration[] } | null = null
// The Python interpreter of this worker's .py steps; it ends with the worker (its
// input closes) or at the next load.
let bridge: PythonBridge | null = null
// The installed atomic-agents' validators, when they apply: through `bridge`, or a
// bridge of their own when the chain has no .py step.
let atomic: { spec: ValidatorsSpec; bridge: PythonBridge; own: boolean } | null = null

// A script is running on this unit at this step from now on: publish it, then beat.
function mark(step: number, unitId: string): void {
  Atomics.store(progress, 0, PHASE.apply) // applying again after the previous unit's validation
  Atomics.store(progress, 1, step)
  Atomics.store(progress, 2, batchIndex.get(unitId) ?? -1)
  Atomics.add(progress, 3, 1)
}

function wrap(step: LoadedMigration, index: number): LoadedMigration {
  const m = step.migration
  if (step.python) return { ...step, python: { ...step.python, onUnit: (unitId) => mark(index, unitId) } }
  return {
    ...step,
    migration: {
      ...m,
      appliesTo: (unit) => {
        mark(index, String(unit.unitId))
        return m.appliesTo.call(m, unit)
      },
      migrate: (unit) => {
        mark(index, String(unit.unitId))
        return m.migrate.call(m, unit)
      },
    },
  }
}

// Plain JSON data only: whatever a script put into an error must not reach the parent.
function serialize(err: { code: string; message: string; hint?: string | undefined; data: Record<string, unknown> }): SerializedError {
  let data: Record<string, unknown> = {}
  try {
    data = JSON.parse(JSON.stringify(err.data ?? {})) as Record<string, unknown>
  } catch {
    data = {}
  }
  return { code: String(err.code), message: String(err.message), ...(err.hint ? { hint: String(err.hint) } : {}), data }
}

function post(message: SandboxMessage): void {
  parentPort?.postMessage(message)
}

async function handle(command: SandboxCommand): Promise<void> {
  if (command.type === 'read') {
    Atomics.store(progress, 0, PHASE.read)
    const readings = command.units.map((u, i) => {
      if (i % 256 === 0) Atomics.add(progress, 3, 1)
      return readingOfText(u.text)
    })
    Atomics.store(progress, 0, PHASE.idle)
    return post({ type: 'readings', readings })
  }
  if (command.type === 'load') {
    Atomics.store(progress, 0, PHASE.load)
    bridge?.close()
    const loaded = await loadScripts(command.scripts, {
      ...(input.python ? { python: input.python } : {}),
      ...(input.memoryMb ? { memoryMb: input.memoryMb } : {}),
    })
    bridge = loaded.bridge ?? null
    if (atomic?.own) atomic.bridge.close()
    atomic = null
    if (loaded.errors.length === 0 && command.validators) {
      const got = await validatorBridge(command.validators, input.memoryMb ?? 0, bridge)
      if (got instanceof AasError) loaded.errors.push(got)
      else atomic = { spec: command.validators, ...got }
    }
    Atomics.store(progress, 0, PHASE.idle)
    if (loaded.errors.length > 0) return post({ type: 'load-errors', errors: loaded.errors.map(serialize) })
    chain = { loaded: loaded.loaded, wrapped: loaded.loaded.map(wrap) }
    return post({ type: 'loaded' })
  }
  if (!chain) throw new Error('a batch was sent before the scripts were loaded')
  const units = command.units
  batchIndex = new Map(units.map((u, i) => [u.unitId, i]))
  Atomics.store(progress, 2, -1)
  Atomics.store(progress, 0, PHASE.apply)
  const version = input.validateVersion
  const validate =
    version === undefined
      ? undefined
      : {
          version,
          scripts: chain.loaded,
          onUnit: (unitId: string) => {
            Atomics.store(progress, 0, PHASE.validate)
            Atomics.store(progress, 2, batchIndex.get(unitId) ?? -1)
            Atomics.add(progress, 3, 1)
          },
        }
  const result = await applyChain(chain.wrapped, units, {
    dryRun: input.dryRun,
    unitsReadable: input.unitsReadable === true,
    ...(validate ? { validate } : {}),
  })
  if (atomic && result.ok && result.validation) {
    Atomics.store(progress, 0, PHASE.validate)
    Atomics.store(progress, 2, -1)
    Atomics.add(progress, 3, 1)
    const checked = await addAtomicValidation(atomic.bridge, atomic.spec, result.units, result.validation)
    if (checked instanceof AasError) {
      Atomics.store(progress, 0, PHASE.idle)
      return post({ type: 'result', result: { ok: false, units: [], errors: [serialize(checked)] } })
    }
    result.validation = checked
  }
  const render = input.patches && command.patches && result.ok ? await patchRenderer(input.patches) : null
  Atomics.store(progress, 0, PHASE.idle)
  // The engine keeps the texts it sent: only texts that changed travel back.
  const out = result.units.map((u, i) => ({
    ...u,
    before: '',
    after: u.touched ? u.after : '',
    ...(render && u.touched && u.after !== u.before ? render(units[i] as PatchedUnitInput, u.before, u.after) : {}),
  }))
  post({ type: 'result', result: { ...result, units: out, errors: result.errors.map(serialize) } })
}

// A changed unit's patch, by the renderer the engine named (loaded only by a worker that
// renders), for a unit sent with its blob id and mode.
type RenderUnitPatch = (unit: { unitId: string; oid: string; mode: FileMode }, before: string, after: string, color: boolean) => UnitApplyResult['patch']
async function patchRenderer({ color, renderer }: { color: boolean; renderer: string }) {
  const { renderUnitPatch } = (await import(renderer)) as { renderUnitPatch: RenderUnitPatch }
  return (unit: PatchedUnitInput, before: string, after: string) =>
    typeof unit.oid === 'string' && typeof unit.mode === 'string'
      ? { patch: renderUnitPatch({ unitId: unit.unitId, oid: unit.oid, mode: unit.mode }, before, after, color) }
      : {}
}

let queue: Promise<void> = Promise.resolve()
parentPort?.on('message', (command: SandboxCommand) => {
  queue = queue
    .then(() => handle(command))
    .catch((err: unknown) => {
      let reason: string
      try {
        reason = err instanceof Error ? `${err.name}: ${err.message}` : `a thrown ${typeof err}: ${String(err)}`
      } catch {
        reason = `a thrown ${typeof err} that cannot be described`
      }
      post({ type: 'crash', reason })
    })
})
