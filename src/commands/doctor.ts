import path from 'node:path'
import { asAasError, isAasError } from '../errors.js'
import { describeHolder, inspectLease, type LeaseState } from '../snapshots/lease.js'
import { readConfiguredRemote } from '../snapshots/remote-config.js'
import type { Store, StoreLocation } from '../git/store.js'
import { discoverScripts, type ScriptFile } from '../migrations/discover.js'
import { DEFAULT_PYTHON, describePythonSource, probePython, type PythonProbe } from '../migrations/python-interpreter.js'
import { takeInventory } from '../vault/inventory.js'
import { journalPath, readJournal } from '../transaction/journal.js'
import { inspectVaultLock, shellQuote } from '../transaction/lock.js'
import { summarizeChain } from './status.js'
import { AAS_REF_ROOT, LEASE_REF } from '../git/refs.js'
import { displayRemote } from '../git/remote.js'

// `--doctor` (docs/how-it-works.md, "Status and doctor"): read-only health checks. Each
// failed check carries the literal shell commands that fix it, so an operator can copy
// them; nothing here writes.

export type DoctorCheckId = 'store' | 'journal' | 'lock' | 'unreadable' | 'unversioned' | 'versions' | 'chain' | 'scripts' | 'python' | 'remote'

export interface DoctorCheck {
  id: DoctorCheckId
  title: string
  ok: boolean
  message: string // what was found, one line
  details: string[] // the refs, units or files concerned
  fixes: string[] // literal commands, in order; empty when ok
}

export interface DoctorResult {
  ok: boolean // every check passed
  agentsRoot: string
  checks: DoctorCheck[]
  durationMs: number
}

// The normalised request (src/api.ts resolves the vault and opens its store).
export interface DoctorInput {
  root: string
  location: StoreLocation
  store: Store | null // null: no store exists yet
  python?: string | undefined // --python: the interpreter checked for .py scripts
  env?: NodeJS.ProcessEnv // for $AAS_PYTHON and $VIRTUAL_ENV
}

const TITLES: Record<DoctorCheckId, string> = {
  store: 'store integrity',
  journal: 'interrupted transaction',
  lock: 'vault lock',
  unreadable: 'unreadable units',
  unversioned: 'unversioned units',
  versions: 'mixed versions',
  chain: 'migration chain',
  scripts: 'migration scripts',
  python: 'python interpreter',
  remote: 'remote and lease',
}

function pass(id: DoctorCheckId, message: string, details: string[] = []): DoctorCheck {
  return { id, title: TITLES[id], ok: true, message, details, fixes: [] }
}

function fail(id: DoctorCheckId, message: string, details: string[], fixes: string[]): DoctorCheck {
  return { id, title: TITLES[id], ok: false, message, details, fixes }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

// Every refs/aas/* ref must resolve to a commit whose tree lists and whose blobs read.
// Blobs shared between snapshots are read once, so the cost is the store's distinct content.
async function checkStoreRefs(store: Store): Promise<{ refs: number; blobs: number; broken: Array<{ ref: string; problem: string }> }> {
  const refs = await store.listRefs(AAS_REF_ROOT)
  const seen = new Set<string>()
  const broken: Array<{ ref: string; problem: string }> = []
  for (const { ref, oid } of refs) {
    try {
      const commit = await store.readCommit(oid)
      const entries = await store.listTree(commit.tree)
      const fresh = [...new Set(entries.map((e) => e.oid))].filter((o) => !seen.has(o))
      for await (const { oid: blob } of store.readBlobs(fresh)) seen.add(blob)
    } catch (err) {
      const message = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err)
      broken.push({ ref, problem: message })
    }
  }
  return { refs: refs.length, blobs: seen.size, broken }
}

