import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { migrate, rollback, type EngineEvent } from '../src/index.js'
import { readAudit } from '../src/transaction/audit.js'
import { makeVault, type TempVault } from './helpers/make-vault.js'
import { captureTree } from './helpers/tree-state.js'

// The library boundary (src/api.ts): migrate() and rollback() never throw. A bad root,
// a missing store and a bug of ours each come back as a result, with an audit line
// wherever there is a vault to write it to.

const vaults: TempVault[] = []
const temps: string[] = []
afterEach(async () => {
  await Promise.all(vaults.splice(0).map((v) => v.cleanup()))
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })))
})

async function vault(migrations?: string[]): Promise<TempVault> {
  const v = await makeVault('vault-v1', migrations ? { migrations } : {})
  vaults.push(v)
  return v
}

describe('the library boundary', () => {
  it('when agents_root does not exist then migrate and rollback return AGENTS_ROOT_MISSING and create nothing', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'aas-api-'))
    temps.push(base)
    const agentsRoot = path.join(base, 'missing')
    const run = await migrate({ agentsRoot, target: 2 })
    expect(run).toMatchObject({ ok: false, applied: false, agentsRoot, error: { code: 'AGENTS_ROOT_MISSING' } })
    expect(run.errors.map((e) => e.code)).toEqual(['AGENTS_ROOT_MISSING'])
    const back = await rollback({ agentsRoot, snapshot: 'anything' })
    expect(back).toMatchObject({ ok: false, agentsRoot, error: { code: 'AGENTS_ROOT_MISSING' } })
    expect(back.errors).toHaveLength(1)
    expect(existsSync(agentsRoot)).toBe(false)
  })

  it('when agents_root is a file then migrate returns AGENTS_ROOT_INVALID and the file is unchanged', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'aas-api-'))
    temps.push(base)
    const file = path.join(base, 'vault.md')
    await writeFile(file, 'not a folder\n')
    const run = await migrate({ agentsRoot: file, target: 2, dryRun: true })
    expect(run.error?.code).toBe('AGENTS_ROOT_INVALID')
    expect(Object.keys(await captureTree(base))).toEqual(['vault.md'])
    expect(await readFile(file, 'utf8')).toBe('not a folder\n')
  })

  it('when the vault has no store yet then a rollback returns SNAPSHOT_NOT_FOUND with an audit line, and no store is created', async () => {
    const v = await vault()
    const before = await captureTree(v.root)
    const back = await rollback({ agentsRoot: v.root, snapshot: '2026-01-01T000000_pre_v2_migration' })
    expect(back).toMatchObject({ ok: false, error: { code: 'SNAPSHOT_NOT_FOUND' }, written: 0, removed: 0 })
    const { records } = await readAudit(v.root)
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({
      run_id: back.runId,
      result: 'refused',
      rolled_back: false,
      error_code: 'SNAPSHOT_NOT_FOUND',
      error: back.error?.message,
    })
    expect(await captureTree(v.root)).toEqual(before)
    expect(existsSync(path.join(v.root, '_migrations', 'aas.git'))).toBe(false)
  })

  it('when something unexpected is thrown during a run then migrate returns INTERNAL with the cause, writes its audit line and leaves the vault as it was', async () => {
    const v = await vault()
    const before = await captureTree(v.root)
    const bug = new TypeError('a bug in a listener')
    const onEvent = (e: EngineEvent): void => {
      if (e.type === 'snapshot') throw bug
    }
    const run = await migrate({ agentsRoot: v.root, target: 2, onEvent })
    expect(run).toMatchObject({ ok: false, applied: false, error: { code: 'INTERNAL' } })
    expect(run.error?.cause).toBe(bug)
    expect(run.error?.hint).toMatch(/please report it/)
    const { records } = await readAudit(v.root)
    expect(records.map((r) => [r.run_id, r.result, r.error_code])).toEqual([[run.runId, 'failed', 'INTERNAL']])
    expect(await captureTree(v.root)).toEqual(before)
    expect(existsSync(path.join(v.root, '.migration.lock'))).toBe(false)
  })

  it('when something unexpected is thrown during a rollback then it returns INTERNAL with an audit line and the vault stays migrated', async () => {
    const v = await vault()
    const run = await migrate({ agentsRoot: v.root, target: 2 })
    expect(run.ok).toBe(true)
    const migrated = await captureTree(v.root)
    const back = await rollback({
      agentsRoot: v.root,
      snapshot: run.snapshot?.name as string,
      onEvent: (e) => {
        if (e.type === 'phase' && e.phase === 'rollback') throw new RangeError('listener bug')
      },
    })
    expect(back).toMatchObject({ ok: false, error: { code: 'INTERNAL' }, written: 0 })
    expect(back.errors).toHaveLength(1)
    expect(back.safety).not.toBeNull()
    const { records } = await readAudit(v.root)
    expect(records.at(-1)).toMatchObject({ run_id: back.runId, result: 'failed', error_code: 'INTERNAL' })
    expect(await captureTree(v.root)).toEqual(migrated)
  })
})

describe('step statuses', () => {
  it('when every step runs then each is applied', async () => {
    const v = await vault()
    const run = await migrate({ agentsRoot: v.root, target: 3, dryRun: true })
    expect(run.ok).toBe(true)
    expect(run.steps.map((s) => [s.from, s.to, s.status])).toEqual([
      [1, 2, 'applied'],
      [2, 3, 'applied'],
    ])
  })

  it('when the second step fails then the first is applied, the second failed, and nothing is written', async () => {
    const v = await vault()
    await writeFile(
      path.join(v.root, '_migrations', 'v2_to_v3.ts'),
      `export default { from: 2, to: 3, appliesTo: () => true, migrate(unit) { if (unit.unitType === 'wiki') throw new Error('no wiki yet'); const m = unit.readFrontmatter(); m.schema_version = 3; unit.writeFrontmatter(m); return true } }\n`,
    )
    const before = await captureTree(v.root)
    const run = await migrate({ agentsRoot: v.root, target: 3 })
    expect(run.error?.code).toBe('SCRIPT_FAILED')
    expect(run.steps.map((s) => [s.from, s.status])).toEqual([
      [1, 'applied'],
      [2, 'failed'],
    ])
    expect(await captureTree(v.root)).toEqual(before)
  })

  it('when the first step fails then the later one is not run', async () => {
    const v = await vault()
    await writeFile(
      path.join(v.root, '_migrations', 'v1_to_v2.mjs'),
      `export default { from: 1, to: 2, appliesTo: () => true, migrate() { throw new Error('broken') } }\n`,
    )
    const run = await migrate({ agentsRoot: v.root, target: 3, dryRun: true })
    expect(run.error?.code).toBe('SCRIPT_FAILED')
    expect(run.steps.map((s) => [s.from, s.status])).toEqual([
      [1, 'failed'],
      [2, 'not-run'],
    ])
  })

  it('when the run is refused before a chain is planned then there are no steps', async () => {
    const v = await vault()
    const run = await migrate({ agentsRoot: v.root, target: 9, dryRun: true })
    expect(run.error?.code).toBe('CHAIN_GAP')
    expect(run.steps).toEqual([])
  })
})
