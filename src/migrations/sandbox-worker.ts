import { parentPort, workerData } from 'node:worker_threads'
import { applyChain, type ApplyResult, type UnitInput } from './apply.js'
import type { ScriptFile } from './discover.js'
import { loadScripts, type LoadedMigration } from './load.js'
import type { MigratableUnit } from './define.js'
import { readingOfText, type UnitReading } from '../vault/inventory.js'

// The worker side of sandbox.ts: loads the chain's scripts and runs applyChain inside
// this thread, recording in a shared counter which step and unit a script is running,
// so the parent can name them when it has to terminate this thread.

export interface SandboxWorkerData {
  scripts: ScriptFile[]
  units: UnitInput[]
  dryRun: boolean
  validateVersion?: number // also validate every result at this version (in this thread)
  unitsReadable?: boolean // the engine has parsed every unit already (applyChain's unitsReadable)
  preflight?: boolean // first report every unit's reading, then wait for a 'run' command with the scripts
  progress: SharedArrayBuffer // Int32Array [phase, step, unit, beat]: phase 0 load, 1 apply, 3 validate, 2 done
}

export type SandboxMessage =
  | { type: 'readings'; readings: UnitReading[] }
  | { type: 'result'; result: SerializedApplyResult }
  | { type: 'load-errors'; errors: SerializedError[] }
  | { type: 'crash'; reason: string }

export type SandboxCommand = { type: 'run'; scripts: ScriptFile[] }

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
const unitIndex = new Map(input.units.map((u, i) => [u.unitId, i]))

// A script is running on this unit at this step from now on: publish it, then beat.
function mark(step: number, unit: MigratableUnit): void {
  Atomics.store(progress, 0, 1) // applying again after the previous unit's validation
  Atomics.store(progress, 1, step)
  Atomics.store(progress, 2, unitIndex.get(String(unit.unitId)) ?? -1)
  Atomics.add(progress, 3, 1)
}

function wrap(step: LoadedMigration, index: number): LoadedMigration {
  const m = step.migration
  return {
    ...step,
    migration: {
      ...m,
      appliesTo: (unit) => {
        mark(index, unit)
        return m.appliesTo.call(m, unit)
      },
      migrate: (unit) => {
        mark(index, unit)
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

// The pre-flight: every unit's reading, before any script is loaded into this thread.
async function preflight(): Promise<ScriptFile[]> {
  const readings = input.units.map((u, i) => {
    if (i % 256 === 0) Atomics.add(progress, 3, 1)
    return readingOfText(u.text)
  })
  const command = new Promise<SandboxCommand>((resolve) => parentPort?.once('message', resolve))
  parentPort?.postMessage({ type: 'readings', readings } satisfies SandboxMessage)
  return (await command).scripts
}

async function main(): Promise<void> {
  const scripts = input.preflight ? await preflight() : input.scripts
  const loaded = await loadScripts(scripts)
  if (loaded.errors.length > 0) {
    parentPort?.postMessage({ type: 'load-errors', errors: loaded.errors.map(serialize) } satisfies SandboxMessage)
    return
  }
  Atomics.store(progress, 0, 1)
  const version = input.validateVersion
  const validate =
    version === undefined
      ? undefined
      : {
          version,
          scripts: loaded.loaded,
          onUnit: (unitId: string) => {
            Atomics.store(progress, 0, 3)
            Atomics.store(progress, 2, unitIndex.get(unitId) ?? -1)
            Atomics.add(progress, 3, 1)
          },
        }
  const result = await applyChain(loaded.loaded.map(wrap), input.units, { dryRun: input.dryRun, unitsReadable: input.unitsReadable === true, ...(validate ? { validate } : {}) })
  Atomics.store(progress, 0, 2)
  // The engine keeps the texts it sent: only texts that changed travel back.
  const units = result.units.map((u) => ({ ...u, before: '', after: u.touched ? u.after : '' }))
  const message: SandboxMessage = { type: 'result', result: { ...result, units, errors: result.errors.map(serialize) } }
  parentPort?.postMessage(message)
}

main().catch((err: unknown) => {
  let reason: string
  try {
    reason = err instanceof Error ? `${err.name}: ${err.message}` : `a thrown ${typeof err}: ${String(err)}`
  } catch {
    reason = `a thrown ${typeof err} that cannot be described`
  }
  parentPort?.postMessage({ type: 'crash', reason } satisfies SandboxMessage)
})
