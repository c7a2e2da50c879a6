import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixturesDir } from '../helpers/make-vault.js'
import { generateVault } from '../helpers/gen-vault.js'
import { bin, runKilledAfter } from '../helpers/run-cli.js'
import { captureTree, filesOf, type TreeState } from '../helpers/tree-state.js'

// SIGKILL at moments spread over a --to whose chain starts with the atomic-agents .py
// script (v1_to_v2.py, then v2_to_v3.ts): after each kill, --status (which completes an
// interrupted transaction) must leave the vault exactly before or exactly after, and no
// Python interpreter may outlive the killed CLI.

const UNITS = 1000
const TRIALS = 8
let base: string
let pristine: string
let pidLog: string
let pre: TreeState
let post: TreeState
let toMs = 0

const vaultOnly = (rel: string): boolean => rel.startsWith('_migrations/aas.git') || rel === '_migrations/migration.jsonl' || rel.startsWith('.migration.lock')
const vaultState = async (root: string): Promise<TreeState> => filesOf(await captureTree(root, { exclude: vaultOnly }))

const runKilled = (args: string[], afterMs: number) => runKilledAfter(args, afterMs, { AAS_TEST_PID_LOG: pidLog })

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'aas-crash-py-'))
  pristine = path.join(base, 'pristine')
  pidLog = path.join(base, 'bridge-pids.txt')
  await mkdir(path.join(pristine, '_migrations'), { recursive: true })
  await generateVault(pristine, { units: UNITS, seed: 11 })
  // The example script, plus one line at import that records the interpreter's pid.
  const script = await readFile(path.join(fixturesDir, 'migrations-py', 'v1_to_v2.py'), 'utf8')
  const record = 'import os\nif os.environ.get("AAS_TEST_PID_LOG"):\n    open(os.environ["AAS_TEST_PID_LOG"], "a").write("%d\\n" % os.getpid())\n'
  await writeFile(path.join(pristine, '_migrations', 'v1_to_v2.py'), script.replace('FROM_VERSION = 1', `${record}\nFROM_VERSION = 1`))
  await cp(path.join(fixturesDir, 'migrations', 'v2_to_v3.ts'), path.join(pristine, '_migrations', 'v2_to_v3.ts'))
  pre = await vaultState(pristine)
  const full = path.join(base, 'full')
  await cp(pristine, full, { recursive: true })
  const t = Date.now()
  const r = bin(['--agents-root', full, '--to', 'v3'])
  expect(r.code, r.stderr).toBe(0)
  toMs = Date.now() - t
  post = await vaultState(full)
}, 600_000)

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true })
})

describe(`SIGKILL during a ${UNITS}-unit .py -> .ts migration`, () => {
  it('every kill ends exactly before or exactly after, and no Python interpreter is left running', async () => {
    expect(post).not.toEqual(pre)
    const outcomes = { pre: 0, post: 0, killed: 0 }
    for (let i = 0; i < TRIALS; i++) {
      const work = path.join(base, `to-${i}`)
      await cp(pristine, work, { recursive: true })
      const killAt = Math.round(toMs * (0.3 + (1.0 * i) / TRIALS)) // up to 1.175x: the fast-forward too
      const r = await runKilled(['--agents-root', work, '--to', 'v3'], killAt)
      if (r.killed) outcomes.killed++
      const s = bin(['--agents-root', work, '--status', '--json'])
      expect(s.code, s.stderr).toBe(0)
      const state = await vaultState(work)
      const at = JSON.stringify(state) === JSON.stringify(pre) ? 'pre' : JSON.stringify(state) === JSON.stringify(post) ? 'post' : 'mixed'
      expect(at, `trial ${i}: killed after ${killAt} ms left a mixed vault`).not.toBe('mixed')
      outcomes[at as 'pre' | 'post']++
      await rm(work, { recursive: true, force: true })
    }
    // Each interpreter reads end-of-input when its CLI dies and exits at once.
    const pids = (await readFile(pidLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number)
    expect(pids.length).toBeGreaterThan(0)
    for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((res) => setTimeout(res, 100))
    expect(pids.filter(alive)).toEqual([])
    console.log(
      `--to (.py chain) kill trials: ${TRIALS}, killed mid-run ${outcomes.killed}, ended at pre ${outcomes.pre}, at post ${outcomes.post}, mixed 0 (full run ${toMs} ms, ${pids.length} interpreters started)`,
    )
    expect(outcomes.killed).toBeGreaterThanOrEqual(TRIALS / 2)
  }, 900_000)
})
