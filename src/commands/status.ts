import path from 'node:path'
import type { AasError } from '../errors.js'
import { pathExists } from '../fs-exists.js'
import { loadReadingCache, READING_CACHE_FILE } from '../git/reading-cache.js'
import type { Store, StoreLocation } from '../git/store.js'
import { validatorsInfo, type ValidatorsInfo } from '../migrations/validators-info.js'
import { discoverScripts, type ScriptFile } from '../migrations/discover.js'
import { planChain } from '../migrations/plan.js'
import { probePython, type PythonProbe } from '../migrations/python-interpreter.js'
import type { RecoveryResult } from '../transaction/transaction.js'
import type { AgentsRoot } from '../vault/agents-root.js'
import { takeInventory, type Inventory } from '../vault/unit-reading.js'
import type { EngineEvent } from './session.js'

// The normalised request (src/api.ts resolves the vault and locates its store).
export interface StatusInput {
  root: AgentsRoot
  location: StoreLocation
  storeExists: boolean // false: no store yet; --status creates none
  openStore: () => Promise<Store> // called only when there is an interrupted transaction to complete
  onProgress?: (done: number) => void
  onEvent?: (event: EngineEvent) => void
  python?: string | undefined // --python: the interpreter reported for .py scripts
  env?: NodeJS.ProcessEnv // where $AAS_PYTHON and $VIRTUAL_ENV are read
}

export interface ChainSummary {
  latest: number | null // highest version a script reaches
  steps: Array<{ from: number; to: number; file: string }>
  complete: boolean
  gap: { from: number; to: number } | null
}

// The cache of unit readings in the store's state folder (src/git/reading-cache.ts).
export interface StatusCacheInfo {
  file: string
  loaded: boolean // the file held a usable cache
  read: number // units read from disk this time (the others were known by their stat)
  written: boolean // the file was (re)written
}

export interface StatusResult {
  agentsRoot: AgentsRoot
  store: { kind: StoreLocation['kind']; gitDir: string; exists: boolean }
  inventory: Inventory
  scripts: Array<Pick<ScriptFile, 'file' | 'from' | 'to'>>
  scriptErrors: Array<ReturnType<AasError['toJSON']>>
  chain: ChainSummary
  skipped: Array<{ path: string; reason: string }>
  recovered: RecoveryResult | null // an interrupted transaction this command completed first
  python: PythonProbe | null // the interpreter .py scripts would run with; null when there is no .py script
  validators: ValidatorsInfo // the installed atomic-agents' own validators, or why the built-in rules apply alone
  cache: StatusCacheInfo | null // null: no cache is kept (no store, or no snapshot taken yet)
}

// The journal's name in the state folder: JOURNAL_FILE of src/transaction/journal.ts,
// not imported from there because that module loads zod (test/commands/status.test.ts
// checks that both agree).
export const JOURNAL_FILE_NAME = 'journal.json'

// Read-only as far as the vault goes: names scripts without executing them
// (docs/how-it-works.md, "Status and doctor") and takes no lock, except to complete an
// interrupted transaction it finds. Where the engine already keeps state (the store's
// aas/ folder, made by the first snapshot) it keeps a cache of unit readings, so that a
// repeat reads only the units whose stat changed; anywhere else it writes nothing.
export async function vaultStatus({
  root,
  location,
  storeExists,
  openStore,
  onProgress,
  onEvent,
  python,
  env = process.env,
}: StatusInput): Promise<StatusResult> {
  // An interrupted transaction is completed first: it may put back scripts too.
  const recovered = storeExists ? await recoverIfJournal(location, openStore, onEvent) : null
  // The interpreter only, never a script. Started as soon as the scripts are listed (a
  // readdir): through a version manager's shim (pyenv) it can take longer than the whole
  // walk, so it waits for nothing else (and it never rejects: a failure is in the probe's
  // result). Without a .py script only the validators are reported, and a light probe
  // (PyYAML imported only when atomic_agents is there) tells them.
  const discovery = await discoverScripts(root.path)
  const hasPython = discovery.scripts.some((s) => s.ext === 'py')
  const probing = probePython({ python, env, light: !hasPython })
  // The cache lives only where the engine already keeps state (a snapshot was taken).
  const keepCache = storeExists && (await pathExists(location.stateDir))
  const cache = keepCache ? await loadReadingCache(location.stateDir, root.path, Date.now()) : undefined
  const [{ scan, inventory, read = scan.units.length }, probe] = await Promise.all([
    // Without a cache no unit's stat is needed: the walk does not lstat them.
    takeInventory(root.path, { ...(onProgress ? { onProgress } : {}), ...(cache ? { cache } : { statUnits: false }) }),
    probing,
  ])
  // A cache that cannot be written (a read-only store, a full disk) only costs the next run.
  const written = cache ? await cache.save(location.stateDir, root.path).catch(() => false) : false
  return {
    agentsRoot: root,
    store: { kind: location.kind, gitDir: location.gitDir, exists: storeExists },
    inventory,
    scripts: discovery.scripts.map(({ file, from, to }) => ({ file, from, to })),
    scriptErrors: discovery.errors.map((e) => e.toJSON()),
    chain: summarizeChain(inventory.vaultVersion, discovery.scripts),
    skipped: scan.skipped,
    recovered,
    python: hasPython ? probe : null,
    validators: validatorsInfo(probe),
    cache: cache ? { file: path.join(location.stateDir, READING_CACHE_FILE), loaded: cache.loaded, read, written } : null,
  }
}

// Completes an interrupted transaction when its journal is there; the transaction
// machinery (and the store) is loaded only then.
async function recoverIfJournal(
  location: StoreLocation,
  openStore: () => Promise<Store>,
  onEvent: ((event: EngineEvent) => void) | undefined,
): Promise<RecoveryResult | null> {
  if (!(await pathExists(path.join(location.stateDir, JOURNAL_FILE_NAME)))) return null
  const [{ recoverIfInterrupted }, store] = await Promise.all([import('./session.js'), openStore()])
  return recoverIfInterrupted(store, { command: '--status', ...(onEvent ? { onEvent } : {}) })
}

// The chain from the vault's version to the newest script; an empty vault needs none.
export function summarizeChain(current: number | null, scripts: readonly ScriptFile[]): ChainSummary {
  const latest = scripts.reduce<number | null>((max, s) => (max === null || s.to > max ? s.to : max), null)
  if (latest === null || current === null || latest <= current) return { latest, steps: [], complete: true, gap: null }
  const plan = planChain({ current, target: latest, scripts })
  if (plan.ok) return { latest, steps: plan.steps.map((s) => ({ from: s.from, to: s.to, file: s.script.file })), complete: true, gap: null }
  const missing = (plan.error.data.missing as Array<{ from: number; to: number }> | undefined)?.[0] ?? null
  const steps = scripts.filter((s) => s.from >= current && s.to <= latest).map((s) => ({ from: s.from, to: s.to, file: s.file }))
  return { latest, steps, complete: false, gap: missing }
}
