import type { BaseTree, CommitInput, FileChange, Store } from '../../git/store.js'
import type { ApplyResult, UnitInput } from '../../migrations/apply.js'
import type { ScriptFile } from '../../migrations/discover.js'
import type { ValidatorsSpec } from '../../migrations/atomic-validators.js'
import { applyBatches, BATCH_UNITS, type ChainPool } from '../../migrations/sandbox.js'
import { PatternCollector } from '../../diff/patterns.js'
import type { DiffFile } from '../../diff/unified.js'
import type { ValidationResult } from '../../schema/validate.js'
import { hashBlob } from '../../transaction/blob-hash.js'
import { decodeUnit, readUnit } from '../../vault/inventory.js'
import type { UnitType } from '../../vault/rules.js'
import type { FileMode } from '../../vault/walk.js'
import type { ChainUnit, RunContext } from './context.js'

// The chain on a scratch tree: units go to the workers in batches, each batch's changed
// texts come back and go straight into the result commit (written as the chain runs, on
// the snapshot's tree once it is known), so the chain's output is never held whole.

// The pre-flight read the unit again and it is no longer what it read: the early chain's
// input would not be the snapshot's.
export class StaleUnit extends Error {}

// Changes fed to a result commit while the chain still runs (Store.writeCommitWithChanges
// reads it as its source); fail() makes that write fail, writing no commit.
// The chain waits (room()) while the changes not yet taken hold more than `limit` bytes
// (the run's buffer, bufferBytesFor): else, while the snapshot's git and the chain share
// the cores, the result commit's git falls behind and the queue grows (up to 69 MB of new
// bytes at 50,000 units, which took the run's peak memory over 300 MB).
export class ChangeQueue implements AsyncIterable<FileChange> {
  // Taken by index, each slot cleared as it is taken: shift() on tens of thousands of
  // items can copy the array each time, and a batch swapped out whole would keep the
  // taken bytes referenced until its last one is taken.
  private items: FileChange[] = []
  private head = 0 // items before it were taken
  private done = false
  private error: unknown = null
  private wake: (() => void) | null = null
  private pending = 0 // bytes pushed and not yet taken
  private closed = false // the reader stopped: nothing will be taken any more
  private roomWaiters: Array<() => void> = []

  constructor(private readonly limit: number) {}

  push(change: FileChange): void {
    this.items.push(change)
    this.pending += bytesOf(change)
    this.wake?.()
  }

  end(): void {
    this.done = true
    this.wake?.()
    this.release()
  }

  fail(err: unknown): void {
    this.error = err
    this.wake?.()
    this.release()
  }

  // Resolves once the changes not yet taken hold at most `limit` bytes (or the queue ended,
  // failed or lost its reader: then waiting would never end).
  async room(): Promise<void> {
    while (this.pending > this.limit && !this.done && !this.error && !this.closed) await new Promise<void>((resolve) => this.roomWaiters.push(resolve))
  }

