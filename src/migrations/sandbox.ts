import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { AasError, type AasErrorCode } from '../errors.js'
import { startModuleWorker } from '../module-worker.js'
import type { UnitFailure, ValidationIssue, ValidationMode, ValidationResult } from '../schema/validate.js'
import type { UnitReading } from '../vault/inventory.js'
import type { UnitType } from '../vault/rules.js'
import type { FileMode } from '../vault/walk.js'
import type { ApplyResult, UnitApplyResult, UnitInput, UnitStepResult } from './apply.js'
import type { ValidatorsSpec } from './atomic-validators.js'
import type { ScriptFile } from './discover.js'
import { PHASE } from './sandbox-phase.js'
import type { SandboxCommand, SandboxMessage, SandboxWorkerData, SerializedError } from './sandbox-worker.js'

// Runs a migration chain contained: the scripts are loaded and applied in a
// worker thread (sandbox-worker) that the engine can terminate. A script that
// never returns is stopped after `timeoutMs` on one unit (default 30 s,
// AAS_SCRIPT_TIMEOUT_MS), one that exhausts memory hits the worker's heap limit
// (default 512 MB, AAS_SCRIPT_MEMORY_MB); either fails the run naming the script,
// the unit and the reason. The worker only returns texts: the unit ids, unit types
// and `before` texts of the result are the engine's own, never the worker's, so
// nothing a script does can point a write at another path. (A script can still
// use Node's own fs module directly: scripts are trusted code of the vault owner;
// this contains mistakes, not malice.)

export interface SandboxOptions {
  dryRun?: boolean
  validateVersion?: number // validate every result at this version inside the worker (ApplyResult.validation)
  unitsReadable?: boolean // every unit is known to parse (see applyChain)
  timeoutMs?: number // per unit and step (and for loading the scripts)
  memoryMb?: number // each worker's old-generation heap limit
  workers?: number // how many workers share the units (default: see workerCount)
  signal?: AbortSignal // stops the worker(s): the result is then a failure
  batchUnits?: number // runChainContained: units per batch (default BATCH_UNITS)
  python?: string // the interpreter for .py steps (choosePython), default python3
  // Each unit the chain changes also comes back with its patch (UnitApplyResult.patch),
  // rendered in the worker with this color by the module at the URL `renderer`, whose
  // renderUnitPatch(unit, before, after, color) gives { text, color, newOid } (the engine's
  // is src/diff/unit-patch.ts): given a unit's blob id and mode (PatchedUnitInput), until
  // stopPatches().
  patches?: { color: boolean; renderer: string } | null
}

// A unit as given to apply() when patches are rendered: its blob id and mode name it in
// the patch's header.
export type PatchedUnitInput = UnitInput & { oid?: string; mode?: FileMode }

export const DEFAULT_SCRIPT_TIMEOUT_MS = 30_000
// V8 sizes a heap's first collections from its limit: on 20,000 units, two busy workers
// allowed 2 GB each took about 30 MB more than two allowed 512 MB (128 MB: the same).
export const DEFAULT_SCRIPT_MEMORY_MB = 512
// The young generation, where a batch's short-lived texts are made and collected: 6 MB
// kept each busy worker about 13 MB smaller than 16 MB did, for about 3% more time.
const YOUNG_GENERATION_MB = 6
// Starting a worker and compiling .ts scripts takes seconds on a busy machine: loading gets this on top.
const LOAD_ALLOWANCE_MS = 15_000

// A worker costs its start-up and a second load of the scripts: below this many units
// each, one worker does the whole chain sooner.
export const MIN_UNITS_PER_WORKER = 2000
const MAX_WORKERS = 4
// Units travel to the workers in batches of this many, at most QUEUED_PER_WORKER batches
// queued per worker: what the chain holds in flight does not grow with the vault.
export const BATCH_UNITS = 256
const QUEUED_PER_WORKER = 2

