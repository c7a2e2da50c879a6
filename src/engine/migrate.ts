import { AasError } from '../errors.js'
import { openStore } from '../git/open-store.js'
import type { BackendName, FileChange, PreReadFile, Store, TreeEntry } from '../git/store.js'
import type { ApplyResult, UnitApplyResult, UnitInput } from '../migrations/apply.js'
import type { ScriptFile } from '../migrations/discover.js'
import { discoverScripts } from '../migrations/discover.js'
import { planChain } from '../migrations/plan.js'
import { prepareChainContained, runChainContained, sandboxLimitsFromEnv, type PreparedChain } from '../migrations/sandbox.js'
import type { ValidationResult } from '../schema/validate.js'
import { resolveAgentsRoot } from '../vault/agents-root.js'
import { decodeUnit, readUnits, readUnitVersion, summarize, type Inventory, type UnitContent, type UnitReading } from '../vault/inventory.js'
import { unitTypeOf, type UnitType } from '../vault/rules.js'
import type { FileMode } from '../vault/walk.js'
import { ENGINE_VERSION } from '../version.js'
import { hashBlob } from './blob-hash.js'
import { prepareBranchCommit, recordBranchCommit } from './branch-commit.js'
import type { DiffFile } from './diff.js'
import { takeSnapshot } from './snapshots.js'
import { newRunId } from './run-id.js'
import { journalChangesOf, runTransaction } from './transaction.js'
import { withWriteSession, type EngineEvent, type WriteSession } from './session.js'

export const PENDING_REF_PREFIX = 'refs/aas/pending/'
export const RUN_REF_PREFIX = 'refs/aas/runs/'

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

interface SnapshotUnit {
  entry: TreeEntry
  unitType: UnitType
  bytes: Buffer
  reading?: UnitReading // known from the pre-flight when the bytes are the same
}

