import { AasError } from '../../errors.js'
import type { PreReadFile } from '../../git/store.js'
import type { ApplyResult, UnitInput } from '../../migrations/apply.js'
import { discoverScripts, type ScriptFile } from '../../migrations/discover.js'
import { planChain, type ChainStep } from '../../migrations/plan.js'
import { checkPythonRun, choosePython, type PythonRunCheck } from '../../migrations/python-interpreter.js'
import { BATCH_UNITS, ChainPool, workerCount } from '../../migrations/sandbox.js'
import { decodeUnit, readUnit, readUnitVersion, summarize, type Inventory, type UnitReading } from '../../vault/inventory.js'
import type { UnitType } from '../../vault/rules.js'
import { settled } from '../../settled.js'
import { scanVault, type ScopeEntry } from '../../vault/walk.js'
import { bufferBytesFor, type ChainUnit, type PhaseResult, type RunContext } from './context.js'

// The pre-flight, on the live files: scripts, readability and the chain are checked
// before anything is written to the store, so that a refusal leaves no trace but its
// audit line (docs/how-it-works.md, "A run").

export interface Preflight {
  scripts: ScriptFile[]
  inventory: Inventory
  steps: Array<ChainStep<ScriptFile>> // the chain planned from the live units' versions
  early: ChainUnit[] // the units the early chain runs on, in the scan's order
  readings: Map<string, { oid: string | null; reading: UnitReading }> // by path
  forSnapshot: Map<string, PreReadFile> // bytes read, for the snapshot (up to the buffer)
  pool: ChainPool // its workers parsed the units; they run the early chain next
  validators: PythonRunCheck['validators'] // the installed atomic-agents' own, when they apply
}

// One unit as the pre-flight read it: its scan entry, blob id and reading.
interface PreflightUnit {
  entry: ScopeEntry
  oid: string | null // null: the file could not be read
  reading: UnitReading | null // null until the workers parsed it
  text: boolean // decodable and not a symlink: the chain runs on it
}

export function unreadableError(inv: Inventory): AasError {
  const list = inv.unreadable.map((u) => `${u.unitId}:${u.line}:${u.column}: ${u.message}`)
  return new AasError(
    'UNIT_UNREADABLE',
    `${inv.unreadable.length} unit${inv.unreadable.length === 1 ? '' : 's'} cannot be read, so no migration can run:\n  ${list.join('\n  ')}`,
    {
      hint: 'Fix the front matter at the line and column shown (often a value containing ": " that needs quotes), or exclude the file in _migrations/ignore; --status lists them too.',
      data: { units: inv.unreadable },
    },
  )
}

// Every unit read once and hashed here, and parsed in the pool's workers, a batch at a
// time, in the scan's order (path bytes, as git orders the snapshot's units). The vault
// version (`from`) is known once every unit is read, also when the plan is refused.
export async function runPreflight(ctx: RunContext, track: (pool: ChainPool) => ChainPool): Promise<PhaseResult<Preflight> & { from: number | null }> {
  const { root, input, limits } = ctx
  const discovery = await discoverScripts(root)
  if (discovery.errors.length > 0) return { ok: false, errors: discovery.errors, from: null }
  // The interpreter's check (a Python process) runs while the vault is read, for every
  // script found; it is the plan's check when the plan runs every .py script found (else
  // the plan's scripts are checked again, below).
  const choice = choosePython({ flag: input.python, env: input.env })
  const early = discovery.scripts.length > 0 ? settled(checkPythonRun(discovery.scripts, choice, input.target)) : null
  const scan = await scanVault(root)
  ctx.budget = bufferBytesFor(input.env, scan.units.length)
  const pool = track(new ChainPool(workerCount(scan.units.length, limits.workers), limits))
  const read = await readAndParse(ctx, scan.units, pool)
  if (!read.ok) return { ok: false, errors: read.errors, from: null }
  const { pre, forSnapshot } = read.value
  const inventory = summarize(pre.map((u) => ({ entry: u.entry, reading: u.reading as UnitReading })))
  if (inventory.unreadable.length > 0) return { ok: false, errors: [unreadableError(inventory)], from: null }
  const plan = planChain({ current: inventory.vaultVersion, target: input.target, scripts: discovery.scripts })
  if (!plan.ok) return { ok: false, errors: [plan.error], from: inventory.vaultVersion }
  // A .py step needs its interpreter (and PyYAML, and scripts that compile) before
  // anything is written; an installed atomic-agents adds its own validators.
  const planned = plan.steps.map((s) => s.script)
  const python =
    early && plan.steps.length > 0 && samePython(planned, discovery.scripts)
      ? await early.then((r) => r())
      : await checkPythonRun(planned, choice, plan.steps.length > 0 ? input.target : null)
  if (python.error) return { ok: false, errors: [python.error], from: inventory.vaultVersion }
  return {
    ok: true,
    from: inventory.vaultVersion,
    value: {
      scripts: discovery.scripts,
      inventory,
      steps: plan.steps,
      early: pre.filter((u) => u.text).map((u) => ({ path: u.entry.path, unitType: u.entry.unitType as UnitType, oid: u.oid as string, mode: u.entry.mode })),
      readings: new Map(pre.map((u) => [u.entry.path, { oid: u.oid, reading: u.reading as UnitReading }])),
      forSnapshot,
      pool,
      validators: python.validators,
    },
  }
}

// Whether two script lists have the same .py scripts (what the interpreter's check reads).
function samePython(a: readonly ScriptFile[], b: readonly ScriptFile[]): boolean {
  const py = (l: readonly ScriptFile[]) =>
    l
      .filter((s) => s.ext === 'py')
      .map((s) => s.path)
      .sort()
      .join('\0')
  return py(a) === py(b)
}

// Read and hash every unit, have the workers parse the decodable ones, and keep bytes
// for the snapshot and the chain up to the buffer: the snapshot takes a unit's bytes from
// here when its stat has not changed since the scan before this read (and is not racy).
async function readAndParse(
  ctx: RunContext,
  units: readonly ScopeEntry[],
  pool: ChainPool,
): Promise<PhaseResult<{ pre: PreflightUnit[]; forSnapshot: Map<string, PreReadFile> }>> {
  const { root, session, budget, tick } = ctx
  const pre: PreflightUnit[] = new Array(units.length)
  const forSnapshot = new Map<string, PreReadFile>()
  let held = 0
  let failure: ApplyResult | null = null
  const parsing: Array<Promise<void>> = []
  let batch: UnitInput[] = []
  let batchAt: number[] = []
  const parse = async (): Promise<void> => {
    if (batch.length === 0) return
    const [sent, at] = [batch, batchAt]
    batch = []
    batchAt = []
    await pool.room()
    parsing.push(
      pool.read(sent).then((r) => {
        if (!r.ok) failure ??= r.result
        else r.readings.forEach((reading, k) => ((pre[at[k] as number] as PreflightUnit).reading = reading))
      }),
    )
  }
  for (let i = 0; i < units.length; i++) {
    const entry = units[i] as ScopeEntry
    const r = readUnit(root, entry)
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
  if (failure) return { ok: false, errors: (failure as ApplyResult).errors }
  return { ok: true, value: { pre, forSnapshot } }
}