// Sandbox limits from the environment (AAS_SCRIPT_TIMEOUT_MS, AAS_SCRIPT_MEMORY_MB,
// AAS_SCRIPT_WORKERS), else defaults.
export function sandboxLimitsFromEnv(env: NodeJS.ProcessEnv): { timeoutMs: number; memoryMb: number; workers?: number } {
  const num = (v: string | undefined, d: number): number => (v !== undefined && /^\d+$/.test(v.trim()) && Number(v) > 0 ? Number(v) : d)
  const workers = num(env.AAS_SCRIPT_WORKERS, 0)
  return {
    timeoutMs: num(env.AAS_SCRIPT_TIMEOUT_MS, DEFAULT_SCRIPT_TIMEOUT_MS),
    memoryMb: num(env.AAS_SCRIPT_MEMORY_MB, DEFAULT_SCRIPT_MEMORY_MB),
    ...(workers > 0 ? { workers } : {}),
  }
}

// Workers for a chain over `units` units: one per available core (at most MAX_WORKERS),
// each with at least MIN_UNITS_PER_WORKER units; `requested` (AAS_SCRIPT_WORKERS) wins.
export function workerCount(units: number, requested?: number): number {
  const n = requested ?? Math.min(availableParallelism(), MAX_WORKERS, Math.floor(units / MIN_UNITS_PER_WORKER))
  return Math.max(1, Math.min(n, Math.max(units, 1)))
}

// The worker entry (module-worker.ts). What a script prints (console.log) goes to our
// stderr, as a .py script's print() does: stdout carries the patch or the --json document.
function startWorker(data: SandboxWorkerData, memoryMb: number): Worker {
  const resourceLimits = { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: YOUNG_GENERATION_MB }
  const worker = startModuleWorker(import.meta.url, 'sandbox-worker', { workerData: data, resourceLimits, stdout: true })
  worker.stdout.on('data', (chunk: Buffer) => process.stderr.write(chunk))
  return worker
}

type Outcome = { message: SandboxMessage } | { failure: AasError }

interface Pending {
  command: SandboxCommand['type']
  units: readonly UnitInput[]
  resolve: (outcome: Outcome) => void
}

interface Slot {
  worker: Worker
  view: Int32Array // the worker's progress: [phase, step, unit in batch, beat]
  queue: Pending[] // sent, not yet answered, in order
  answered: number
  lastBeat: number
  lastChange: number
}

type Where = { script: string; unit: string | null; step: string | null; phase: 'load' | 'apply' | 'read' }

// Workers that keep the chain's scripts loaded and take units in batches: the pre-flight
// parse (`read`, before any script is loaded), then `load` once and `apply` per batch.
// A worker that hangs (no progress within timeoutMs), exhausts its heap, crashes or
// exits fails its batch naming the script and unit, and stops the whole pool: every
// other batch in flight or sent later gets an 'aborted' failure.
export class ChainPool {
  readonly size: number
  private readonly slots: Slot[]
  private readonly timeoutMs: number
  private readonly memoryMb: number
  private readonly validateVersion: number | undefined
  private scripts: readonly ScriptFile[] = []
  private stopped = false
  private cancelledByCaller = false
  private readonly watchdog: NodeJS.Timeout
  private readonly signal: AbortSignal | undefined
  private readonly onAbort = (): void => this.cancel()
  private waiters: Array<() => void> = []
  private active: number // how many workers take batches (see use())
  private patching: boolean // batches sent from now on ask for their patches

  constructor(
    workers: number,
    {
      dryRun = false,
      validateVersion,
      unitsReadable = false,
      timeoutMs = DEFAULT_SCRIPT_TIMEOUT_MS,
      memoryMb = DEFAULT_SCRIPT_MEMORY_MB,
      signal,
      python,
      patches,
    }: SandboxOptions = {},
  ) {
    this.size = Math.max(1, workers)
    this.active = this.size
    this.patching = Boolean(patches)
    this.timeoutMs = timeoutMs
    this.memoryMb = memoryMb
    this.validateVersion = validateVersion
    this.signal = signal
    this.slots = Array.from({ length: this.size }, () => {
      const progress = new SharedArrayBuffer(16)
      const view = new Int32Array(progress)
      Atomics.store(view, 0, PHASE.idle)
      Atomics.store(view, 2, -1)
      const data: SandboxWorkerData = {
        dryRun,
        unitsReadable,
        ...(validateVersion === undefined ? {} : { validateVersion }),
        progress,
        memoryMb,
        ...(python ? { python } : {}),
        ...(patches ? { patches } : {}),
      }
      const slot: Slot = { worker: startWorker(data, memoryMb), view, queue: [], answered: 0, lastBeat: -1, lastChange: Date.now() }
      this.attach(slot)
      return slot
    })
    this.watchdog = setInterval(() => this.check(), Math.max(10, Math.min(250, Math.floor(timeoutMs / 4))))
    if (signal?.aborted) this.cancel()
    else signal?.addEventListener('abort', this.onAbort, { once: true })
  }