// Units of a snapshot tree, with their bytes (never the live files): a unit whose
// pre-flight read has the snapshot's blob id is taken from that read, with its
// reading; only the others are read from the store and parsed again.
async function readSnapshotUnits(store: Store, tree: string, preflight: ReadonlyMap<string, UnitContent> = new Map()): Promise<SnapshotUnit[]> {
  const entries = (await store.listTree(tree)).filter((e) => e.mode !== '120000' && unitTypeOf(e.path) !== null)
  const byOid = new Map<string, Buffer>()
  const known = new Map<string, UnitContent>()
  for (const e of entries) {
    const c = preflight.get(e.path)
    if (c && c.oid === e.oid) known.set(e.path, c)
  }
  const missing = [...new Set(entries.filter((e) => !known.has(e.path)).map((e) => e.oid))]
  for await (const { oid, content } of store.readBlobs(missing)) byOid.set(oid, content)
  return entries.map((entry) => {
    const c = known.get(entry.path)
    const unitType = unitTypeOf(entry.path) as UnitType
    return c ? { entry, unitType, bytes: c.bytes, reading: c.reading } : { entry, unitType, bytes: byOid.get(entry.oid) as Buffer }
  })
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

function unitInputOf(unitId: string, unitType: UnitType, bytes: Buffer): UnitInput {
  const decoded = decodeUnit(bytes)
  return { unitId, unitType, text: decoded.ok ? decoded.text : '' }
}

function sameSteps(a: ReadonlyArray<{ script: ScriptFile }>, b: ReadonlyArray<{ script: ScriptFile }>): boolean {
  return a.length === b.length && a.every((s, i) => s.script.file === b[i]?.script.file && s.script.from === b[i]?.script.from)
}

interface EarlyChain {
  inputs: UnitInput[]
  result: Promise<ApplyResult>
  matches(units: readonly SnapshotUnit[]): boolean // the snapshot holds exactly these units and bytes
  cancel(): Promise<void>
}

function inventoryOf(units: readonly SnapshotUnit[]): Inventory {
  return summarize(units.map((u) => ({ entry: { path: u.entry.path, unitType: u.unitType }, reading: u.reading ?? readUnitVersion(u.bytes) })))
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
      // Workers started for the pre-flight wait for a plan: a refusal or an error stops them.
      let prepared = null as PreparedChain | null
      try {
        return await (async (): Promise<MigrateResult> => {
          // Pre-flight on the live files: refusals happen before anything is written to the store.
          const discovery = await discoverScripts(root.path)
          if (discovery.errors.length > 0) return fail(discovery.errors)
          const read = await readUnits(root.path, { onProgress: (done) => session.emit({ type: 'progress', phase: 'enumerate', done, total: 0 }) })
          // The units are parsed in the chain's workers, in the scan's order (path bytes, as
          // git orders the snapshot's units); the workers then wait for the plan made from
          // their readings.
          const texts: UnitInput[] = []
          const oids: string[] = []
          const undecodable = new Map<string, UnitReading>()
          for (const { entry, read: r } of read.units) {
            if (!r.ok || entry.mode === '120000') continue
            const decoded = decodeUnit(r.bytes)
            if (!decoded.ok) undecodable.set(entry.path, { kind: 'unreadable', error: decoded.error })
            else {
              texts.push({ unitId: entry.path, unitType: entry.unitType as UnitType, text: decoded.text })
              oids.push(r.oid)
            }
          }
          const limits = { dryRun, validateVersion: target, unitsReadable: true, ...sandboxLimitsFromEnv(env) }
          prepared = prepareChainContained(texts, limits)
          const got = await prepared.readings
          if (!got.ok) return fail(got.result.errors)
          const parsed = new Map(texts.map((t, i) => [t.unitId, got.readings[i] as UnitReading]))
          const preRead = new Map<string, UnitContent>()
          // The snapshot takes a unit's bytes from here when its stat has not changed since
          // the scan before this read (and is not racy): one read of each unit, not two.
          const forSnapshot = new Map<string, PreReadFile>()
          const inventory = summarize(
            read.units.map(({ entry, read: r }) => {
              if (!r.ok) return { entry, reading: r.reading }
              const reading = undecodable.get(entry.path) ?? parsed.get(entry.path) ?? readUnitVersion(r.bytes)
              preRead.set(entry.path, { oid: r.oid, bytes: r.bytes, reading })
              if (r.bytes.length === entry.size) forSnapshot.set(entry.path, { bytes: r.bytes, oid: r.oid, size: entry.size, mtimeMs: entry.mtimeMs, ctimeMs: entry.ctimeMs, ino: entry.ino })
              return { entry, reading }
            }),
          )
          read.units.length = 0
          const live = { inventory, contents: preRead }
          if (live.inventory.unreadable.length > 0) return fail([unreadableError(live.inventory)])
          const prePlan = planChain({ current: live.inventory.vaultVersion, target, scripts: discovery.scripts })
          result.from = live.inventory.vaultVersion
          if (!prePlan.ok) return fail([prePlan.error])

          // The chain starts on the pre-flight's texts while the snapshot is taken (scripts
          // only map texts to texts, in a worker); its result is used only when the snapshot
          // holds exactly those units, else the chain runs again on the snapshot's units.
          const early: EarlyChain = {
            inputs: texts,
            result: prepared.run(prePlan.steps.map((s) => s.script)),
            matches: (units) => units.length === texts.length && units.every((u, i) => u.entry.path === texts[i]?.unitId && u.entry.oid === oids[i]),
            cancel: (prepared as PreparedChain).cancel,
          }
          let snap: Awaited<ReturnType<typeof takeSnapshot>>
          let units: SnapshotUnit[]
          try {
            // The snapshot: its name is announced before any live byte can change.
            session.emit({ type: 'phase', phase: 'snapshot', total: 0 })
            snap = await takeSnapshot(store, { target, from: live.inventory.vaultVersion, runId, now: now(), preRead: forSnapshot, onProgress: (done, total) => session.emit({ type: 'progress', phase: 'snapshot', done, total }) })
            result.snapshot = { name: snap.name, ref: snap.ref, commit: snap.commit }
            session.emit({ type: 'snapshot', name: snap.name, ref: snap.ref, commit: snap.commit, files: snap.files })
            // From here on, everything reads the snapshot, not the live files.
            units = await readSnapshotUnits(store, snap.tree, live.contents)
          } catch (err) {
            await early.cancel()
            throw err
          }
          const inv = inventoryOf(units)
          result.units = units.length
          result.from = inv.vaultVersion
          const plan = inv.unreadable.length > 0 ? null : planChain({ current: inv.vaultVersion, target, scripts: discovery.scripts })
          const earlyValid = plan !== null && plan.ok && sameSteps(plan.steps, prePlan.steps) && early.matches(units)
          if (!earlyValid) await early.cancel()
          if (inv.unreadable.length > 0) return fail([unreadableError(inv)])
          if (!plan?.ok) return fail([(plan as Extract<ReturnType<typeof planChain>, { ok: false }>).error])
          result.steps = plan.steps.map((s) => ({ from: s.from, to: s.to, file: s.script.file }))

          const inputs = earlyValid ? early.inputs : units.map((u) => unitInputOf(u.entry.path, u.unitType, u.bytes))
          // From here on the texts are the only copy of the units' bytes kept.
          live.contents?.clear()
          const entryOf = new Map(units.map((u) => [u.entry.path, u.entry]))
          units.length = 0
          session.emit({ type: 'phase', phase: 'apply', total: inputs.length })
          // The chain runs in workers that can be stopped (sandbox.ts). Validation runs
          // there too, on the documents the chain parsed (one parse less per unit).
          const applied = earlyValid ? await early.result : await runChainContained(plan.steps.map((s) => s.script), inputs, limits)
          if (!applied.ok) return fail(applied.errors)
          result.touched = applied.units.filter((u) => u.touched).length
          session.emit({ type: 'phase', phase: 'validate', total: applied.units.length })
          const validation = applied.validation as ValidationResult
          result.validation = validation

          const changedUnits = applied.units.filter((u) => u.after !== u.before)
          const contents = new Map<string, Buffer>()
          const fileChanges: FileChange[] = []
          result.changed = changedUnits.map((u) => u.unitId)
          const encoded = encodeAll(changedUnits.map((u) => u.after))
          result.diff = changedUnits.map((u: UnitApplyResult, i) => {
            const entry = entryOf.get(u.unitId) as TreeEntry
            const content = encoded[i] as Buffer
            const oid = hashBlob(content)
            contents.set(oid, content)
            fileChanges.push({ path: u.unitId, mode: entry.mode, content })
            return { path: u.unitId, oldMode: entry.mode, newMode: entry.mode, oldOid: entry.oid, newOid: oid, oldContent: dryRun ? Buffer.from(u.before, 'utf8') : null, newContent: dryRun ? content : null }
          })

          // Only the changed units' new bytes (in `contents`) are needed from here on.
          inputs.length = 0
          applied.units.length = 0
          changedUnits.length = 0
          const message = `${dryRun ? 'Preview of' : 'Migrate'} v${inv.vaultVersion} -> v${target}\n\n${trailers({
            'Aas-Run-Id': runId,
            'Aas-From': inv.vaultVersion,
            'Aas-Target': target,
            'Aas-Snapshot': snap.name,
            'Aas-Dry-Run': String(dryRun),
            'Aas-Units-Touched': result.touched,
            'Aas-Engine-Version': ENGINE_VERSION,
          })}\n`
          // Blobs, trees and commit in one pass, on the snapshot's tree as the scan knew it.
          const { commit } = await store.writeCommitWithChanges({ tree: snap.tree, entries: snap.entries, trees: snap.trees }, fileChanges, { parents: [snap.commit], message, timestamp: Math.floor(now().getTime() / 1000) })
          fileChanges.length = 0
          const ref = (dryRun ? PENDING_REF_PREFIX : RUN_REF_PREFIX) + runId
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
          await session.withAgentLocks(changes.map((c) => c.path), async () => {
            session.emit({ type: 'phase', phase: 'fast-forward', total: changes.length })
            await runTransaction({
              store,
              runId,
              kind: 'migrate',
              from: snap.commit,
              to: commit,
              changes,
              blobs: async (oid) => contents.get(oid) ?? store.readBlob(oid),
              faultName: 'mid-fast-forward',
              onProgress: (done, total) => session.emit({ type: 'progress', phase: 'fast-forward', done, total }),
            })
          })
          result.applied = true
          if (commitPlan) result.branchCommit = await recordBranchCommit(store, commitPlan, changes, `Migrate vault to v${target}\n\n${trailers({ 'Aas-Run-Id': runId, 'Aas-From': inv.vaultVersion, 'Aas-Target': target, 'Aas-Snapshot': snap.name })}\n`)
          result.ok = true
          return result
        })()
      } finally {
        await prepared?.cancel()
      }
    },
    (err) => fail([err]),
  ).then((r) => {
    r.durationMs = Date.now() - started
    return r
  })
}
