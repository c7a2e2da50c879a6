import { AasError } from '../../errors.js'
import { openStore } from '../../git/open-store.js'
import type { BackendName, BaseTree, FileChange, PreReadFile, Store } from '../../git/store.js'
import type { ApplyResult, UnitInput } from '../../migrations/apply.js'
import type { ScriptFile } from '../../migrations/discover.js'
import { discoverScripts } from '../../migrations/discover.js'
import { planChain } from '../../migrations/plan.js'
import { applyBatches, BATCH_UNITS, ChainPool, sandboxLimitsFromEnv, workerCount } from '../../migrations/sandbox.js'
import type { ValidationResult } from '../../schema/validate.js'
import { resolveAgentsRoot } from '../../vault/agents-root.js'
import { decodeUnit, readUnit, readUnitVersion, summarize, type Inventory, type UnitReading } from '../../vault/inventory.js'
import { unitTypeOf, type UnitType } from '../../vault/rules.js'
import { scanVault, type FileMode, type ScopeEntry } from '../../vault/walk.js'
import { ENGINE_VERSION } from '../../version.js'
import { hashBlob } from '../../transaction/blob-hash.js'
import { collectGarbage, collector } from '../../transaction/collect.js'
import { prepareBranchCommit, recordBranchCommit } from '../branch-commit.js'
import type { DiffFile } from '../../diff/unified.js'
import { takeSnapshot } from '../../snapshots/snapshots.js'
import { newRunId } from '../run-id.js'
import { journalChangesOf, prefetchingBlobSource, runTransaction } from '../../transaction/transaction.js'
import { withWriteSession, type EngineEvent, type WriteSession } from '../session.js'
import { pendingRef, runRef } from '../../git/refs.js'


export interface MigrateOptions {
  agentsRoot?: string | undefined
  env?: NodeJS.ProcessEnv
  target: number
  dryRun?: boolean
  commit?: boolean // also record the migration as one commit on the current branch (git vaults)
  backend?: BackendName
  lockTimeoutMs?: number
  now?: () => Date
  onEvent?: (event: EngineEvent) => void
}

export interface MigrateResult {
  ok: boolean
  runId: string
  agentsRoot: string
  dryRun: boolean
  from: number | null
  target: number
  steps: Array<{ from: number; to: number; file: string }>
  snapshot: { name: string; ref: string; commit: string } | null
  result: { ref: string; commit: string } | null // refs/aas/pending/<id> (dry run) or refs/aas/runs/<id>
  units: number
  touched: number
  changed: string[] // unit paths whose bytes change
  diff: DiffFile[] // every changed file with both blob ids; contents (both sides) only in a dry run
  validation: ValidationResult | null
  applied: boolean // the live vault now holds the migrated state
  branchCommit: { branch: string; commit: string } | null // with --commit
  error: AasError | null
  errors: AasError[] // every error found (validation failures are in `validation`)
  durationMs: number
}

// Unit bytes held in memory between phases, by default: the pre-flight's reads (for the
// snapshot and the chain) and the chain's results (for the fast-forward and the dry-run
// diff) each up to this much; beyond it they are read again, from the vault (checked
// against the blob id) or from the store. A run's memory then does not grow with the
// vault's bytes. AAS_BUFFER_MB sets it.
export const DEFAULT_BUFFER_MB = 8

function bufferBytesFromEnv(env: NodeJS.ProcessEnv): number {
  const v = env.AAS_BUFFER_MB?.trim()
  return (v !== undefined && /^\d+$/.test(v) ? Number(v) : DEFAULT_BUFFER_MB) * 1024 * 1024
}

// One unit as the pre-flight read it: its scan entry, blob id and reading.
interface PreflightUnit {
  entry: ScopeEntry
  oid: string | null // null: the file could not be read
  reading: UnitReading | null // null until the workers parsed it
  text: boolean // decodable and not a symlink: the chain runs on it
}

// A unit of the chain's input: path, blob id and mode, as the pre-flight or the snapshot has it.
interface ChainUnit {
  path: string
  unitType: UnitType
  oid: string
  mode: FileMode
}

// The pre-flight read the unit again and it is no longer what it read: the early chain's
// input would not be the snapshot's.
class StaleUnit extends Error {}

// Changes fed to a result commit while the chain still runs (Store.writeCommitWithChanges
// reads it as its source); fail() makes that write fail, writing no commit.
class ChangeQueue implements AsyncIterable<FileChange> {
  private items: FileChange[] = []
  private done = false
  private error: unknown = null
  private wake: (() => void) | null = null