  // Batches sent and not yet answered, over all workers.
  get queued(): number {
    return this.slots.reduce((n, s) => n + s.queue.length, 0)
  }

  // True once the pool stopped (a failure, cancel() or close()): nothing more runs.
  get halted(): boolean {
    return this.stopped
  }

  // True once the caller (or the signal) stopped the pool.
  get cancelled(): boolean {
    return this.cancelledByCaller
  }

  // Batches go only to the first n workers from now on (1..size): the others stay idle,
  // and an idle worker's heap stays small. use(size) gives every worker batches again.
  use(n: number): void {
    this.active = Math.max(1, Math.min(this.size, Math.floor(n)))
    this.wake()
  }

  // Resolves when another batch may be sent without growing what is held in flight.
  async room(): Promise<void> {
    while (!this.stopped && this.activeQueued() >= this.active * QUEUED_PER_WORKER) await new Promise<void>((resolve) => this.waiters.push(resolve))
  }

  // Every unit's reading (the pre-flight parse), in order, or the failure that stopped the pool.
  async read(units: readonly UnitInput[]): Promise<{ ok: true; readings: UnitReading[] } | { ok: false; result: ApplyResult }> {
    const outcome = await this.send(this.pick(), { type: 'read', units: units as UnitInput[] }, units)
    if ('failure' in outcome) return { ok: false, result: { ok: false, units: [], errors: [outcome.failure] } }
    const m = outcome.message
    if (m.type === 'readings' && Array.isArray(m.readings) && m.readings.length === units.length) return { ok: true, readings: m.readings }
    return {
      ok: false,
      result: {
        ok: false,
        units: [],
        errors: [
          containedFailure(
            { script: 'the pre-flight parse', unit: null, step: null, phase: 'read' },
            'reported a malformed reading list',
            'crash',
            this.timeoutMs,
          ),
        ],
      },
    }
  }

  // Loads the chain's scripts into every worker: null when all loaded, else the failure.
  // With validators, every worker also checks its batches with the installed atomic-agents'.
  async load(scripts: readonly ScriptFile[], validators: ValidatorsSpec | null = null): Promise<ApplyResult | null> {
    this.scripts = scripts
    const plain = scripts.map((s) => ({ ...s }))
    const outcomes = await Promise.all(this.slots.map((slot) => this.send(slot, { type: 'load', scripts: plain, validators }, [])))
    const failures = outcomes.flatMap((o) => ('failure' in o ? [o.failure] : []))
    const first = failures.find((f) => f.data.reason !== 'aborted') ?? failures[0]
    if (first) return { ok: false, units: [], errors: [first] }
    for (const o of outcomes) {
      const m = (o as { message: SandboxMessage }).message
      if (m.type === 'load-errors') return checkedResult({ ok: false, units: [], errors: m.errors }, [], scripts)
      if (m.type !== 'loaded') return checkedResult(null, [], scripts)
    }
    return null
  }

  // Batches sent from now on come back without patches (the caller keeps no more of them).
  stopPatches(): void {
    this.patching = false
  }

  // The loaded chain (and the validation) over one batch of units.
  async apply(units: readonly PatchedUnitInput[]): Promise<ApplyResult> {
    const outcome = await this.send(this.pick(), { type: 'apply', units: units as PatchedUnitInput[], patches: this.patching }, units)
    if ('failure' in outcome) return { ok: false, units: [], errors: [outcome.failure] }
    const m = outcome.message
    return checkedResult(m.type === 'result' ? m.result : null, units, this.scripts, this.validateVersion)
  }

