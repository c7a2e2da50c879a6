import { moduleUrl } from '../../module-worker.js'
import { AasError } from '../../errors.js'
import { pendingRef, runRef } from '../../git/refs.js'
import type { ChangePattern } from '../../diff/patterns.js'
import type { DiffFile } from '../../diff/unified.js'
import type { ApplyResult } from '../../migrations/apply.js'
import type { BaseTree } from '../../git/store.js'
import type { ChainStep } from '../../migrations/plan.js'
import type { ScriptFile } from '../../migrations/discover.js'
import { validatorsSpec } from '../../migrations/atomic-validators.js'
import { ChainPool, sandboxLimitsFromEnv, workerCount } from '../../migrations/sandbox.js'
import { choosePython } from '../../migrations/python-interpreter.js'
import type { ValidationResult } from '../../schema/validate.js'
import type { TakeSnapshotResult } from '../../snapshots/take.js'
import { collectGarbage, collector } from '../../transaction/collect.js'
import { journalChangesOf } from '../../transaction/transaction.js'
import { prefetchingBlobSource } from '../../transaction/blob-prefetch.js'
import { takeInventory } from '../../vault/inventory.js'
import type { FileMode } from '../../vault/walk.js'
import { prepareBranchCommit, recordBranchCommit } from '../branch-commit.js'
import { fastForward } from '../fast-forward.js'
import { keepPreviewsMs, prunePreviews } from '../previews.js'
import { withWriteSession, type WriteSession } from '../session.js'
import { abandonChain, finishChain, startChain, StaleUnit, type ApplyProgress, type ChainOutput } from './chain.js'
import { guarded, type MigrateInput, type RunContext } from './context.js'
import { runPreflight, type Preflight } from './preflight.js'
import { resultCommitInfo } from './result-commit.js'
import { planOnSnapshot, takeRunSnapshot, type SnapshotPlan } from './snapshot.js'

export type { MigrateInput } from './context.js'

// How far each step of the chain got: applied to every unit (on the scratch tree),
// failed (the earliest step with an error; its errors are the run's), or not run.
export type StepStatus = 'applied' | 'failed' | 'not-run'

export interface MigrateResult {
  ok: boolean
  runId: string
  agentsRoot: string
  dryRun: boolean
  from: number | null
  target: number
  steps: Array<{ from: number; to: number; file: string; status: StepStatus }>
  // The run's snapshot; a dry run's has no ref (its commit is the pending ref's parent).
  snapshot: { name: string; ref: string | null; commit: string } | null
  result: { ref: string; commit: string } | null // refs/aas/pending/<id> (dry run) or refs/aas/runs/<id>
  units: number
  touched: number
  changed: string[] // unit paths whose bytes change
  diff: DiffFile[] // every changed file with both blob ids; contents (both sides) only in a dry run
  patterns: ChangePattern[] // the changed units grouped by what changed in them, largest group first
  validation: ValidationResult | null
  applied: boolean // the live vault now holds the migrated state
  branchCommit: { branch: string; commit: string } | null // with --commit
  prunedPreviews: string[] // previews older than AAS_KEEP_PREVIEWS, deleted by this run
  error: AasError | null
  errors: AasError[] // every error found (validation failures are in `validation`)
  durationMs: number
}

// A result from what the phases gave so far: `errors` empty means the run succeeded.
export function migrateResult(
  input: Pick<MigrateInput, 'runId' | 'target' | 'dryRun'> & { agentsRoot: string; started: number },
  got: Partial<MigrateResult>,
  errors: AasError[] = [],
): MigrateResult {
  return {
    ok: errors.length === 0,
    runId: input.runId,
    agentsRoot: input.agentsRoot,
    dryRun: input.dryRun,
    from: null,
    target: input.target,
    steps: [],
    snapshot: null,
    result: null,
    units: 0,
    touched: 0,
    changed: [],
    diff: [],
    patterns: [],
    validation: null,
    applied: false,
    branchCommit: null,
    prunedPreviews: [],
    ...got,
    error: errors[0] ?? null,
    errors,
    durationMs: Date.now() - input.started,
  }
}

