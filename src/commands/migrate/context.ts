import { type AasError, isAasError } from '../../errors.js'
import type { Store } from '../../git/store.js'
import type { SandboxOptions } from '../../migrations/sandbox.js'
import type { UnitType } from '../../vault/rules.js'
import type { FileMode } from '../../vault/walk.js'
import type { EngineEvent, WriteSession } from '../session.js'

// What every phase of a run takes: the normalised request (src/api.ts resolves the
// vault and opens its store) and the run's shared machinery.

export interface MigrateInput {
  store: Store
  runId: string
  target: number
  dryRun: boolean
  commit: boolean // also record the migration as one commit on the current branch
  env: NodeJS.ProcessEnv
  lockTimeoutMs: number
  now: () => Date
  onEvent?: (event: EngineEvent) => void
  python?: string | undefined // --python: the interpreter for .py scripts (else $AAS_PYTHON, $VIRTUAL_ENV/bin/python, python3)
  patches?: { color: boolean } | undefined // a dry run: the changed files' patches, rendered by the chain (MigrateOptions.patches)
}

export interface RunContext {
  root: string
  store: Store
  input: MigrateInput
  session: WriteSession
  limits: SandboxOptions // for every pool of the run's workers
  budget: number // unit bytes held in memory between phases (bufferBytesFor), set once the pre-flight's scan knows the units
  tick: (units: number) => void // garbage collected as the run goes: see transaction/collect.ts
}

// What a phase gives the next one, or why the run stops there.
export type PhaseResult<T> = { ok: true; value: T } | { ok: false; errors: AasError[] }

// A phase whose expected failures are thrown (an AasError) as a PhaseResult; anything
// else is a bug and propagates (the session turns it into INTERNAL).
export async function guarded<T>(phase: () => Promise<T>): Promise<PhaseResult<T>> {
  try {
    return { ok: true, value: await phase() }
  } catch (err) {
    if (isAasError(err)) return { ok: false, errors: [err] }
    throw err
  }
}

// A unit of the chain's input: path, blob id and mode, as the pre-flight or the snapshot has it.
export interface ChainUnit {
  path: string
  unitType: UnitType
  oid: string
  mode: FileMode
}

// Unit bytes held in memory between phases: the pre-flight's reads (for the snapshot and
// the chain) and the chain's results (for the fast-forward and the dry-run diff) each up
// to this much; beyond it they are read again, from the vault (checked against the blob
// id) or from the store. The chain also waits while its new bytes not yet taken by the
// result commit's git exceed it (chain.ts, ChangeQueue). A run's memory then does not
// grow with the vault's bytes.
// AAS_BUFFER_MB sets it. By default it depends on the vault's size: the rest of a run's
// memory grows by about 3 KB per unit (scan entries, readings, diff entries, the
// workers' batches), so the buffer gives up 0.6 MiB per 1,000 units, from 32 MiB (all of
// a 10,000-unit vault of 2.4 KB notes, none read back) down to 8 MiB (from 50,000 units,
// where a run stays under 300 MB). docs/performance.md has the measurements.
export const MAX_BUFFER_MB = 32
export const MIN_BUFFER_MB = 8

export function bufferBytesFor(env: NodeJS.ProcessEnv, units: number): number {
  const v = env.AAS_BUFFER_MB?.trim()
  if (v !== undefined && /^\d+$/.test(v)) return Number(v) * 1024 * 1024
  const mb = Math.min(MAX_BUFFER_MB, Math.max(MIN_BUFFER_MB, 38 - (0.6 * units) / 1000))
  return Math.round(mb * 1024 * 1024)
}
