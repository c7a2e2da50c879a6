import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { AasError, type AasErrorCode } from '../errors.js'
import type { UnitFailure, ValidationIssue, ValidationMode, ValidationResult } from '../schema/validate.js'
import type { UnitReading } from '../vault/inventory.js'
import type { UnitType } from '../vault/rules.js'
import type { ApplyResult, UnitApplyResult, UnitInput, UnitStepResult } from './apply.js'
import type { ScriptFile } from './discover.js'
import type { SandboxCommand, SandboxMessage, SandboxWorkerData, SerializedError } from './sandbox-worker.js'

// Runs a migration chain contained: the scripts are loaded and applied in a
// worker thread (sandbox-worker) that the engine can terminate. A script that
// never returns is stopped after `timeoutMs` on one unit (default 30 s,
// AAS_SCRIPT_TIMEOUT_MS), one that exhausts memory hits the worker's heap limit
// (default 2048 MB, AAS_SCRIPT_MEMORY_MB); either fails the run naming the script,
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
  memoryMb?: number // the worker's old-generation heap limit
  workers?: number // how many workers share the units (default: see workerCount)
  signal?: AbortSignal // stops the worker(s): the result is then a failure
  gate?: ChainGate // read every unit's version first and wait before loading any script
}

// A pre-flight inside the workers: each worker parses its units and reports their
// readings before any script is loaded, then waits for `go`: the scripts of the chain
// (the caller plans it from the readings), or null to stop without running one.
export interface ChainGate {
  onReadings(start: number, readings: UnitReading[]): void // start: index of the slice's first unit
  go: Promise<readonly ScriptFile[] | null>
}

export const DEFAULT_SCRIPT_TIMEOUT_MS = 30_000
export const DEFAULT_SCRIPT_MEMORY_MB = 2048
// Starting a worker and compiling .ts scripts takes seconds on a busy machine: loading gets this on top.
const LOAD_ALLOWANCE_MS = 15_000

// A worker costs its start-up and a second load of the scripts: below this many units
// each, one worker does the whole chain sooner.
export const MIN_UNITS_PER_WORKER = 2000
const MAX_WORKERS = 4

// Sandbox limits from the environment (AAS_SCRIPT_TIMEOUT_MS, AAS_SCRIPT_MEMORY_MB,
// AAS_SCRIPT_WORKERS), else defaults.
export function sandboxLimitsFromEnv(env: NodeJS.ProcessEnv): { timeoutMs: number; memoryMb: number; workers?: number } {
  const num = (v: string | undefined, d: number): number => (v !== undefined && /^\d+$/.test(v.trim()) && Number(v) > 0 ? Number(v) : d)
  const workers = num(env.AAS_SCRIPT_WORKERS, 0)
  return { timeoutMs: num(env.AAS_SCRIPT_TIMEOUT_MS, DEFAULT_SCRIPT_TIMEOUT_MS), memoryMb: num(env.AAS_SCRIPT_MEMORY_MB, DEFAULT_SCRIPT_MEMORY_MB), ...(workers > 0 ? { workers } : {}) }
}

// Workers for a chain over `units` units: one per available core (at most MAX_WORKERS),
// each with at least MIN_UNITS_PER_WORKER units; `requested` (AAS_SCRIPT_WORKERS) wins.
export function workerCount(units: number, requested?: number): number {
  const n = requested ?? Math.min(availableParallelism(), MAX_WORKERS, Math.floor(units / MIN_UNITS_PER_WORKER))
  return Math.max(1, Math.min(n, units))
}