// `--to vN`: lock → recover → pre-flight → snapshot → chain → validate → result commit →
// fast-forward → audit (docs/how-it-works.md, "A run"); a dry run stops before the
// fast-forward. Expected failures come back in the result.
export async function migrateVault(input: MigrateInput): Promise<MigrateResult> {
  const started = Date.now()
  const base = { ...input, agentsRoot: input.store.agentsRoot, started }
  return withWriteSession(
    {
      store: input.store,
      runId: input.runId,
      command: `--to v${input.target}${input.dryRun ? ' --dry-run' : ''}`,
      takeVaultLock: !input.dryRun,
      lockTimeoutMs: input.lockTimeoutMs,
      ...(input.onEvent ? { onEvent: input.onEvent } : {}),
      audit: (r: MigrateResult) => ({
        from: r.from,
        to: r.target,
        dry_run: r.dryRun,
        units_touched: r.touched,
        snapshot: r.snapshot?.name ?? null,
        result_commit: r.result?.commit ?? null,
        rolled_back: false,
        error: r.error,
      }),
    },
    async (session) => {
      const prunedPreviews = await prunePreviews(input.store, { now: input.now(), keepMs: keepPreviewsMs(input.env) })
      return runPipeline(input, session, (got, errors) => migrateResult(base, { ...got, prunedPreviews }, errors))
    },
    // Refused for the lock: the vault's version is still recorded (reading needs no lock).
    async (err) => migrateResult(base, err.code === 'LOCKED' ? { from: await vaultVersionOf(input.store.agentsRoot) } : {}, [err]),
  )
}

async function vaultVersionOf(root: string): Promise<number | null> {
  return takeInventory(root).then(
    ({ inventory }) => inventory.vaultVersion,
    () => null,
  )
}

type Finish = (got: Partial<MigrateResult>, errors?: AasError[]) => MigrateResult