  // Stops every worker: whatever is in flight fails as 'aborted'.
  cancel(): void {
    this.cancelledByCaller = true
    this.stop()
  }

  // Stops the workers after a failure that ends the run (see applyBatches).
  abort(): void {
    this.stop()
  }

  async close(): Promise<void> {
    this.stop()
    await Promise.all(this.slots.map((s) => s.worker.terminate().catch(() => undefined)))
  }

  private activeQueued(): number {
    let n = 0
    for (let i = 0; i < this.active; i++) n += (this.slots[i] as Slot).queue.length
    return n
  }

  private pick(): Slot {
    let best = this.slots[0] as Slot
    for (let i = 1; i < this.active; i++) {
      const s = this.slots[i] as Slot
      if (s.queue.length < best.queue.length) best = s
    }
    return best
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  private send(slot: Slot, command: SandboxCommand, units: readonly UnitInput[]): Promise<Outcome> {
    if (this.stopped)
      return Promise.resolve({ failure: containedFailure(this.where(slot), 'was stopped before the chain finished', 'aborted', this.timeoutMs) })
    return new Promise((resolve) => {
      if (slot.queue.length === 0) slot.lastChange = Date.now()
      slot.queue.push({ command: command.type, units, resolve })
      slot.worker.postMessage(command)
    })
  }

  private settle(slot: Slot, outcome: Outcome): void {
    const head = slot.queue.shift()
    slot.lastChange = Date.now()
    head?.resolve(outcome)
    this.wake()
  }

  private attach(slot: Slot): void {
    slot.worker.on('message', (message: SandboxMessage) => {
      slot.answered++
      const head = slot.queue[0]
      if (!head) return
      const expected = { read: ['readings'], load: ['loaded', 'load-errors'], apply: ['result'] }[head.command]
      if (message?.type === 'crash' || !expected.includes(message?.type)) {
        const reason = message?.type === 'crash' ? String(message.reason) : 'an answer out of order'
        return this.fail(slot, containedFailure(this.where(slot), `made the chain fail: ${reason}`, 'crash', this.timeoutMs))
      }
      this.settle(slot, { message })
    })
    slot.worker.on('error', (err: Error & { code?: string }) => {
      const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY'
      this.fail(
        slot,
        containedFailure(
          this.where(slot),
          oom ? `ran out of memory (worker heap limit ${this.memoryMb} MB)` : `crashed the script worker: ${safeText(err)}`,
          oom ? 'memory' : 'crash',
          this.timeoutMs,
        ),
      )
    })
    slot.worker.on('exit', (code) => {
      if (this.stopped) return
      this.fail(
        slot,
        containedFailure(
          this.where(slot),
          `stopped the script worker (exit ${code}) before the chain finished, e.g. a promise that never settles or process.exit()`,
          'exit',
          this.timeoutMs,
        ),
      )
    })
  }

  // The failure of the batch `slot` is running, then every other batch stopped.
  private fail(slot: Slot, failure: AasError): void {
    if (this.stopped) return
    if (slot.queue.length > 0) this.settle(slot, { failure })
    this.stop()
  }

  private stop(): void {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.watchdog)
    this.signal?.removeEventListener('abort', this.onAbort)
    for (const slot of this.slots) {
      while (slot.queue.length > 0)
        this.settle(slot, { failure: containedFailure(this.where(slot), 'was stopped before the chain finished', 'aborted', this.timeoutMs) })
      void slot.worker.terminate().catch(() => undefined)
    }
    for (const w of this.waiters) w()
    this.waiters = []
  }

