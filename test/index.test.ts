import { describe, expect, it } from 'vitest'
import * as api from '../src/index.js'
import * as testing from '../src/testing.js'
import { makeVault } from './helpers/make-vault.js'

describe('public API', () => {
  it('exports exactly the documented run-time names', () => {
    expect(Object.keys(api).sort()).toEqual([
      'AasError',
      'apply',
      'breakLease',
      'defineMigration',
      'doctor',
      'exportSnapshot',
      'fetchSnapshots',
      'importSnapshot',
      'isAasError',
      'listPreviews',
      'listSnapshots',
      'locateSnapshots',
      'migrate',
      'pruneSnapshots',
      'pushSnapshots',
      'rollback',
      'setRemote',
      'status',
      'unsetRemote',
    ])
    expect(Object.keys(testing).sort()).toEqual(['runMigrationInMemory'])
  })

  it('package.json exports the library and aas-migrate/testing from dist', async () => {
    const pkg = (await import('../package.json', { with: { type: 'json' } })).default as { exports: Record<string, unknown> }
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' })
    expect(pkg.exports['./testing']).toEqual({ types: './dist/testing.d.ts', default: './dist/testing.js' })
  })

  it('runs status, a dry run, migrate, listSnapshots, rollback and doctor on a vault and returns results without printing', async () => {
    const v = await makeVault('vault-v1')
    try {
      const agentsRoot = v.root
      expect((await api.status({ agentsRoot })).inventory.vaultVersion).toBe(1)
      const dry = await api.migrate({ agentsRoot, target: 2, dryRun: true })
      expect(dry.error?.message ?? null, String(dry.error?.cause)).toBeNull()
      expect(dry).toMatchObject({ ok: true, applied: false, dryRun: true })
      const run = await api.migrate({ agentsRoot, target: 2 })
      expect(run).toMatchObject({ ok: true, applied: true })
      const list = await api.listSnapshots({ agentsRoot })
      expect(list.map((s) => s.name)).toContain(run.snapshot?.name)
      const refused = await api.migrate({ agentsRoot, target: 2 })
      expect(refused.error).toBeInstanceOf(api.AasError)
      expect(refused.error?.code).toBe('NOT_ABOVE_CURRENT')
      const back = await api.rollback({ agentsRoot, snapshot: run.snapshot?.name as string })
      expect(back.ok).toBe(true)
      expect((await api.status({ agentsRoot })).inventory.vaultVersion).toBe(1)
      expect((await api.doctor({ agentsRoot })).ok).toBe(true)
    } finally {
      await v.cleanup()
    }
  })

  it('defineMigration returns its argument unchanged', () => {
    const m = { from: 1, to: 2, appliesTo: () => true, migrate: () => true }
    expect(api.defineMigration(m)).toBe(m)
  })
})