  private release(): void {
    const waiters = this.roomWaiters
    this.roomWaiters = []
    for (const w of waiters) w()
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<FileChange> {
    try {
      for (;;) {
        if (this.error) throw this.error
        const change = this.items[this.head]
        if (change) {
          this.items[this.head++] = undefined as unknown as FileChange // dropped once taken
          if (this.head === this.items.length) {
            this.items = []
            this.head = 0
          }
          this.pending -= bytesOf(change)
          if (this.pending <= this.limit) this.release()
          yield change
          continue
        }
        if (this.done) return
        await new Promise<void>((resolve) => (this.wake = resolve))
        this.wake = null
      }
    } finally {
      this.closed = true
      this.release()
    }
  }
}

function bytesOf(change: FileChange): number {
  return 'content' in change ? change.content.length : 0
}

// What a run of the chain gave so far.
export interface ChainOutput {
  queue: ChangeQueue // changed units' new bytes, to the result commit
  diffs: DiffFile[][] // per batch, in batch order: the changed units
  touched: number
  done: number
  held: number // bytes kept in `after` (and, in a dry run, the diff's old sides)
  after: Map<string, Buffer> // new bytes kept, by blob id
  validation: ValidationResult | null // known when the chain has ended, before its commit is written
  patterns: PatternCollector // what changed in each changed unit, grouped at the end
}

// One run of the chain over a list of units, and the result commit it feeds.
export interface ChainAttempt {
  out: ChainOutput
  run: Promise<ApplyResult>
  writing: Promise<{ commit: string }>
}

// The apply phase's progress: announced once the snapshot is planned (the early chain
// runs before that, silently).
export interface ApplyProgress {
  announced: boolean
  total: number
}

// A unit as sent to the chain: its text, with the blob id and mode it was read with.
type ChainInput = UnitInput & { oid: string; mode: FileMode }

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

function unitInputOf(unitId: string, unitType: UnitType, bytes: Buffer): UnitInput {
  const decoded = decodeUnit(bytes)
  return { unitId, unitType, text: decoded.ok ? decoded.text : '' }
}

// The snapshot's units in batches, their bytes read from the store.
async function* fromStore(store: Store, units: readonly ChainUnit[], queue: ChangeQueue): AsyncGenerator<ChainInput[]> {
  for (let i = 0; i < units.length; i += BATCH_UNITS) {
    await queue.room()
    const slice = units.slice(i, i + BATCH_UNITS)
    const bytes = new Map<string, Buffer>()
    for await (const { oid, content } of store.readBlobs([...new Set(slice.map((u) => u.oid))])) bytes.set(oid, content)
    yield slice.map((u) => ({ ...unitInputOf(u.path, u.unitType, bytes.get(u.oid) as Buffer), oid: u.oid, mode: u.mode }))
  }
}

// The pre-flight's units in batches: the bytes it held, else read again from the vault,
// where they must still have the pre-flight's blob id (StaleUnit otherwise).
async function* fromVault(root: string, units: readonly ChainUnit[], held: Map<string, Buffer>, queue: ChangeQueue): AsyncGenerator<ChainInput[]> {
  for (let i = 0; i < units.length; i += BATCH_UNITS) {
    await queue.room()
    yield units.slice(i, i + BATCH_UNITS).map((u) => {
      let bytes = held.get(u.path)
      if (bytes) held.delete(u.path)
      else {
        const r = readUnit(root, u)
        if (!r.ok || r.oid !== u.oid) throw new StaleUnit(u.path)
        bytes = r.bytes
      }
      return { ...unitInputOf(u.path, u.unitType, bytes), oid: u.oid, mode: u.mode }
    })
  }
}

// Each batch's result as it comes: the changed units' new bytes to the result commit,
// kept here (with, in a dry run, the old bytes for the diff, or the patch the worker
// rendered in their place) only up to the buffer; once it is full, the workers render
// no more patches.
function collectInto(ctx: RunContext, out: ChainOutput, progress: ApplyProgress, pool: ChainPool) {
  const { dryRun } = ctx.input
  return (units: readonly UnitInput[], r: ApplyResult, k: number): void => {
    const inputs = units as readonly ChainInput[]
    out.done += units.length
    ctx.tick(units.length)
    if (progress.announced) ctx.session.emit({ type: 'progress', phase: 'apply', done: out.done, total: progress.total })
    if (!r.ok) return
    const changed = r.units.flatMap((u, j) => (u.after === u.before ? [] : [{ u, c: inputs[j] as ChainInput }]))
    for (const { u, c } of changed) out.patterns.add(c.unitId, u.before, u.after)
    for (const u of r.units) if (u.touched) out.touched++
    r.units.length = 0
    const after = encodeAll(changed.map((x) => x.u.after))
    const oids = after.map(hashBlob)
    // A patch is taken only when it names the bytes this thread will write.
    const patches = dryRun ? changed.map(({ u }, j) => (u.patch?.newOid === oids[j] ? u.patch : null)) : []
    const rendered = patches.length > 0 && patches.every((p) => p !== null)
    const size = rendered ? patches.reduce((n, p) => n + (p?.text.length ?? 0), 0) : after.reduce((n, b) => n + b.length, 0) * (dryRun ? 2 : 1)
    const keep = out.held + size <= ctx.budget
    if (keep) out.held += size
    else if (dryRun) pool.stopPatches()
    const before = keep && dryRun && !rendered ? encodeAll(changed.map((x) => x.u.before)) : null
    out.diffs[k] = changed.map(({ c }, j) => {
      const content = after[j] as Buffer
      const oid = oids[j] as string
      out.queue.push({ path: c.unitId, mode: c.mode, content, oid })
      if (keep && !dryRun) out.after.set(oid, content)
      const patch = keep && rendered ? patches[j] : null
      return {
        path: c.unitId,
        oldMode: c.mode,
        newMode: c.mode,
        oldOid: c.oid,
        newOid: oid,
        oldContent: before?.[j] ?? null,
        newContent: before ? content : null,
        ...(patch ? { patch: { color: patch.color, text: patch.text } } : {}),
      }
    })
  }
}

export interface ChainSource {
  pool: ChainPool
  steps: readonly ScriptFile[]
  base: Promise<BaseTree> // the snapshot's tree, once taken
  commit: (out: ChainOutput) => Omit<CommitInput, 'tree'> // read when the chain's output has ended
  validators: ValidatorsSpec | null // the installed atomic-agents' validators, when they apply
}

// Start the chain on units read from the vault (the early chain, during the snapshot)
// or from the store (the snapshot's units), writing its result commit as it goes.
export function startChain(
  ctx: RunContext,
  source: ChainSource,
  units: { vault: readonly ChainUnit[]; held: Map<string, Buffer> } | { store: readonly ChainUnit[] },
  progress: ApplyProgress,
): ChainAttempt {
  const out: ChainOutput = {
    queue: new ChangeQueue(ctx.budget),
    diffs: [],
    touched: 0,
    done: 0,
    held: 0,
    after: new Map(),
    validation: null,
    patterns: new PatternCollector(),
  }
  const batches = 'vault' in units ? fromVault(ctx.root, units.vault, units.held, out.queue) : fromStore(ctx.store, units.store, out.queue)
  const run = (async (): Promise<ApplyResult> =>
    (await source.pool.load(source.steps, source.validators)) ?? applyBatches(source.pool, batches, collectInto(ctx, out, progress, source.pool)))()
  run.catch(() => undefined)
  const writing = ctx.store.writeCommitWithChanges(source.base, out.queue, () => source.commit(out))
  writing.catch(() => undefined)
  return { out, run, writing }
}

// Stop an attempt whose result will not be used: its workers, and its commit unwritten.
export async function abandonChain(attempt: ChainAttempt, pool: ChainPool, reason: unknown): Promise<void> {
  pool.cancel()
  attempt.out.queue.fail(reason)
  await Promise.allSettled([attempt.run, attempt.writing])
}

// The chain's result and, when every unit passed every step, its result commit.
export async function finishChain({ run, out, writing }: ChainAttempt): Promise<{ applied: ApplyResult; commit: string | null }> {
  let applied: ApplyResult
  try {
    applied = await run
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
  out.validation = applied.validation ?? null
  out.queue.end()
  return { applied, commit: (await writing).commit }
}