async function storeCheck(location: StoreLocation, store: Store | null): Promise<{ check: DoctorCheck; store: Store | null }> {
  if (!store) return { check: pass('store', `no store yet (${location.gitDir} is created by the first snapshot)`), store: null }
  let r: Awaited<ReturnType<typeof checkStoreRefs>>
  try {
    r = await checkStoreRefs(store)
  } catch (err) {
    const message = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err)
    return {
      check: fail(
        'store',
        `the refs of ${location.gitDir} cannot be listed: ${message}`,
        [location.gitDir],
        [`git --git-dir=${shellQuote(location.gitDir)} fsck --full`],
      ),
      store,
    }
  }
  if (r.broken.length === 0)
    return { check: pass('store', `${plural(r.refs, 'ref')} under refs/aas/ in ${location.gitDir}, ${plural(r.blobs, 'blob')} read`), store }
  return {
    check: fail(
      'store',
      `${plural(r.broken.length, 'ref')} under refs/aas/ cannot be read (missing or damaged objects); those snapshots cannot be restored`,
      r.broken.map((b) => `${b.ref}: ${b.problem}`),
      r.broken.map((b) => `git --git-dir=${shellQuote(location.gitDir)} update-ref -d ${shellQuote(b.ref)}`),
    ),
    store,
  }
}

async function journalCheck(stateDir: string, rootArg: string): Promise<DoctorCheck> {
  try {
    const journal = await readJournal(stateDir)
    if (!journal) return pass('journal', 'no interrupted transaction')
    return fail(
      'journal',
      `an interrupted ${journal.kind} (run ${journal.runId}, ${plural(journal.changes.length, 'path')}) left its journal; the next aas-migrate command completes it`,
      [journalPath(stateDir)],
      [`aas-migrate ${rootArg} --status`],
    )
  } catch (err) {
    if (!isAasError(err)) throw err
    const file = typeof err.data.file === 'string' ? err.data.file : journalPath(stateDir)
    return fail('journal', err.message, [file], [`aas-migrate ${rootArg} --list-snapshots`, `rm ${shellQuote(file)}`])
  }
}

async function lockCheck(root: string): Promise<DoctorCheck> {
  const lock = await inspectVaultLock(root)
  if (lock.state === 'free') return pass('lock', 'not held')
  if (lock.state === 'held')
    return pass('lock', `held by pid ${lock.holder.pid} on ${lock.holder.host} since ${lock.holder.startedAt} (${lock.holder.command}); a run is in progress`, [
      lock.path,
    ])
  return fail('lock', `stale: ${lock.reason}`, [lock.path], [lock.clearCommand])
}

function describeProbe(p: PythonProbe): string {
  const yaml = p.yaml ? `PyYAML ${p.yaml}${p.libyaml ? ' with libyaml' : ''}` : 'no PyYAML'
  const v = p.validators
  const accepts = v?.error ? `; it cannot be imported: ${v.error}` : v?.schemaVersion != null ? `; its validators accept schema v${v.schemaVersion}` : ''
  const aa = p.atomicAgents ? `atomic_agents at ${p.atomicAgents}${accepts}` : 'atomic_agents not installed (the built-in stand-in is used)'
  return `Python ${p.version} (${p.executable}), ${yaml}, ${aa}`
}

// The command that makes the chosen interpreter usable, when one exists: PyYAML for a
// Python that lacks it, Python itself when PATH has none.
function installFix(p: PythonProbe): string | null {
  if (p.version !== null && p.yaml === null) {
    return p.source === 'VIRTUAL_ENV' ? `${shellQuote(p.command)} -m pip install pyyaml` : 'apt-get install python3-yaml'
  }
  if (p.version === null && p.source === 'PATH') return 'apt-get install python3 python3-yaml'
  return null
}