// The worker entry: the compiled .js next to this file, or (running from sources
// under tsx/vitest) the .ts file loaded through tsx.
function startWorker(data: SandboxWorkerData, memoryMb: number): Worker {
  const js = new URL('./sandbox-worker.js', import.meta.url)
  const resourceLimits = { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(16, Math.max(8, Math.floor(memoryMb / 16))) }
  if (existsSync(fileURLToPath(js))) return new Worker(js, { workerData: data, resourceLimits, stdout: false, stderr: false })
  const ts = new URL('./sandbox-worker.ts', import.meta.url).href
  // The ESM build of tsx's API (resolving 'tsx/esm/api' from CommonJS gives the CJS one).
  const tsxDir = path.dirname(createRequire(import.meta.url).resolve('tsx/package.json'))
  const tsxApi = pathToFileURL(path.join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => m.tsImport(${JSON.stringify(ts)}, ${JSON.stringify(ts)}))`
  return new Worker(boot, { eval: true, workerData: data, resourceLimits })
}

// The chain over every unit, split into contiguous slices run by parallel workers (each
// unit is migrated by exactly one worker, each worker loads the scripts itself), and the
// slices' results merged back in unit order as if one worker had run them all.
export async function runChainContained(scripts: readonly ScriptFile[], units: readonly UnitInput[], options: SandboxOptions = {}): Promise<ApplyResult> {
  const n = workerCount(units.length, options.workers)
  if (n <= 1) return runInWorker(scripts, units, options)
  const size = Math.ceil(units.length / n)
  const slices = Array.from({ length: n }, (_, i) => units.slice(i * size, (i + 1) * size))
  // A failure that ends the run whatever the other slices find stops them.
  const stop = new AbortController()
  const onAbort = (): void => stop.abort()
  options.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const results = await Promise.all(
      slices.map((slice, i) =>
        runInWorker(scripts, slice, { ...options, signal: stop.signal, ...(options.gate ? { gate: sliceGate(options.gate, i * size) } : {}) }).then((r) => {
          if (!r.ok && !r.failedStep) stop.abort()
          return r
        }),
      ),
    )
    return mergeResults(results, options.signal?.aborted === true)
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
  }
}

function sliceGate(gate: ChainGate, start: number): ChainGate {
  return { onReadings: (_s, readings) => gate.onReadings(start, readings), go: gate.go }
}

export interface PreparedChain {
  // Every unit's reading, in input order; or the failure that stopped a worker first.
  readings: Promise<{ ok: true; readings: UnitReading[] } | { ok: false; result: ApplyResult }>
  run(scripts: readonly ScriptFile[]): Promise<ApplyResult> // once, after readings
  cancel(): Promise<void> // stop without running any script (or stop the running chain)
}

// The workers started and the units parsed in them before the chain is planned: the
// caller plans from the readings, then runs (or cancels) the chain in the same workers.
export function prepareChainContained(units: readonly UnitInput[], options: SandboxOptions = {}): PreparedChain {
  let release!: (scripts: readonly ScriptFile[] | null) => void
  const go = new Promise<readonly ScriptFile[] | null>((resolve) => (release = resolve))
  const all: Array<UnitReading | undefined> = new Array(units.length)
  let reported = 0
  let gotAll!: (readings: UnitReading[]) => void
  const readingsDone = new Promise<UnitReading[]>((resolve) => (gotAll = resolve))
  const gate: ChainGate = {
    onReadings: (start, readings) => {
      readings.forEach((r, k) => (all[start + k] = r))
      reported += readings.length
      if (reported === units.length) gotAll(all as UnitReading[])
    },
    go,
  }
  if (units.length === 0) gotAll([])
  const stop = new AbortController()
  const result = runChainContained([], units, { ...options, gate, signal: stop.signal })
  return {
    readings: Promise.race([readingsDone.then((readings) => ({ ok: true as const, readings })), result.then((r) => ({ ok: false as const, result: r }))]),
    run: (scripts) => {
      release(scripts)
      return result
    },
    cancel: async () => {
      release(null)
      stop.abort()
      await result.catch(() => undefined)
    },
  }
}

// Slices' results as one: units and validation failures in order; on failure the errors
// applyChain would have reported over all units: unreadable units first, then a failure
// that stopped a worker (load errors, timeout, crash), then every error of the earliest
// failing step (a slice that failed later ran that step on all its units without error).
function mergeResults(results: ApplyResult[], aborted: boolean): ApplyResult {
  if (results.every((r) => r.ok)) {
    const units = results.flatMap((r) => r.units)
    const validations = results.map((r) => r.validation)
    const first = validations[0]
    if (!first) return { ok: true, units, errors: [] }
    const failures = validations.flatMap((v) => v?.failures ?? [])
    return { ok: true, units, errors: [], validation: { ...first, ok: failures.length === 0, checked: units.length, failures } }
  }
  const failed = results.filter((r) => !r.ok)
  const unreadable = failed.filter((r) => r.errors.length > 0 && r.errors.every((e) => e.code === 'UNIT_UNREADABLE'))
  if (unreadable.length > 0) return { ok: false, units: [], errors: unreadable.flatMap((r) => r.errors) }
  // Not the stop of a slice stopped because another failed: the failure that stopped it.
  const fatal = failed.find((r) => !r.failedStep && !r.errors.some((e) => e.data.reason === 'aborted')) ?? (aborted ? failed.find((r) => !r.failedStep) : undefined)
  if (fatal) return fatal
  const earliest = Math.min(...failed.map((r) => (r.failedStep as { from: number }).from))
  const atEarliest = failed.filter((r) => r.failedStep?.from === earliest)
  return { ok: false, units: results.flatMap((r) => r.units), errors: atEarliest.flatMap((r) => r.errors), failedStep: atEarliest[0]?.failedStep as NonNullable<ApplyResult['failedStep']> }
}

async function runInWorker(given: readonly ScriptFile[], units: readonly UnitInput[], { dryRun = false, validateVersion, unitsReadable = false, timeoutMs = DEFAULT_SCRIPT_TIMEOUT_MS, memoryMb = DEFAULT_SCRIPT_MEMORY_MB, signal, gate }: SandboxOptions = {}): Promise<ApplyResult> {
  // With a gate, the scripts are known only at its go.
  let scripts = given
  const progress = new SharedArrayBuffer(16)
  const view = new Int32Array(progress)
  Atomics.store(view, 2, -1)
  const data: SandboxWorkerData = { scripts: scripts.map((s) => ({ ...s })), units: units.map((u) => ({ ...u })), dryRun, unitsReadable, preflight: gate !== undefined, ...(validateVersion === undefined ? {} : { validateVersion }), progress }
  const worker = startWorker(data, memoryMb)

  // Who was running when the worker had to stop: the step's script and the unit.
  const where = (): { script: string; unit: string | null; step: string | null; phase: 'load' | 'apply' } => {
    const phaseCode = Atomics.load(view, 0)
    const phase = phaseCode === 0 ? 'load' : 'apply'
    const s = scripts[Atomics.load(view, 1)]
    const u = units[Atomics.load(view, 2)]
    if (phaseCode === 3) {
      const v = scripts.find((x) => x.to === validateVersion)
      return { script: v?.file ?? scripts.map((x) => x.file).join(', '), unit: u?.unitId ?? null, step: 'validate', phase: 'apply' }
    }
    if (phase === 'load' || !s) return { script: scripts.map((x) => x.file).join(', '), unit: null, step: null, phase: 'load' }
    return { script: s.file, unit: u?.unitId ?? null, step: `v${s.from} -> v${s.to}`, phase }
  }

  const outcome = await new Promise<{ message: SandboxMessage } | { failure: AasError }>((resolve) => {
    let settled = false
    let lastBeat = -1
    let lastChange = Date.now()
    const onAbort = (): void => finish({ failure: containedFailure(where(), 'was stopped before the chain finished', 'aborted', timeoutMs) })
    const finish = (v: { message: SandboxMessage } | { failure: AasError }): void => {
      if (settled) return
      settled = true
      clearInterval(watchdog)
      signal?.removeEventListener('abort', onAbort)
      void worker.terminate()
      resolve(v)
    }
    let waiting = false // readings reported, the gate not yet open: no script is running
    const watchdog = setInterval(() => {
      const beat = Atomics.load(view, 3)
      if (waiting) lastChange = Date.now()
      else if (beat !== lastBeat) {
        lastBeat = beat
        lastChange = Date.now()
      } else if (Date.now() - lastChange >= timeoutMs + (Atomics.load(view, 0) === 0 ? LOAD_ALLOWANCE_MS : 0)) {
        finish({ failure: containedFailure(where(), `did not return within ${timeoutMs} ms`, 'timeout', timeoutMs) })
      }
    }, Math.max(10, Math.min(250, Math.floor(timeoutMs / 4))))
    if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
    worker.on('message', (message: SandboxMessage) => {
      if (message.type !== 'readings') return finish({ message })
      if (!gate || !Array.isArray(message.readings) || message.readings.length !== units.length) return finish({ message: { type: 'crash', reason: 'the pre-flight reported a malformed reading list' } })
      waiting = true
      gate.onReadings(0, message.readings)
      void gate.go.then((chosen) => {
        if (settled) return
        if (chosen === null) return onAbort()
        scripts = chosen
        waiting = false
        lastChange = Date.now()
        worker.postMessage({ type: 'run', scripts: chosen.map((s) => ({ ...s })) } satisfies SandboxCommand)
      })
    })
    worker.on('error', (err: Error & { code?: string }) => {
      const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY'
      finish({ failure: containedFailure(where(), oom ? `ran out of memory (worker heap limit ${memoryMb} MB)` : `crashed the script worker: ${safeText(err)}`, oom ? 'memory' : 'crash', timeoutMs) })
    })
    worker.on('exit', (code) => {
      finish({ failure: containedFailure(where(), `stopped the script worker (exit ${code}) before the chain finished, e.g. a promise that never settles or process.exit()`, 'exit', timeoutMs) })
    })
  })

  if ('failure' in outcome) return { ok: false, units: [], errors: [outcome.failure] }
  const { message } = outcome
  if (message.type === 'load-errors') return checkedResult({ ok: false, units: [], errors: message.errors }, units, scripts)
  if (message.type === 'crash') return { ok: false, units: [], errors: [containedFailure(where(), `made the chain fail: ${message.reason}`, 'crash', timeoutMs)] }
  if (message.type !== 'result') return checkedResult(null, units, scripts, validateVersion)
  return checkedResult(message.result, units, scripts, validateVersion)
}

// Trust nothing from the worker but texts and step statuses, checked against the inputs.
function checkedResult(raw: unknown, units: readonly UnitInput[], scripts: readonly ScriptFile[], validateVersion?: number): ApplyResult {
  const bad = (why: string): ApplyResult => ({
    ok: false,
    units: [],
    errors: [new AasError('SCRIPT_FAILED', `The migration chain (${scripts.map((s) => s.file).join(', ')}) returned a malformed result: ${why}. Nothing was written.`, { hint: 'Check the scripts for code that changes built-in objects (prototypes, JSON, Array).', data: { scripts: scripts.map((s) => s.file), reason: why } })],
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
    const steps = Array.isArray(got.steps) ? (got.steps as UnitStepResult[]).map((s) => ({ file: String(s.file), from: Number(s.from), to: Number(s.to), status: s.status })) : []
    const changes = Array.isArray(got.changes) ? got.changes.map((c) => String(c)) : []
    out.push({ unitId: u.unitId, unitType: u.unitType, before: u.text, after: touched ? got.after : u.text, touched, changes, steps })
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
    const issues = (ff.issues as unknown[]).map((i) => ({ field: String((i as ValidationIssue | null)?.field), message: String((i as ValidationIssue | null)?.message) }))
    failures.push({ unitId: ff.unitId, unitType: known.get(ff.unitId) as UnitType, issues })
  }
  const modeOf = (m: unknown): ValidationMode => (m === 'schema' ? 'schema' : 'structure-only')
  const coverage = { memory: modeOf(v.coverage.memory), wiki: modeOf(v.coverage.wiki) }
  return { ok: failures.length === 0, version, checked: units.length, mode: modeOf(v.mode), coverage, note: String(v.note), failures }
}

const KNOWN = new Set<string>(['SCRIPT_LOAD_FAILED', 'SCRIPT_INVALID', 'SCRIPT_FAILED', 'SCRIPT_NO_BUMP', 'UNIT_UNREADABLE', 'UNIT_WRITE_INVALID', 'CHAIN_GAP'])

function revive(e: SerializedError): AasError {
  const code = (KNOWN.has(e.code) ? e.code : 'SCRIPT_FAILED') as AasErrorCode
  return new AasError(code, String(e.message), { ...(e.hint ? { hint: e.hint } : {}), data: e.data ?? {} })
}

function containedFailure(at: { script: string; unit: string | null; step: string | null; phase: 'load' | 'apply' }, reason: string, kind: 'timeout' | 'memory' | 'crash' | 'exit' | 'aborted', timeoutMs: number): AasError {
  const subject = at.phase === 'load' ? `Loading ${at.script}` : `${at.script}${at.unit ? ` on ${at.unit}` : ''}${at.step ? ` (step ${at.step})` : ''}`
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