  push(change: FileChange): void {
    this.items.push(change)
    this.wake?.()
  }

  end(): void {
    this.done = true
    this.wake?.()
  }

  fail(err: unknown): void {
    this.error = err
    this.wake?.()
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<FileChange> {
    for (;;) {
      if (this.error) throw this.error
      if (this.items.length > 0) {
        const items = this.items
        this.items = []
        yield* items
        continue
      }
      if (this.done) return
      await new Promise<void>((resolve) => (this.wake = resolve))
      this.wake = null
    }
  }
}

// A unit as sent to the chain: its text, with the blob id and mode it was read with.
type ChainInput = UnitInput & { oid: string; mode: FileMode }

// What a run of the chain gave so far (see collect in migrate).
interface ChainOutput {
  queue: ChangeQueue // changed units' new bytes, to the result commit
  diffs: DiffFile[][] // per batch, in batch order: the changed units
  touched: number
  done: number
  held: number // bytes kept in `after` (and, in a dry run, the diff's old sides)
  after: Map<string, Buffer> // new bytes kept, by blob id
}

// Texts as UTF-8, in one allocation for all (a buffer each costs far more here).
function encodeAll(texts: readonly string[]): Buffer[] {
  let total = 0
  for (const t of texts) total += Buffer.byteLength(t, 'utf8')
  const all = Buffer.allocUnsafeSlow(total)
  let at = 0
  return texts.map((t) => {
    const n = all.write(t, at, 'utf8')
    at += n
    return all.subarray(at - n, at)
  })
}

// The snapshot's units in batches, their bytes read from the store.
async function* fromStore(store: Store, units: readonly ChainUnit[]): AsyncGenerator<ChainInput[]> {
  for (let i = 0; i < units.length; i += BATCH_UNITS) {
    const slice = units.slice(i, i + BATCH_UNITS)
    const bytes = new Map<string, Buffer>()
    for await (const { oid, content } of store.readBlobs([...new Set(slice.map((u) => u.oid))])) bytes.set(oid, content)
    yield slice.map((u) => ({ ...unitInputOf(u.path, u.unitType, bytes.get(u.oid) as Buffer), oid: u.oid, mode: u.mode }))
  }
}

function unitInputOf(unitId: string, unitType: UnitType, bytes: Buffer): UnitInput {
  const decoded = decodeUnit(bytes)
  return { unitId, unitType, text: decoded.ok ? decoded.text : '' }
}

function sameSteps(a: ReadonlyArray<{ script: ScriptFile }>, b: ReadonlyArray<{ script: ScriptFile }>): boolean {
  return a.length === b.length && a.every((s, i) => s.script.file === b[i]?.script.file && s.script.from === b[i]?.script.from)
}

function sameUnits(a: readonly ChainUnit[], b: readonly ChainUnit[]): boolean {
  return a.length === b.length && a.every((u, i) => u.path === b[i]?.path && u.oid === b[i]?.oid && u.mode === b[i]?.mode)
}

function unreadableError(inv: Inventory): AasError {
  const list = inv.unreadable.map((u) => `${u.unitId}:${u.line}:${u.column}: ${u.message}`)
  return new AasError('UNIT_UNREADABLE', `${inv.unreadable.length} unit${inv.unreadable.length === 1 ? '' : 's'} cannot be read, so no migration can run:\n  ${list.join('\n  ')}`, {
    hint: 'Fix the front matter at the line and column shown (often a value containing ": " that needs quotes), or exclude the file in _migrations/ignore; --status lists them too.',
    data: { units: inv.unreadable },
  })
}

function trailers(t: Record<string, string | number>): string {
  return Object.entries(t)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n')
}

// `--to vN` (SPEC §4): lock → snapshot → chain on a scratch copy → validate every unit →
// fast-forward → audit. With dryRun, everything but the fast-forward. Never throws for
// an expected failure: the result carries it.
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const { target, dryRun = false, env = process.env, now = () => new Date(), onEvent } = options
  const started = Date.now()
  const runId = newRunId(now())
  const root = await resolveAgentsRoot({ flag: options.agentsRoot, env })
  const result: MigrateResult = {
    ok: false,
    runId,
    agentsRoot: root.path,
    dryRun,
    from: null,
    target,
    steps: [],
    snapshot: null,
    result: null,
    units: 0,
    touched: 0,
    changed: [],
    diff: [],
    validation: null,
    applied: false,
    branchCommit: null,
    error: null,
    errors: [],
    durationMs: 0,
  }
  const fail = (errors: AasError[]): MigrateResult => {
    result.errors = errors
    result.error = errors[0] ?? null
    return result
  }
  const store = await openStore({ agentsRoot: root.path, ...(options.backend ? { backend: options.backend } : {}) })