  private check(): void {
    const now = Date.now()
    for (const slot of this.slots) {
      const beat = Atomics.load(slot.view, 3)
      if (slot.queue.length === 0 || beat !== slot.lastBeat) {
        slot.lastBeat = beat
        slot.lastChange = now
        continue
      }
      // A worker's first answer includes its start-up; loading compiles the scripts.
      const allowance = slot.answered === 0 || slot.queue[0]?.command === 'load' ? LOAD_ALLOWANCE_MS : 0
      if (now - slot.lastChange >= this.timeoutMs + allowance) {
        this.fail(slot, containedFailure(this.where(slot), `did not return within ${this.timeoutMs} ms`, 'timeout', this.timeoutMs))
        return
      }
    }
  }

  // Who was running when the worker had to stop: the step's script and the unit.
  private where(slot: Slot): Where {
    const all = this.scripts.map((x) => x.file).join(', ')
    const head = slot.queue[0]
    if (head?.command === 'read') return { script: 'the pre-flight parse', unit: null, step: null, phase: 'read' }
    const phase = Atomics.load(slot.view, 0)
    const u = head?.units[Atomics.load(slot.view, 2)]
    if (head?.command === 'apply' && phase === PHASE.validate) {
      const v = this.scripts.find((x) => x.to === this.validateVersion)
      return { script: v?.file ?? all, unit: u?.unitId ?? null, step: 'validate', phase: 'apply' }
    }
    const s = this.scripts[Atomics.load(slot.view, 1)]
    if (head?.command !== 'apply' || !s) return { script: all, unit: null, step: null, phase: 'load' }
    return { script: s.file, unit: u?.unitId ?? null, step: `v${s.from} -> v${s.to}`, phase: 'apply' }
  }
}

// The loaded chain over batches of units, at most a few batches in flight per worker:
// onBatch gets each batch's checked result as it arrives (it may empty `result.units`
// to keep nothing), and the results are merged in batch order as if one worker had
// run every unit. A failure that ends the run whatever the other batches find (no
// failing step: unreadable, timeout, crash) stops the pool.
export async function applyBatches(
  pool: ChainPool,
  batches: Iterable<readonly UnitInput[]> | AsyncIterable<readonly UnitInput[]>,
  onBatch?: (units: readonly UnitInput[], result: ApplyResult, index: number) => void | Promise<void>,
): Promise<ApplyResult> {
  const results: ApplyResult[] = []
  const running: Array<Promise<void>> = []
  let sent = 0
  const run = (batch: readonly UnitInput[]): void => {
    const k = sent++
    running.push(
      pool.apply(batch).then(async (r) => {
        if (!r.ok && !r.failedStep) pool.abort()
        results[k] = r
        if (onBatch) await onBatch(batch, r, k)
      }),
    )
  }
  try {
    for await (const batch of batches) {
      await pool.room()
      if (pool.halted) break
      run(batch)
    }
    // No unit at all: one empty batch still gives the validation's summary.
    if (sent === 0) run([])
  } catch (err) {
    pool.abort()
    await Promise.allSettled(running)
    throw err
  }
  const settled = await Promise.allSettled(running)
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (rejected) {
    pool.abort()
    throw rejected.reason
  }
  return mergeResults(results, pool.cancelled)
}

// Consecutive slices of `size` units.
export function* batchesOf<T>(units: readonly T[], size = BATCH_UNITS): Generator<T[]> {
  for (let i = 0; i < units.length; i += size) yield units.slice(i, i + size)
}

// The chain over every unit, in batches shared by parallel workers (each unit is
// migrated by exactly one worker, each worker loads the scripts itself), and the
// results merged back in unit order as if one worker had run them all.
export async function runChainContained(scripts: readonly ScriptFile[], units: readonly UnitInput[], options: SandboxOptions = {}): Promise<ApplyResult> {
  const pool = new ChainPool(workerCount(units.length, options.workers), options)
  try {
    const failed = await pool.load(scripts)
    if (failed) return failed
    return await applyBatches(pool, batchesOf(units, options.batchUnits))
  } finally {
    await pool.close()
  }
}

