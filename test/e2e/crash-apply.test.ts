import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixturesDir } from '../helpers/make-vault.js'
import { generateVault } from '../helpers/gen-vault.js'
import { bin, runKilledAfter } from '../helpers/run-cli.js'
import { captureTree, filesOf, type TreeState } from '../helpers/tree-state.js'

// SIGKILL at moments of --apply on a 300-unit vault whose dry run was kept: after each
// kill, --status (which completes any interrupted transaction) must leave the vault
// exactly as before the apply or exactly at the previewed state (see settle below).

const UNITS = 300
const TRIALS = 4
let base: string
let previewed: string // v1 vault with its dry run's preview kept
let pre: TreeState
let post: TreeState
let applyMs = 0

const vaultOnly = (rel: string): boolean => rel.startsWith('_migrations/aas.git') || rel === '_migrations/migration.jsonl' || rel.startsWith('.migration.lock')

async function vaultState(root: string): Promise<TreeState> {
  return filesOf(await captureTree(root, { exclude: vaultOnly }))
}

// Half the kills spread over the whole command, half over its last 60% (the writes).
function moment(i: number, durationMs: number): number {
  const x = Math.abs(Math.sin(3 * 7919 + i * 104729)) % 1
  return Math.round(i % 2 === 0 ? x * durationMs * 1.05 : durationMs * (0.4 + 0.65 * x))
}

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'aas-crash-apply-'))
  previewed = path.join(base, 'previewed')
  await mkdir(path.join(previewed, '_migrations'), { recursive: true })
  await generateVault(previewed, { units: UNITS, seed: 11 })
  await cp(path.join(fixturesDir, 'migrations', 'v1_to_v2.mjs'), path.join(previewed, '_migrations', 'v1_to_v2.mjs'))
  const dry = bin(['--agents-root', previewed, '--to', 'v2', '--dry-run', '--stat'])
  expect(dry.code, dry.stderr).toBe(0)
  pre = await vaultState(previewed)
  const probe = path.join(base, 'probe')
  await cp(previewed, probe, { recursive: true })
  const t = Date.now()
  const r = bin(['--agents-root', probe, '--apply', 'latest'])
  expect(r.code, r.stderr).toBe(0)
  applyMs = Date.now() - t
  post = await vaultState(probe)
  await rm(probe, { recursive: true, force: true })
}, 300_000)

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true })
})

// After a kill: --status completes any journal; the vault must be exactly pre or post.
// Then the apply runs (pre) or is refused as applied (post: by its mark, or, killed
// before the mark, because the vault holds the previewed tree); with `rollBack`, the
// apply's snapshot (the newest) brings the vault back to pre.
async function settle(work: string, what: string, rollBack: boolean): Promise<'pre' | 'post'> {
  const s = bin(['--agents-root', work, '--status', '--json'])
  expect(s.code, s.stderr).toBe(0)
  const state = JSON.stringify(await vaultState(work))
  const at = state === JSON.stringify(pre) ? 'pre' : state === JSON.stringify(post) ? 'post' : 'mixed'
  expect(at, `${what} left a mixed vault`).not.toBe('mixed')
  // A kill before the journal leaves a stale lock and no journal: the next writer
  // refuses, naming the command that clears it (as after a killed --to).
  const lock = path.join(work, '.migration.lock')
  if (existsSync(lock)) {
    const locked = bin(['--agents-root', work, '--apply', 'latest', '--json'])
    expect(JSON.parse(locked.stdout).error).toMatchObject({ code: 'LOCKED', data: { stale: true } })
    await rm(lock)
  }
  const again = bin(['--agents-root', work, '--apply', 'latest', '--json'])
  if (at === 'pre') expect(again.code, again.stderr).toBe(0)
  else {
    expect(again.code, what).toBe(1)
    expect(JSON.parse(again.stdout).error.code).toBe('PREVIEW_APPLIED')
  }
  expect(await vaultState(work)).toEqual(post)
  if (rollBack) {
    const snapshots = JSON.parse(bin(['--agents-root', work, '--list-snapshots', '--json']).stdout).snapshots as Array<{ name: string }>
    const back = bin(['--agents-root', work, '--rollback', (snapshots[0] as { name: string }).name])
    expect(back.code, back.stderr).toBe(0)
    expect(await vaultState(work)).toEqual(pre)
  }
  await rm(work, { recursive: true, force: true })
  return at as 'pre' | 'post'
}

describe(`SIGKILL during --apply of a ${UNITS}-unit preview`, () => {
  it('at random moments: every kill ends exactly before or exactly at the preview; the apply then runs or is refused as applied', async () => {
    expect(post).not.toEqual(pre)
    const outcomes = { pre: 0, post: 0, killed: 0 }
    for (let i = 0; i < TRIALS; i++) {
      const work = path.join(base, `apply-${i}`)
      await cp(previewed, work, { recursive: true })
      const killAt = moment(i, applyMs)
      const r = await runKilledAfter(['--agents-root', work, '--apply', 'latest'], killAt)
      if (r.killed) outcomes.killed++
      else if (r.code === 0) applyMs = Math.min(applyMs, r.ms)
      outcomes[await settle(work, `trial ${i}: killed after ${killAt} ms`, i === 0)]++
    }
    console.log(
      `--apply kill trials: ${TRIALS}, killed mid-run ${outcomes.killed}, ended at pre ${outcomes.pre}, at post ${outcomes.post}, mixed 0 (full run ${applyMs} ms)`,
    )
    expect(outcomes.killed).toBeGreaterThanOrEqual(TRIALS / 2)
  }, 600_000)

  // SIGKILL at named points of the write phase (AAS_FAULT, src/transaction/faults.ts): the
  // journal is there, so the recovery of the next command undoes the apply (as it undoes
  // a --to, docs/how-it-works.md, "Recovery"), and the apply then runs again.
  it.each(['after-journal', 'mid-fast-forward:40', 'before-journal-delete'])(
    'killed at %s: recovery ends exactly before the apply, which then runs (and, the first time, its snapshot rolls it back)',
    async (fault) => {
      const work = path.join(base, `fault-${fault.replace(/:/g, '-')}`)
      await cp(previewed, work, { recursive: true })
      const r = await runKilledAfter(['--agents-root', work, '--apply', 'latest'], 600_000, { AAS_FAULT: fault })
      expect(r.code, 'died of its own SIGKILL').toBeNull()
      expect(await settle(work, fault, fault === 'after-journal')).toBe('pre')
    },
    300_000,
  )
})
