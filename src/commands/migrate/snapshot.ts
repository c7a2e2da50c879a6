import type { TakeSnapshotResult } from '../../snapshots/take.js'
import { takeSnapshot } from '../../snapshots/take.js'
import { planChain, type ChainStep } from '../../migrations/plan.js'
import type { ScriptFile } from '../../migrations/discover.js'
import { collectGarbage } from '../../transaction/collect.js'
import { readUnitVersion, summarize, type UnitReading } from '../../vault/inventory.js'
import { unitTypeOf } from '../../vault/rules.js'
import { unreadableError, type Preflight } from './preflight.js'
import type { ChainUnit, PhaseResult, RunContext } from './context.js'

// The run's snapshot, and the chain planned again on what it holds: from here on,
// everything reads the snapshot, not the live files.

// The snapshot: its name is announced before any live byte can change.
export async function takeRunSnapshot(ctx: RunContext, pre: Preflight): Promise<TakeSnapshotResult> {
  const { input, session, store } = ctx
  let done = 0
  collectGarbage() // the pre-flight's reads and parse results
  session.emit({ type: 'phase', phase: 'snapshot', total: 0 })
  const snap = await takeSnapshot(store, {
    target: input.target,
    from: pre.inventory.vaultVersion,
    runId: input.runId,
    now: input.now(),
    preRead: pre.forSnapshot,
    ref: !input.dryRun,
    onProgress: (n, total) => {
      ctx.tick(n - done)
      done = n
      session.emit({ type: 'progress', phase: 'snapshot', done: n, total })
    },
  })
  pre.forSnapshot.clear()
  collectGarbage() // the snapshot's reads and trees
  session.emit({ type: 'snapshot', name: snap.name, ref: snap.ref, commit: snap.commit, files: snap.files })
  return snap
}

export interface SnapshotPlan {
  from: number | null // the snapshot's vault version; null: an empty vault
  units: ChainUnit[] // the snapshot's units, in its order
  steps: Array<ChainStep<ScriptFile>>
  earlyValid: boolean // the early chain ran on exactly these units with these steps
}

// The snapshot's units, with the pre-flight's reading where the blob is the same, else
// read from the store; then the chain planned on their versions. `from` is known also
// when the plan is refused.
export async function planOnSnapshot(
  ctx: RunContext,
  pre: Preflight,
  snap: TakeSnapshotResult,
): Promise<PhaseResult<SnapshotPlan> & { from: number | null; units: number }> {
  const units: ChainUnit[] = []
  for (const e of snap.entries) {
    const unitType = e.mode === '120000' ? null : unitTypeOf(e.path)
    if (unitType) units.push({ path: e.path, unitType, oid: e.oid, mode: e.mode })
  }
  const readings = new Map<string, UnitReading>()
  const unknown = units.filter((u) => {
    const p = pre.readings.get(u.path)
    if (p?.oid === u.oid) readings.set(u.path, p.reading)
    return p?.oid !== u.oid
  })
  for await (const { oid, content } of ctx.store.readBlobs([...new Set(unknown.map((u) => u.oid))])) {
    const reading = readUnitVersion(content)
    for (const u of unknown) if (u.oid === oid) readings.set(u.path, reading)
  }
  pre.readings.clear()
  const inv = summarize(units.map((u) => ({ entry: { path: u.path, unitType: u.unitType }, reading: readings.get(u.path) as UnitReading })))
  readings.clear()
  const counted = { from: inv.vaultVersion, units: units.length }
  if (inv.unreadable.length > 0) return { ok: false, errors: [unreadableError(inv)], ...counted }
  const plan = planChain({ current: inv.vaultVersion, target: ctx.input.target, scripts: pre.scripts })
  if (!plan.ok) return { ok: false, errors: [plan.error], ...counted }
  const earlyValid = sameSteps(plan.steps, pre.steps) && sameUnits(pre.early, units)
  return { ok: true, value: { from: inv.vaultVersion, units, steps: plan.steps, earlyValid }, ...counted }
}

function sameSteps(a: ReadonlyArray<{ script: ScriptFile }>, b: ReadonlyArray<{ script: ScriptFile }>): boolean {
  return a.length === b.length && a.every((s, i) => s.script.file === b[i]?.script.file && s.script.from === b[i]?.script.from)
}

function sameUnits(a: readonly ChainUnit[], b: readonly ChainUnit[]): boolean {
  return a.length === b.length && a.every((u, i) => u.path === b[i]?.path && u.oid === b[i]?.oid && u.mode === b[i]?.mode)
}