// Batches' results as one: units and validation failures in order; on failure the errors
// applyChain would have reported over all units: unreadable units first, then a failure
// that stopped a worker (load errors, timeout, crash), then every error of the earliest
// failing step (a batch that failed later ran that step on all its units without error).
// A failed run carries no units: which units a step reached depends on the batching.
function mergeResults(results: ApplyResult[], aborted: boolean): ApplyResult {
  if (results.every((r) => r.ok)) {
    const units = results.flatMap((r) => r.units)
    const validations = results.map((r) => r.validation)
    const first = validations[0]
    if (!first) return { ok: true, units, errors: [] }
    const failures = validations.flatMap((v) => v?.failures ?? [])
    const checked = validations.reduce((n, v) => n + (v?.checked ?? 0), 0)
    return { ok: true, units, errors: [], validation: { ...first, ok: failures.length === 0, checked, failures } }
  }
  const failed = results.filter((r) => !r.ok)
  const unreadable = failed.filter((r) => r.errors.length > 0 && r.errors.every((e) => e.code === 'UNIT_UNREADABLE'))
  if (unreadable.length > 0) return { ok: false, units: [], errors: unreadable.flatMap((r) => r.errors) }
  // Not the stop of a batch stopped because another failed: the failure that stopped it.
  const fatal =
    failed.find((r) => !r.failedStep && !r.errors.some((e) => e.data.reason === 'aborted')) ?? (aborted ? failed.find((r) => !r.failedStep) : undefined)
  if (fatal) return fatal
  const earliest = Math.min(...failed.map((r) => (r.failedStep as { from: number }).from))
  const atEarliest = failed.filter((r) => r.failedStep?.from === earliest)
  return { ok: false, units: [], errors: atEarliest.flatMap((r) => r.errors), failedStep: atEarliest[0]?.failedStep as NonNullable<ApplyResult['failedStep']> }
}

// Trust nothing from the worker but texts and step statuses, checked against the inputs.
function checkedResult(raw: unknown, units: readonly UnitInput[], scripts: readonly ScriptFile[], validateVersion?: number): ApplyResult {
  const bad = (why: string): ApplyResult => ({
    ok: false,
    units: [],
    errors: [
      new AasError(
        'SCRIPT_FAILED',
        `The migration chain (${scripts.map((s) => s.file).join(', ')}) returned a malformed result: ${why}. Nothing was written.`,
        {
          hint: 'Check the scripts for code that changes built-in objects (prototypes, JSON, Array).',
          data: { scripts: scripts.map((s) => s.file), reason: why },
        },
      ),
    ],
  })
  const r = raw as { ok?: unknown; units?: unknown; errors?: unknown; failedStep?: unknown; validation?: unknown } | null
  if (!r || typeof r !== 'object' || !Array.isArray(r.units) || !Array.isArray(r.errors)) return bad('not a result object')
  const errors: AasError[] = []
  for (const e of r.errors as unknown[]) {
    const ok = e !== null && typeof e === 'object' && typeof (e as SerializedError).code === 'string' && typeof (e as SerializedError).message === 'string'
    if (!ok) return bad('an error without a code or message')
    errors.push(revive(e as SerializedError))
  }
  if (r.ok !== true) {
    if (errors.length === 0) return bad('failed without an error')
    const f = r.failedStep as { file?: unknown; from?: unknown; to?: unknown } | undefined
    const step = scripts.find((s) => f && s.file === f.file && s.from === f.from && s.to === f.to)
    return { ok: false, units: [], errors, ...(step ? { failedStep: { file: step.file, from: step.from, to: step.to } } : {}) }
  }
  if (r.units.length !== units.length) return bad(`${r.units.length} units returned for ${units.length} given`)
  const out: UnitApplyResult[] = []
  for (let i = 0; i < units.length; i++) {
    const u = units[i] as UnitInput
    const got = r.units[i] as Partial<UnitApplyResult> | null
    if (!got || got.unitId !== u.unitId) return bad(`unit ${i} is not ${u.unitId}`)
    if (typeof got.after !== 'string') return bad(`no text for ${u.unitId}`)
    const touched = got.touched === true
    const steps = Array.isArray(got.steps)
      ? (got.steps as UnitStepResult[]).map((s) => ({ file: String(s.file), from: Number(s.from), to: Number(s.to), status: s.status }))
      : []
    const changes = Array.isArray(got.changes) ? got.changes.map((c) => String(c)) : []
    const p = got.patch
    const patch =
      touched && p && typeof p === 'object' && typeof p.text === 'string' && typeof p.color === 'boolean' && typeof p.newOid === 'string'
        ? { text: p.text, color: p.color, newOid: p.newOid }
        : null
    out.push({
      unitId: u.unitId,
      unitType: u.unitType,
      before: u.text,
      after: touched ? got.after : u.text,
      touched,
      changes,
      steps,
      ...(patch ? { patch } : {}),
    })
  }
  if (validateVersion === undefined) return { ok: true, units: out, errors: [] }
  const validation = checkedValidation(r.validation, units, validateVersion)
  return validation ? { ok: true, units: out, errors: [], validation } : bad('no well-formed validation result')
}

