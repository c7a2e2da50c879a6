import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixturesDir } from '../helpers/make-vault.js'
import { generateVault } from '../helpers/gen-vault.js'
import { bin, runKilledAfter } from '../helpers/run-cli.js'
import { captureTree, filesOf, type TreeState } from '../helpers/tree-state.js'

// SIGKILL at random moments of --to and --rollback on a 2,000-unit vault: after each
// kill, --status (which completes any interrupted transaction) must leave the vault
// exactly at the state before the command or exactly at the state after it.

const UNITS = 2000
const TRIALS = 20
let base: string
let pristine: string // v1 vault, no store yet
let migrated: string // after --to v3, store included
let snapshotName: string
let pre: TreeState
let post: TreeState
let toMs = 0
let rollbackMs = 0

// The engine's own bookkeeping is not part of the vault state being compared.
const vaultOnly = (rel: string): boolean => rel.startsWith('_migrations/aas.git') || rel === '_migrations/migration.jsonl' || rel.startsWith('.migration.lock')

async function vaultState(root: string): Promise<TreeState> {
  return filesOf(await captureTree(root, { exclude: vaultOnly }))
}

// A run that ends before its kill shows how long a whole run takes now: the moments of
// the later trials follow it, so a duration timed on a busier machine (the setup runs
// while other test files start) does not leave most trials unkilled.
const runKilled = (args: string[], afterMs: number) => runKilledAfter(args, afterMs)

async function timed(args: string[]): Promise<number> {
  const t = Date.now()
  const r = bin(args)
  expect(r.code, r.stderr).toBe(0)
  return Date.now() - t
}

// Kill moments: half spread over the whole command, half over its last 60% where the
// live writes happen, so both the preparation and the write phase are hit.
function moment(i: number, durationMs: number, seed: number): number {
  const x = Math.abs(Math.sin(seed * 7919 + i * 104729)) % 1
  return Math.round(i % 2 === 0 ? x * durationMs * 1.05 : durationMs * (0.4 + 0.65 * x))
}

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'aas-crash-'))
  pristine = path.join(base, 'pristine')
  migrated = path.join(base, 'migrated')
  await mkdir(path.join(pristine, '_migrations'), { recursive: true })
  await generateVault(pristine, { units: UNITS, seed: 7 })
  for (const f of ['v1_to_v2.mjs', 'v2_to_v3.ts']) await cp(path.join(fixturesDir, 'migrations', f), path.join(pristine, '_migrations', f))
  pre = await vaultState(pristine)
  await cp(pristine, migrated, { recursive: true })
  toMs = await timed(['--agents-root', migrated, '--to', 'v3'])
  post = await vaultState(migrated)
  const list = JSON.parse(bin(['--agents-root', migrated, '--list-snapshots', '--json']).stdout)
  snapshotName = list.snapshots[0].name
  // Time a rollback on a throwaway copy.
  const probe = path.join(base, 'probe')
  await cp(migrated, probe, { recursive: true })
  rollbackMs = await timed(['--agents-root', probe, '--rollback', snapshotName])
  await rm(probe, { recursive: true, force: true })
}, 600_000)

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true })
})

describe(`SIGKILL during a ${UNITS}-unit migration and rollback`, () => {
  it('--to: every kill ends exactly before or exactly after, never in between', async () => {
    expect(Object.keys(pre).length).toBeGreaterThan(UNITS)
    expect(post).not.toEqual(pre)
    const outcomes = { pre: 0, post: 0, killed: 0 }
    for (let i = 0; i < TRIALS; i++) {
      const work = path.join(base, `to-${i}`)
      await cp(pristine, work, { recursive: true })
      const killAt = moment(i, toMs, 1)
      const r = await runKilled(['--agents-root', work, '--to', 'v3'], killAt)
      if (r.killed) outcomes.killed++
      else if (r.code === 0) toMs = Math.min(toMs, r.ms)
      const s = bin(['--agents-root', work, '--status', '--json'])
      expect(s.code, s.stderr).toBe(0)
      const state = await vaultState(work)
      const at = JSON.stringify(state) === JSON.stringify(pre) ? 'pre' : JSON.stringify(state) === JSON.stringify(post) ? 'post' : 'mixed'
      expect(at, `trial ${i}: killed after ${killAt} ms left a mixed vault`).not.toBe('mixed')
      outcomes[at as 'pre' | 'post']++
      await rm(work, { recursive: true, force: true })
    }
    console.log(
      `--to kill trials: ${TRIALS}, killed mid-run ${outcomes.killed}, ended at pre ${outcomes.pre}, at post ${outcomes.post}, mixed 0 (full run ${toMs} ms)`,
    )
    expect(outcomes.killed).toBeGreaterThanOrEqual(TRIALS / 2)
  }, 900_000)

  it('--rollback: every kill ends exactly before or exactly after, never in between', async () => {
    const outcomes = { pre: 0, post: 0, killed: 0 }
    for (let i = 0; i < TRIALS; i++) {
      const work = path.join(base, `rb-${i}`)
      await cp(migrated, work, { recursive: true })
      const killAt = moment(i, rollbackMs, 2)
      const r = await runKilled(['--agents-root', work, '--rollback', snapshotName], killAt)
      if (r.killed) outcomes.killed++
      else if (r.code === 0) rollbackMs = Math.min(rollbackMs, r.ms)
      const s = bin(['--agents-root', work, '--status', '--json'])
      expect(s.code, s.stderr).toBe(0)
      const state = await vaultState(work)
      // Before a rollback the vault is migrated (post); after it, back at pre.
      const at = JSON.stringify(state) === JSON.stringify(post) ? 'post' : JSON.stringify(state) === JSON.stringify(pre) ? 'pre' : 'mixed'
      expect(at, `trial ${i}: killed after ${killAt} ms left a mixed vault`).not.toBe('mixed')
      outcomes[at as 'pre' | 'post']++
      await rm(work, { recursive: true, force: true })
    }
    console.log(
      `--rollback kill trials: ${TRIALS}, killed mid-run ${outcomes.killed}, ended migrated ${outcomes.post}, ended rolled back ${outcomes.pre}, mixed 0 (full run ${rollbackMs} ms)`,
    )
    expect(outcomes.killed).toBeGreaterThanOrEqual(TRIALS / 2)
  }, 900_000)
})