async function runPipeline(input: MigrateInput, session: WriteSession, finish: Finish): Promise<MigrateResult> {
  const limits = {
    dryRun: input.dryRun,
    validateVersion: input.target,
    unitsReadable: true,
    ...sandboxLimitsFromEnv(input.env),
    python: choosePython({ flag: input.python, env: input.env }).command,
    patches: input.dryRun && input.patches ? { color: input.patches.color, renderer: moduleUrl(import.meta.url, '../../diff/unit-patch') } : null,
  }
  const ctx: RunContext = { root: input.store.agentsRoot, store: input.store, input, session, limits, budget: 0, tick: collector() }
  // The chain's workers: started with the scan, they parse the pre-flight's units, then
  // run the chain; a refusal or an error stops them.
  const pools: ChainPool[] = []
  const track = (p: ChainPool): ChainPool => (pools.push(p), p)
  try {
    const pre = await runPreflight(ctx, track)
    if (!pre.ok) return finish({ from: pre.from }, pre.errors)
    const progress: ApplyProgress = { announced: false, total: 0 }
    const early = startEarlyChain(ctx, pre.value, progress)
    const snap = await guarded(() => takeRunSnapshot(ctx, pre.value))
    if (!snap.ok) {
      early.snapshotFailed(snap.errors[0])
      await abandonChain(early.attempt, pre.value.pool, snap.errors[0])
      return finish({ from: pre.from }, snap.errors)
    }
    early.snapshotTaken(snap.value)
    const snapshot = { name: snap.value.name, ref: snap.value.ref, commit: snap.value.commit }
    const plan = await planOnSnapshot(ctx, pre.value, snap.value)
    if (!plan.ok || !plan.value.earlyValid) await abandonChain(early.attempt, pre.value.pool, new StaleUnit('the snapshot is not what the pre-flight read'))
    if (!plan.ok) return finish({ from: plan.from, units: plan.units, snapshot }, plan.errors)
    early.info.planned(plan.value.from, plan.value.steps)
    const planned = { from: plan.value.from, units: plan.units, snapshot, steps: stepsOf(plan.value.steps, null) }
    session.emit({ type: 'phase', phase: 'apply', total: plan.units })
    Object.assign(progress, { announced: true, total: plan.units })

    const ran = await runChain(ctx, early, plan.value, progress, track)
    await Promise.all(pools.map((p) => p.close())) // the workers' heaps go now, not after the fast-forward
    for (const units of [plan.value.units, pre.value.early]) units.length = 0
    early.held.clear()
    const steps = stepsOf(plan.value.steps, ran.applied)
    if (!ran.applied.ok || ran.commit === null) return finish({ ...planned, steps }, ran.applied.errors)
    collectGarbage() // the chain's texts and results
    session.emit({ type: 'phase', phase: 'validate', total: plan.units })
    const diff = ran.out.diffs.flat()
    const patterns = ran.out.patterns.patterns()
    const chained = {
      ...planned,
      steps,
      touched: ran.out.touched,
      diff,
      changed: diff.map((d) => d.path),
      patterns,
      validation: ran.applied.validation ?? null,
    }
    const ref = input.dryRun ? pendingRef(input.runId) : runRef(input.runId)
    await input.store.updateRef(ref, ran.commit, null)
    const recorded = { ...chained, result: { ref, commit: ran.commit } }
    const invalid = validationError(input, ran.applied.validation as ValidationResult)
    if (invalid) return finish(recorded, [invalid])
    if (input.dryRun) return finish(recorded)

    const moved = await guarded(() => applyToVault(ctx, snap.value, ran.commit as string, ran.out, diff))
    if (!moved.ok) return finish(recorded, moved.errors)
    const branch = moved.value
    if (!branch) return finish({ ...recorded, applied: true })
    const committed = await guarded(() => recordBranchCommit(input.store, branch.plan, branch.changes, branchMessage(input, plan.value.from, snapshot.name)))
    return committed.ok ? finish({ ...recorded, applied: true, branchCommit: committed.value }) : finish({ ...recorded, applied: true }, committed.errors)
  } finally {
    await Promise.all(pools.map((p) => p.close()))
  }
}

// Each planned step with how far it got, from the failed step the chain reports.
function stepsOf(steps: ReadonlyArray<ChainStep<ScriptFile>>, applied: ApplyResult | null): MigrateResult['steps'] {
  const failedAt = applied && !applied.ok ? (applied.failedStep?.from ?? null) : null
  return steps.map((s) => {
    let status: StepStatus = 'not-run'
    if (applied?.ok) status = 'applied'
    else if (applied && failedAt !== null) status = s.from < failedAt ? 'applied' : s.from === failedAt ? 'failed' : 'not-run'
    return { from: s.from, to: s.to, file: s.script.file, status }
  })
}

// The early chain: on the pre-flight's units while the snapshot is taken (scripts only
// map texts to texts, in a worker). A unit not held is read again and must have the
// pre-flight's blob id. Its result is used only when the snapshot holds exactly those
// units; else the chain runs again on the snapshot's units. While the snapshot is taken,
// one core is left to it (the reads here and git fast-import): one worker fewer runs the
// chain, and the idle one stays small.
function startEarlyChain(ctx: RunContext, pre: Preflight, progress: ApplyProgress) {
  const info = resultCommitInfo(ctx.input)
  let setBase!: (base: BaseTree) => void
  let noBase!: (err: unknown) => void
  const base = new Promise<BaseTree>((resolve, reject) => ((setBase = resolve), (noBase = reject)))
  const held = new Map([...pre.forSnapshot].map(([p, f]) => [p, f.bytes]))
  pre.pool.use(pre.pool.size - 1)
  const validators = pre.validators ? validatorsSpec(pre.validators, ctx.root) : null
  const attempt = startChain(
    ctx,
    { pool: pre.pool, steps: pre.steps.map((s) => s.script), base, commit: info.commit, validators },
    { vault: pre.early, held },
    progress,
  )
  return {
    attempt,
    base,
    info,
    held,
    validators,
    snapshotTaken(snap: TakeSnapshotResult): void {
      info.snapshotTaken(snap)
      setBase({ tree: snap.tree, entries: snap.entries, trees: snap.trees })
      pre.pool.use(pre.pool.size)
    },
    snapshotFailed: (err: unknown): void => noBase(err),
  }
}
type EarlyChain = ReturnType<typeof startEarlyChain>

