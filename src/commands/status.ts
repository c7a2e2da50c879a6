import type { AasError } from '../errors.js'
import type { Store, StoreLocation } from '../git/store.js'
import { validatorsInfo, type ValidatorsInfo } from '../migrations/atomic-validators.js'
import { discoverScripts, type ScriptFile } from '../migrations/discover.js'
import { planChain } from '../migrations/plan.js'
import { probePython, type PythonProbe } from '../migrations/python-interpreter.js'
import type { RecoveryResult } from '../transaction/transaction.js'
import type { AgentsRoot } from '../vault/agents-root.js'
import { takeInventory, type Inventory } from '../vault/inventory.js'
import { recoverIfInterrupted, type EngineEvent } from './session.js'

// The normalised request (src/api.ts resolves the vault and opens its store).
export interface StatusInput {
  root: AgentsRoot
  location: StoreLocation
  store: Store | null // null: no store exists yet
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
}

// Read-only: names scripts without executing them (docs/how-it-works.md, "Status and
// doctor") and takes no lock, except to complete an interrupted transaction it finds.
export async function vaultStatus({ root, location, store, onProgress, onEvent, python, env = process.env }: StatusInput): Promise<StatusResult> {
  const recovered = store ? await recoverIfInterrupted(store, { command: '--status', ...(onEvent ? { onEvent } : {}) }) : null
  const [{ scan, inventory }, discovery, probe] = await Promise.all([
    takeInventory(root.path, onProgress ? { onProgress } : {}),
    discoverScripts(root.path),
    probePython({ python, env }), // the interpreter only, never a script
  ])
  return {
    agentsRoot: root,
    store: { kind: location.kind, gitDir: location.gitDir, exists: store !== null },
    inventory,
    scripts: discovery.scripts.map(({ file, from, to }) => ({ file, from, to })),
    scriptErrors: discovery.errors.map((e) => e.toJSON()),
    chain: summarizeChain(inventory.vaultVersion, discovery.scripts),
    skipped: scan.skipped,
    recovered,
    python: discovery.scripts.some((s) => s.ext === 'py') ? probe : null,
    validators: validatorsInfo(probe),
  }
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
