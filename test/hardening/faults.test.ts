import { spawnSync } from 'node:child_process'
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateVault } from '../helpers/gen-vault.js'
import { fixturesDir } from '../helpers/make-vault.js'
import { bin, binPath } from '../helpers/run-cli.js'
import { captureTree, type TreeState } from '../helpers/tree-state.js'

// Every named kill point, one by one, on the built CLI: the process must die by
// SIGKILL there, and the next --status must leave the vault exactly before or exactly
// after the command — every file, mode and directory, no temp or claim file, no lock.

const UNITS = 240
let base: string
let pristine: string
let migrated: string
let snapshot: string
let pre: TreeState
let post: TreeState

// The store and the audit log change with every command; everything else is the vault.
const notEngine = (rel: string): boolean => rel.startsWith('_migrations/aas.git') || rel === '_migrations/migration.jsonl'
const state = (root: string): Promise<TreeState> => captureTree(root, { exclude: notEngine })

function killedRun(args: string[], fault: string): { signal: NodeJS.Signals | null; code: number | null; stderr: string } {
  const env = { ...process.env, NO_COLOR: '1', AAS_FAULT: fault }
  const r = spawnSync(process.execPath, [binPath, ...args], { env, encoding: 'utf8' })
  return { signal: r.signal, code: r.status, stderr: r.stderr }
}

async function copyOf(src: string, name: string): Promise<string> {
  const dest = path.join(base, name)
  await cp(src, dest, { recursive: true })
  return dest
}

function recoverWithStatus(root: string): void {
  const s = bin(['--agents-root', root, '--status', '--json'])
  expect(s.code, s.stderr).toBe(0)
}

function where(s: TreeState): 'pre' | 'post' | 'mixed' {
  const j = JSON.stringify(s)
  return j === JSON.stringify(pre) ? 'pre' : j === JSON.stringify(post) ? 'post' : 'mixed'
}

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'aas-faults-'))
  pristine = path.join(base, 'pristine')
  await mkdir(path.join(pristine, '_migrations'), { recursive: true })
  await generateVault(pristine, { units: UNITS, seed: 11, bodyBytes: 600 })
  for (const f of ['v1_to_v2.mjs', 'v2_to_v3.ts']) await cp(path.join(fixturesDir, 'migrations', f), path.join(pristine, '_migrations', f))
  pre = await state(pristine)
  migrated = await copyOf(pristine, 'migrated')
  const r = bin(['--agents-root', migrated, '--to', 'v3', '--json'])
  expect(r.code, r.stderr).toBe(0)
  snapshot = JSON.parse(r.stdout).result.snapshot.name
  post = await state(migrated)
}, 120_000)

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true })
})

describe('kill points of --to', () => {
  it.each([
    'after-journal',
    'mid-fast-forward:1',
    'mid-fast-forward:137',
    'mid-claim:1',
    'mid-claim:90',
    'mid-link:1',
    'mid-link:200',
    'mid-rewrite:1',
    'mid-rewrite:150',
    'before-journal-delete',
  ])('when --to is killed at %s then --status restores the vault exactly to before the run', async (fault) => {
    const work = await copyOf(pristine, `to-${fault.replace(':', '-')}`)
    const r = killedRun(['--agents-root', work, '--to', 'v3'], fault)
    expect(r.signal, `${fault}: ${r.stderr}`).toBe('SIGKILL')
    expect(where(await state(work))).not.toBe('pre') // the kill left work to recover (journal, lock)
    recoverWithStatus(work)
    expect(where(await state(work))).toBe('pre')
    const again = bin(['--agents-root', work, '--to', 'v3'])
    expect(again.code, again.stderr).toBe(0)
    expect(where(await state(work))).toBe('post')
  })
})

describe('kill points of --rollback', () => {
  it.each(['after-journal', 'mid-rollback:1', 'mid-rollback:12', 'mid-claim:12', 'mid-rewrite:12', 'mid-link:12', 'before-journal-delete'])(
    'when --rollback is killed at %s then --status returns the vault exactly to its migrated state',
    async (fault) => {
      const work = await copyOf(migrated, `rb-${fault.replace(':', '-')}`)
      const r = killedRun(['--agents-root', work, '--rollback', snapshot], fault)
      expect(r.signal, `${fault}: ${r.stderr}`).toBe('SIGKILL')
      recoverWithStatus(work)
      expect(where(await state(work))).toBe('post')
      const again = bin(['--agents-root', work, '--rollback', snapshot])
      expect(again.code, again.stderr).toBe(0)
      expect(where(await state(work))).toBe('pre')
    },
  )
})

describe('kill points of the recovery itself', () => {
  it.each(['mid-recovery:1', 'mid-recovery:40'])(
    'when the recovery of a killed --to is killed at %s then the next --status still ends exactly before the run',
    async (fault) => {
      const work = await copyOf(pristine, `rec-${fault.replace(':', '-')}`)
      expect(killedRun(['--agents-root', work, '--to', 'v3'], 'mid-fast-forward:150').signal).toBe('SIGKILL')
      const r = killedRun(['--agents-root', work, '--status'], fault)
      expect(r.signal, r.stderr).toBe('SIGKILL')
      expect(where(await state(work))).toBe('mixed')
      recoverWithStatus(work)
      expect(where(await state(work))).toBe('pre')
    },
  )

  it('when a kill lands between the claim and the check then the claimed file is put back, not lost', async () => {
    const work = await copyOf(pristine, 'claim-visible')
    expect(killedRun(['--agents-root', work, '--to', 'v3'], 'mid-claim:3').signal).toBe('SIGKILL')
    const mid = await state(work)
    const claims = Object.keys(mid).filter((k) => k.includes('.aas-tmp-claim-'))
    expect(claims).toHaveLength(1)
    const claimedPath = Object.keys(pre).find((k) => !(k in mid) && claims[0]!.includes(path.posix.basename(k)))
    expect(claimedPath).toBeDefined()
    recoverWithStatus(work)
    expect(where(await state(work))).toBe('pre')
  })

  it('when a kill lands while a claimed file is rewritten then its mixed bytes are replaced by the old ones, nothing lost', async () => {
    const work = await copyOf(pristine, 'rewrite-visible')
    expect(killedRun(['--agents-root', work, '--to', 'v3'], 'mid-rewrite:3').signal).toBe('SIGKILL')
    const mid = await state(work)
    const rewrites = Object.keys(mid).filter((k) => k.includes('.aas-tmp-rewrite-'))
    expect(rewrites).toHaveLength(1)
    const rewrittenPath = Object.keys(pre).find((k) => !(k in mid) && rewrites[0]!.includes(path.posix.basename(k)))
    expect(rewrittenPath).toBeDefined()
    expect(mid[rewrites[0]!]).not.toEqual(pre[rewrittenPath!]) // the new bytes are (at least partly) written over the old
    recoverWithStatus(work)
    expect(where(await state(work))).toBe('pre')
  })
})