// The early chain's result when it ran on the snapshot's units and no unit went stale;
// else the chain again, on the snapshot's units read from the store.
async function runChain(
  ctx: RunContext,
  early: EarlyChain,
  plan: SnapshotPlan,
  progress: ApplyProgress,
  track: (p: ChainPool) => ChainPool,
): Promise<{ applied: ApplyResult; commit: string | null; out: ChainOutput }> {
  if (plan.earlyValid) {
    try {
      return { ...(await finishChain(early.attempt)), out: early.attempt.out }
    } catch (err) {
      // A unit changed after the snapshot, before the chain read it again.
      if (!(err instanceof StaleUnit)) throw err
    }
  }
  const pool = track(new ChainPool(workerCount(plan.units.length, ctx.limits.workers), ctx.limits))
  const again = startChain(
    ctx,
    { pool, steps: plan.steps.map((s) => s.script), base: early.base, commit: early.info.commit, validators: early.validators },
    { store: plan.units },
    progress,
  )
  return { ...(await finishChain(again)), out: again.out }
}

function validationError(input: MigrateInput, validation: ValidationResult): AasError | null {
  if (validation.ok) return null
  const n = validation.failures.length
  return new AasError(
    'SCHEMA_INVALID',
    `${n} unit${n === 1 ? '' : 's'} would not be valid at v${input.target}; ${input.dryRun ? 'the real run would fail' : 'nothing was changed'}.`,
    {
      hint: `Fix the units listed (or the migration scripts), check with --to v${input.target} --dry-run, then run again.`,
      data: { failures: n },
    },
  )
}

// The fast-forward from the snapshot to the result commit. The changed units are the
// whole difference between the two trees (the chain edits unit texts only), so the
// journal is built from them rather than a tree diff. With --commit, the branch commit
// is prepared (and refused) before any live write.
async function applyToVault(ctx: RunContext, snap: TakeSnapshotResult, commit: string, out: ChainOutput, diff: readonly DiffFile[]) {
  const { input, store, session } = ctx
  const changes = journalChangesOf(
    diff.map((d) => ({
      path: d.path,
      status: 'modified' as const,
      oldMode: d.oldMode as FileMode,
      oldOid: d.oldOid as string,
      newMode: d.newMode as FileMode,
      newOid: d.newOid as string,
    })),
  )
  const plan = input.commit ? await prepareBranchCommit(store, changes) : null
  // New bytes held since the chain, the others read back from the store ahead of the writes.
  const rest = prefetchingBlobSource(
    store,
    changes.flatMap((c) => (c.newOid && !out.after.has(c.newOid) ? [c.newOid] : [])),
  )
  await fastForward(store, session, input.runId, {
    kind: 'migrate',
    from: snap.commit,
    to: commit,
    changes,
    blobs: async (oid) => out.after.get(oid) ?? rest(oid),
    tick: ctx.tick,
    env: input.env,
  }).finally(() => rest.close())
  return plan ? { plan, changes } : null
}

function branchMessage(input: MigrateInput, from: number | null, snapshot: string): string {
  return `Migrate vault to v${input.target}\n\nAas-Run-Id: ${input.runId}\nAas-From: ${from ?? 'empty'}\nAas-Target: ${input.target}\nAas-Snapshot: ${snapshot}\n`
}