// The worker's validation result, rebuilt from plain fields and checked against the inputs.
function checkedValidation(raw: unknown, units: readonly UnitInput[], version: number): ValidationResult | null {
  const v = raw as Partial<ValidationResult> | null | undefined
  if (!v || typeof v !== 'object' || !Array.isArray(v.failures) || v.version !== version || v.checked !== units.length || !v.coverage) return null
  const known = new Map(units.map((u) => [u.unitId, u.unitType]))
  const failures: UnitFailure[] = []
  for (const f of v.failures as unknown[]) {
    const ff = f as Partial<UnitFailure> | null
    if (!ff || typeof ff.unitId !== 'string' || !known.has(ff.unitId) || !Array.isArray(ff.issues) || ff.issues.length === 0) return null
    const issues = (ff.issues as unknown[]).map((i) => ({
      field: String((i as ValidationIssue | null)?.field),
      message: String((i as ValidationIssue | null)?.message),
    }))
    failures.push({ unitId: ff.unitId, unitType: known.get(ff.unitId) as UnitType, issues })
  }
  const modeOf = (m: unknown): ValidationMode => (m === 'schema' ? 'schema' : 'structure-only')
  const coverage = { memory: modeOf(v.coverage.memory), wiki: modeOf(v.coverage.wiki) }
  return { ok: failures.length === 0, version, checked: units.length, mode: modeOf(v.mode), coverage, note: String(v.note), failures }
}

const KNOWN = new Set<string>([
  'SCRIPT_LOAD_FAILED',
  'SCRIPT_INVALID',
  'SCRIPT_FAILED',
  'SCRIPT_NO_BUMP',
  'UNIT_UNREADABLE',
  'UNIT_WRITE_INVALID',
  'CHAIN_GAP',
  'PYTHON_UNAVAILABLE',
  'ATOMIC_VALIDATORS_UNUSABLE',
])

function revive(e: SerializedError): AasError {
  const code = (KNOWN.has(e.code) ? e.code : 'SCRIPT_FAILED') as AasErrorCode
  return new AasError(code, String(e.message), { ...(e.hint ? { hint: e.hint } : {}), data: e.data ?? {} })
}

function containedFailure(at: Where, reason: string, kind: 'timeout' | 'memory' | 'crash' | 'exit' | 'aborted', timeoutMs: number): AasError {
  const subject =
    at.phase === 'read'
      ? 'The pre-flight parse of the units'
      : at.phase === 'load'
        ? `Loading ${at.script}`
        : `${at.script}${at.unit ? ` on ${at.unit}` : ''}${at.step ? ` (step ${at.step})` : ''}`
  const hint =
    kind === 'timeout'
      ? `Fix the loop or unsettled promise in ${at.script}; if the unit really needs longer, raise AAS_SCRIPT_TIMEOUT_MS (now ${timeoutMs}). Nothing was written.`
      : kind === 'memory'
        ? `Fix the allocation in ${at.script}; if it really needs more, raise AAS_SCRIPT_MEMORY_MB. Nothing was written.`
        : `Fix ${at.script}; nothing was written.`
  return new AasError('SCRIPT_FAILED', `${subject} ${reason}.`, { hint, data: { script: at.script, unit: at.unit, step: at.step, reason: kind } })
}

function safeText(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err)
  } catch {
    return 'an error that cannot be described'
  }
}