  return withWriteSession(
    {
      store,
      runId,
      command: `--to v${target}${dryRun ? ' --dry-run' : ''}`,
      takeVaultLock: !dryRun,
      lockTimeoutMs: options.lockTimeoutMs ?? 30_000,
      ...(onEvent ? { onEvent } : {}),
      audit: () => ({
        from: result.from,
        to: target,
        dry_run: dryRun,
        units_touched: result.touched,
        snapshot: result.snapshot?.name ?? null,
        result_commit: result.result?.commit ?? null,
        rolled_back: false,
        error: result.error ? { code: result.error.code, message: result.error.message } : null,
        result: result.ok ? 'ok' : result.error && ['NOT_ABOVE_CURRENT', 'CHAIN_GAP', 'LOCKED', 'UNIT_UNREADABLE'].includes(result.error.code) ? 'refused' : 'failed',
      }),
    },
    async (session: WriteSession) => {
      // The chain's workers: started with the scan, they parse the pre-flight's units, then
      // run the chain; a refusal or an error stops them.
      const pools: ChainPool[] = []
      const track = (p: ChainPool): ChainPool => (pools.push(p), p)
      try {
        return await (async (): Promise<MigrateResult> => {
          // Pre-flight on the live files: refusals happen before anything is written to the store.
          const discovery = await discoverScripts(root.path)
          if (discovery.errors.length > 0) return fail(discovery.errors)
          const scan = await scanVault(root.path)
          const limits = { dryRun, validateVersion: target, unitsReadable: true, ...sandboxLimitsFromEnv(env) }
          const budget = bufferBytesFromEnv(env)
          const preflightPool = track(new ChainPool(workerCount(scan.units.length, limits.workers), limits))

          // Every unit read once and hashed here, and parsed in the workers, a batch at a
          // time, in the scan's order (path bytes, as git orders the snapshot's units).
          // Garbage collected as the run goes: see collect.ts.
          const tick = collector()
          const pre: PreflightUnit[] = new Array(scan.units.length)
          // The snapshot takes a unit's bytes from here when its stat has not changed since
          // the scan before this read (and is not racy); so does the chain, up to the buffer.
          const forSnapshot = new Map<string, PreReadFile>()
          let held = 0
          let preflightFailure: ApplyResult | null = null
          const parsing: Array<Promise<void>> = []
          let batch: UnitInput[] = []
          let batchAt: number[] = []
          const parse = async (): Promise<void> => {
            if (batch.length === 0) return
            const [units, at] = [batch, batchAt]
            batch = []
            batchAt = []
            await preflightPool.room()
            parsing.push(
              preflightPool.read(units).then((r) => {
                if (!r.ok) preflightFailure ??= r.result
                else r.readings.forEach((reading, k) => ((pre[at[k] as number] as PreflightUnit).reading = reading))
              }),
            )
          }
          for (let i = 0; i < scan.units.length; i++) {
            const entry = scan.units[i] as ScopeEntry
            const r = readUnit(root.path, entry)
            if (!r.ok) pre[i] = { entry, oid: null, reading: r.reading, text: false }
            else if (entry.mode === '120000') pre[i] = { entry, oid: r.oid, reading: readUnitVersion(r.bytes), text: false }
            else {
              const decoded = decodeUnit(r.bytes)
              if (!decoded.ok) pre[i] = { entry, oid: r.oid, reading: { kind: 'unreadable', error: decoded.error }, text: false }
              else {
                pre[i] = { entry, oid: r.oid, reading: null, text: true }
                batch.push({ unitId: entry.path, unitType: entry.unitType as UnitType, text: decoded.text })
                batchAt.push(i)
                if (batch.length >= BATCH_UNITS) await parse()
              }
            }
            if (r.ok && r.bytes.length === entry.size && held + entry.size <= budget) {
              held += entry.size
              forSnapshot.set(entry.path, { bytes: r.bytes, oid: r.oid, size: entry.size, mtimeMs: entry.mtimeMs, ctimeMs: entry.ctimeMs, ino: entry.ino })
            }
            if ((i + 1) % 1000 === 0) session.emit({ type: 'progress', phase: 'enumerate', done: i + 1, total: 0 })
            tick(1)
          }
          await parse()
          await Promise.all(parsing)
          if (preflightFailure) return fail((preflightFailure as ApplyResult).errors)
          const inventory = summarize(pre.map((u) => ({ entry: u.entry, reading: u.reading as UnitReading })))
          if (inventory.unreadable.length > 0) return fail([unreadableError(inventory)])
          const prePlan = planChain({ current: inventory.vaultVersion, target, scripts: discovery.scripts })
          result.from = inventory.vaultVersion
          if (!prePlan.ok) return fail([prePlan.error])
          const preflight = new Map(pre.map((u) => [u.entry.path, { oid: u.oid, reading: u.reading as UnitReading }]))
          const early: ChainUnit[] = pre.filter((u) => u.text).map((u) => ({ path: u.entry.path, unitType: u.entry.unitType as UnitType, oid: u.oid as string, mode: u.entry.mode }))
          pre.length = 0

          // What the chain gives, a batch at a time: the changed units' new bytes go to the
          // result commit as they come (kept here only up to the buffer).
          let started = false // the apply phase was announced (after the snapshot)
          const newOutput = (): ChainOutput => ({ queue: new ChangeQueue(), diffs: [], touched: 0, done: 0, held: 0, after: new Map() })
          const collect =
            (out: ChainOutput) =>
            (units: readonly UnitInput[], r: ApplyResult, k: number): void => {
              const inputs = units as readonly ChainInput[]
              out.done += units.length
              tick(units.length)
              if (started) session.emit({ type: 'progress', phase: 'apply', done: out.done, total: result.units })
              if (!r.ok) return
              const changed = r.units.flatMap((u, j) => (u.after === u.before ? [] : [{ u, c: inputs[j] as ChainInput }]))
              for (const u of r.units) if (u.touched) out.touched++
              r.units.length = 0
              const after = encodeAll(changed.map((x) => x.u.after))
              const size = after.reduce((n, b) => n + b.length, 0) * (dryRun ? 2 : 1)
              const keep = out.held + size <= budget
              if (keep) out.held += size
              const before = keep && dryRun ? encodeAll(changed.map((x) => x.u.before)) : null
              out.diffs[k] = changed.map(({ c }, j) => {
                const content = after[j] as Buffer
                const oid = hashBlob(content)
                out.queue.push({ path: c.unitId, mode: c.mode, content, oid })
                if (keep) out.after.set(oid, content)
                return { path: c.unitId, oldMode: c.mode, newMode: c.mode, oldOid: c.oid, newOid: oid, oldContent: before?.[j] ?? null, newContent: before ? content : null }
              })
            }

          // The early chain: on the pre-flight's units while the snapshot is taken (scripts only
          // map texts to texts, in a worker). A unit not held is read again and must have the
          // pre-flight's blob id. Its result is used only when the snapshot holds exactly those
          // units; else the chain runs again on the snapshot's units.
          const held4Chain = new Map([...forSnapshot].map(([p, f]) => [p, f.bytes]))
          const fromVault = async function* (units: readonly ChainUnit[]): AsyncGenerator<ChainInput[]> {
            for (let i = 0; i < units.length; i += BATCH_UNITS) {
              yield units.slice(i, i + BATCH_UNITS).map((u) => {
                let bytes = held4Chain.get(u.path)
                if (bytes) held4Chain.delete(u.path)
                else {
                  const r = readUnit(root.path, u)
                  if (!r.ok || r.oid !== u.oid) throw new StaleUnit(u.path)
                  bytes = r.bytes
                }
                return { ...unitInputOf(u.path, u.unitType, bytes), oid: u.oid, mode: u.mode }
              })
            }
          }
          const earlyOut = newOutput()
          const earlySteps = prePlan.steps.map((s) => s.script)
          // While the snapshot is taken, one core is left to it (the reads here and git
          // fast-import): one worker fewer runs the chain, and the idle one stays small.
          preflightPool.use(preflightPool.size - 1)
          const earlyRun = (async (): Promise<ApplyResult> => (await preflightPool.load(earlySteps)) ?? applyBatches(preflightPool, fromVault(early), collect(earlyOut)))()
          earlyRun.catch(() => undefined)
          // The result commit is written as the chain goes (blobs first, on the snapshot's
          // tree once it is known), so the chain's output is never held whole.
          let snap!: Awaited<ReturnType<typeof takeSnapshot>>
          let setBase!: (base: BaseTree) => void
          let noBase!: (err: unknown) => void
          const snapBase = new Promise<BaseTree>((resolve, reject) => ((setBase = resolve), (noBase = reject)))
          const message = (): string =>
            `${dryRun ? 'Preview of' : 'Migrate'} v${result.from} -> v${target}\n\n${trailers({
              'Aas-Run-Id': runId,
              'Aas-From': result.from as number,
              'Aas-Target': target,
              'Aas-Snapshot': snap.name,
              'Aas-Dry-Run': String(dryRun),
              'Aas-Units-Touched': result.touched,
              'Aas-Engine-Version': ENGINE_VERSION,
            })}\n`
          const write = (out: ChainOutput): Promise<{ commit: string }> => {
            const writing = store.writeCommitWithChanges(snapBase, out.queue, () => ({ parents: [snap.commit], message: message(), timestamp: Math.floor(now().getTime() / 1000) }))
            writing.catch(() => undefined)
            return writing
          }
          const earlyWriting = write(earlyOut)

          let snapshotDone = 0
          try {
            // The snapshot: its name is announced before any live byte can change.
            collectGarbage() // the pre-flight's reads and parse results
            session.emit({ type: 'phase', phase: 'snapshot', total: 0 })
            snap = await takeSnapshot(store, { target, from: inventory.vaultVersion, runId, now: now(), preRead: forSnapshot, onProgress: (done, total) => {
                tick(done - snapshotDone)
                snapshotDone = done
                session.emit({ type: 'progress', phase: 'snapshot', done, total })
              },
            })
            forSnapshot.clear()
            collectGarbage() // the snapshot's reads and trees
            result.snapshot = { name: snap.name, ref: snap.ref, commit: snap.commit }
            session.emit({ type: 'snapshot', name: snap.name, ref: snap.ref, commit: snap.commit, files: snap.files })
          } catch (err) {
            preflightPool.cancel()
            noBase(err)
            earlyOut.queue.fail(err)
            await Promise.allSettled([earlyRun, earlyWriting])
            throw err
          }
          setBase({ tree: snap.tree, entries: snap.entries, trees: snap.trees })
          preflightPool.use(preflightPool.size)

          // From here on, everything reads the snapshot, not the live files: its units, with
          // the pre-flight's reading where the blob is the same, else read from the store.
          const units: ChainUnit[] = []
          for (const e of snap.entries) {
            const unitType = e.mode === '120000' ? null : unitTypeOf(e.path)
            if (unitType) units.push({ path: e.path, unitType, oid: e.oid, mode: e.mode })
          }
          const readings = new Map<string, UnitReading>()
          const unknown = units.filter((u) => {
            const p = preflight.get(u.path)
            if (p?.oid === u.oid) readings.set(u.path, p.reading)
            return p?.oid !== u.oid
          })
          for await (const { oid, content } of store.readBlobs([...new Set(unknown.map((u) => u.oid))])) {
            const reading = readUnitVersion(content)
            for (const u of unknown) if (u.oid === oid) readings.set(u.path, reading)
          }
          preflight.clear()
          const inv = summarize(units.map((u) => ({ entry: { path: u.path, unitType: u.unitType }, reading: readings.get(u.path) as UnitReading })))
          readings.clear()
          result.units = units.length
          result.from = inv.vaultVersion
          const plan = inv.unreadable.length > 0 ? null : planChain({ current: inv.vaultVersion, target, scripts: discovery.scripts })
          const earlyValid = plan !== null && plan.ok && sameSteps(plan.steps, prePlan.steps) && sameUnits(early, units)
          if (!earlyValid) {
            preflightPool.cancel()
            earlyOut.queue.fail(new StaleUnit('the snapshot is not what the pre-flight read'))
            await Promise.allSettled([earlyRun, earlyWriting])
          }
          if (inv.unreadable.length > 0) return fail([unreadableError(inv)])
          if (!plan?.ok) return fail([(plan as Extract<ReturnType<typeof planChain>, { ok: false }>).error])
          result.steps = plan.steps.map((s) => ({ from: s.from, to: s.to, file: s.script.file }))
          session.emit({ type: 'phase', phase: 'apply', total: units.length })
          started = true

          const attempt = async (chain: Promise<ApplyResult>, out: ChainOutput, writing: Promise<{ commit: string }>): Promise<{ applied: ApplyResult; commit: string | null }> => {
            let applied: ApplyResult
            try {
              applied = await chain
            } catch (err) {
              out.queue.fail(err)
              await writing.catch(() => undefined)
              throw err
            }
            if (!applied.ok) {
              out.queue.fail(new Error('the chain failed'))
              await writing.catch(() => undefined)
              return { applied, commit: null }
            }
            result.touched = out.touched
            out.queue.end()
            return { applied, commit: (await writing).commit }
          }
          let out = earlyOut
          let ran: { applied: ApplyResult; commit: string | null } | null = null
          if (earlyValid) {
            try {
              ran = await attempt(earlyRun, earlyOut, earlyWriting)
            } catch (err) {
              // A unit changed after the snapshot, before the chain read it again.
              if (!(err instanceof StaleUnit)) throw err
            }
          }
          if (!ran) {
            const steps = plan.steps.map((s) => s.script)
            const again = track(new ChainPool(workerCount(units.length, limits.workers), limits))
            const rerun = (out = newOutput())
            ran = await attempt(
              (async (): Promise<ApplyResult> => (await again.load(steps)) ?? applyBatches(again, fromStore(store, units), collect(rerun)))(),
              rerun,
              write(rerun),
            )
          }
          const { applied, commit } = ran
          // The workers' heaps go now, not after the fast-forward.
          await Promise.all(pools.map((p) => p.close()))
          if (!applied.ok || commit === null) return fail(applied.errors)
          units.length = 0
          early.length = 0
          held4Chain.clear()
          collectGarbage() // the chain's texts and results
          session.emit({ type: 'phase', phase: 'validate', total: result.units })
          const validation = applied.validation as ValidationResult
          result.validation = validation
          result.diff = out.diffs.flat()
          result.changed = result.diff.map((d) => d.path)
          const ref = dryRun ? pendingRef(runId) : runRef(runId)
          await store.updateRef(ref, commit, null)
          result.result = { ref, commit }

          if (!validation.ok) {
            return fail([
              new AasError('SCHEMA_INVALID', `${validation.failures.length} unit${validation.failures.length === 1 ? '' : 's'} would not be valid at v${target}; ${dryRun ? 'the real run would fail' : 'nothing was changed'}.`, {
                hint: `Fix the units listed (or the migration scripts), check with --to v${target} --dry-run, then run again.`,
                data: { failures: validation.failures.length },
              }),
            ])
          }
          if (dryRun) {
            result.ok = true
            return result
          }

          // The changed units are the whole difference between the two trees (the chain edits
          // unit texts only), so the journal is built from them rather than a tree diff.
          const changes = journalChangesOf(
            result.diff.map((d) => ({ path: d.path, status: 'modified' as const, oldMode: d.oldMode as FileMode, oldOid: d.oldOid as string, newMode: d.newMode as FileMode, newOid: d.newOid as string })),
          )
          const commitPlan = options.commit ? await prepareBranchCommit(store, changes) : null
          // New bytes held since the chain, the others read back from the store ahead of the writes.
          const rest = prefetchingBlobSource(store, changes.flatMap((c) => (c.newOid && !out.after.has(c.newOid) ? [c.newOid] : [])))
          let ffDone = 0
          await session.withAgentLocks(changes.map((c) => c.path), async () => {
            session.emit({ type: 'phase', phase: 'fast-forward', total: changes.length })
            await runTransaction({
              store,
              runId,
              kind: 'migrate',
              from: snap.commit,
              to: commit,
              changes,
              blobs: async (oid) => out.after.get(oid) ?? rest(oid),
              faultName: 'mid-fast-forward',
              onProgress: (done, total) => {
                tick(done - ffDone)
                ffDone = done
                session.emit({ type: 'progress', phase: 'fast-forward', done, total })
              },
            })
          })
          result.applied = true
          if (commitPlan) result.branchCommit = await recordBranchCommit(store, commitPlan, changes, `Migrate vault to v${target}\n\n${trailers({ 'Aas-Run-Id': runId, 'Aas-From': inv.vaultVersion, 'Aas-Target': target, 'Aas-Snapshot': snap.name })}\n`)
          result.ok = true
          return result
        })()
      } finally {
        await Promise.all(pools.map((p) => p.close()))
      }
    },
    (err) => fail([err]),
  ).then((r) => {
    r.durationMs = Date.now() - started
    return r
  })
}