// Probes the interpreter .py scripts would run with (no script is run). When it cannot
// run them and python3 on PATH can, the fix points --python or $AAS_PYTHON at that one.
async function pythonCheck(rootArg: string, scripts: readonly ScriptFile[], python: string | undefined, env: NodeJS.ProcessEnv): Promise<DoctorCheck> {
  const py = scripts.filter((s) => s.ext === 'py').map((s) => s.file)
  if (py.length === 0) return pass('python', 'no .py script in _migrations/, so no interpreter is needed')
  const probe = await probePython({ python, env })
  const chosen = `${probe.command} (from ${describePythonSource(probe.source)})`
  if (probe.ok) return pass('python', `${chosen}: ${describeProbe(probe)}; runs ${py.join(', ')}`, py)
  const fixes: string[] = []
  const install = installFix(probe)
  if (install) fixes.push(install)
  if (probe.command !== DEFAULT_PYTHON) {
    const alt = await probePython({ env: { ...env, AAS_PYTHON: '', VIRTUAL_ENV: '' } })
    if (alt.ok && alt.executable) {
      const exe = shellQuote(alt.executable)
      fixes.push(probe.source === 'AAS_PYTHON' ? `AAS_PYTHON=${exe} aas-migrate ${rootArg} --doctor` : `aas-migrate ${rootArg} --doctor --python ${exe}`)
    }
  }
  if (fixes.length === 0) fixes.push('apt-get install python3 python3-yaml')
  const found = probe.version ? ` (${describeProbe(probe)})` : ''
  return fail(
    'python',
    `${chosen}${found} cannot run ${py.join(', ')}: ${String(probe.error?.data.reason ?? 'unusable')}. ${probe.error?.hint ?? ''}`.trimEnd(),
    py,
    fixes,
  )
}

// aas.remote: whether it answers and whether a run holds the lease there. Reads only:
// the holder is named when its commit is already in the store.
async function remoteCheck(store: Store | null, rootArg: string): Promise<DoctorCheck> {
  const configured = store ? await readConfiguredRemote(store) : null
  if (store === null || configured === null) return pass('remote', 'no aas.remote: the snapshots are on this machine only (set one with --remote REMOTE)')
  const remote = displayRemote(configured)
  let lease: LeaseState
  try {
    lease = await inspectLease(store, configured, { fetch: false })
  } catch (err) {
    const e = asAasError(err)
    if (e.code === 'REMOTE_UNSUPPORTED') {
      return fail('remote', `aas.remote ${remote} cannot be used by this backend: ${e.message}`, [e.code], [`aas-migrate ${rootArg} --unset-remote`])
    }
    const probe =
      store.backend === 'js'
        ? `curl -fsS ${shellQuote(`${remote.replace(/\/$/, '')}/info/refs?service=git-upload-pack`)}`
        : `git ls-remote ${shellQuote(remote)}`
    return fail('remote', `aas.remote ${remote} cannot be reached: ${e.message}`, [e.code], [probe])
  }
  if (!lease.held) return pass('remote', `aas.remote ${remote} answers; no run holds the lease`)
  return fail(
    'remote',
    `a run holds the lease on ${remote}: ${describeHolder(lease.holder)}; another --to or --rollback of this vault is refused until it ends`,
    [`${LEASE_REF} ${lease.commit}`],
    [`aas-migrate ${rootArg} --break-lease   # only when that run is gone`],
  )
}

// Health of one vault: store, journal, lock, units, versions, chain, scripts and the
// Python interpreter when a script is a .py.
export async function checkVault({ root, location, store: opened, python, env = process.env }: DoctorInput): Promise<DoctorResult> {
  const started = Date.now()
  const rootArg = `--agents-root ${shellQuote(root)}`
  const { check: store } = await storeCheck(location, opened)
  const [journal, lock, { inventory: inv }, discovery] = await Promise.all([
    journalCheck(location.stateDir, rootArg),
    lockCheck(root),
    takeInventory(root),
    discoverScripts(root),
  ])
  const checks: DoctorCheck[] = [store, journal, lock]

  checks.push(
    inv.unreadable.length === 0
      ? pass('unreadable', `all ${plural(inv.units, 'unit')} parse`)
      : fail(
          'unreadable',
          `${plural(inv.unreadable.length, 'unit')} whose front matter does not parse; they block every migration (fix the line shown, or list the file in _migrations/ignore)`,
          inv.unreadable.map((u) => `${u.unitId}:${u.line}:${u.column}: ${u.message}`),
          inv.unreadable.map((u) => `\${EDITOR:-vi} +${u.line} ${shellQuote(path.join(root, u.unitId))}`),
        ),
  )

  const versioned = inv.versions.filter((v) => v.version > 0)
  const expected = versioned.length > 0 ? Math.max(...versioned.map((v) => v.version)) : 1
  checks.push(
    inv.unversioned.length === 0
      ? pass('unversioned', 'every unit has an integer schema_version')
      : fail(
          'unversioned',
          `${plural(inv.unversioned.length, 'unit')} without an integer schema_version (they count as v0); add \`schema_version: ${expected}\` to the front matter of each`,
          inv.unversioned.map((u) => u.unitId),
          inv.unversioned.map((u) => `\${EDITOR:-vi} ${shellQuote(path.join(root, u.unitId))}`),
        ),
  )

  const latestUnit = versioned.length > 0 ? Math.max(...versioned.map((v) => v.version)) : null
  checks.push(
    versioned.length <= 1 || latestUnit === null
      ? pass('versions', versioned.length === 1 ? `every versioned unit is at v${versioned[0]?.version}` : 'no versioned units')
      : fail(
          'versions',
          `units at ${versioned.map((v) => `v${v.version} (${v.total})`).join(', ')}: an earlier migration did not reach every unit`,
          versioned.map((v) => `v${v.version}: ${v.total} (memory ${v.memory}, wiki ${v.wiki})`),
          [`aas-migrate ${rootArg} --to v${latestUnit} --dry-run`, `aas-migrate ${rootArg} --to v${latestUnit}`],
        ),
  )

  const chain = summarizeChain(inv.vaultVersion, discovery.scripts)
  checks.push(
    chain.complete
      ? pass(
          'chain',
          chain.latest === null
            ? 'no scripts in _migrations/'
            : inv.vaultVersion === null
              ? 'the vault is empty'
              : chain.latest <= inv.vaultVersion
                ? `the vault is at the latest scripted version (v${chain.latest})`
                : `v${inv.vaultVersion} -> v${chain.latest} complete`,
        )
      : fail(
          'chain',
          `no migration script for v${chain.gap?.from} -> v${chain.gap?.to}: the chain v${inv.vaultVersion} -> v${chain.latest} cannot run (copy the release's script into _migrations/, or write one)`,
          chain.steps.map((s) => `v${s.from} -> v${s.to}  ${s.file}`),
          [`aas-migrate ${rootArg} --new-script v${chain.gap?.from}`],
        ),
  )

  checks.push(
    discovery.errors.length === 0
      ? pass('scripts', `${plural(discovery.scripts.length, 'script')} named correctly`)
      : fail(
          'scripts',
          `${plural(discovery.errors.length, 'problem')} in _migrations/ (rename each file as its message says, or prefix it with _ so it is ignored)`,
          discovery.errors.map((e) => `${e.code}: ${e.message}`),
          discovery.errors.flatMap((e) => {
            const files = Array.isArray(e.data.files) ? (e.data.files as string[]).slice(1) : typeof e.data.file === 'string' ? [e.data.file] : []
            return files.map((f) => `mv ${shellQuote(path.join(root, f))} ${shellQuote(path.join(root, path.dirname(f), `_${path.basename(f)}`))}`)
          }),
        ),
  )

  checks.push(await pythonCheck(rootArg, discovery.scripts, python, env))
  checks.push(await remoteCheck(opened, rootArg))

  return { ok: checks.every((c) => c.ok), agentsRoot: root, checks, durationMs: Date.now() - started }
}
