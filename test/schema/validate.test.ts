import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { applyChain } from '../../src/migrations/apply.js'
import type { Migration } from '../../src/migrations/define.js'
import { discoverScripts } from '../../src/migrations/discover.js'
import { loadScripts, type LoadedMigration } from '../../src/migrations/load.js'
import { planChain } from '../../src/migrations/plan.js'
import { formatFailures, validateUnits, type ValidationUnit } from '../../src/schema/validate.js'
import { scanVault } from '../../src/vault/walk.js'
import { makeVault } from '../helpers/make-vault.js'

function script(to: number, extra: Partial<Migration>): LoadedMigration {
  const from = to - 1
  const file = `_migrations/v${from}_to_v${to}.mjs`
  return { file, path: `/nowhere/${file}`, from, to, ext: 'mjs', migration: { from, to, appliesTo: () => false, migrate: () => false, ...extra } }
}

const mem = (fm: string, unitId = 'caldwell/memory/user_household.md'): ValidationUnit => ({ unitId, unitType: 'memory', text: `---\n${fm}---\nbody\n` })
const wik = (fm: string, unitId = 'caldwell/wiki/page.md'): ValidationUnit => ({ unitId, unitType: 'wiki', text: `---\n${fm}---\nbody\n` })

async function unitsOf(root: string): Promise<ValidationUnit[]> {
  const scan = await scanVault(root)
  return Promise.all(scan.units.map(async (u) => ({ unitId: u.path, unitType: u.unitType!, text: await readFile(path.join(root, u.path), 'utf8') })))
}

describe('validateUnits', () => {
  it('when the sample v1 vault is validated at v1 then every unit passes the built-in schemas', async () => {
    const vault = await makeVault('vault-v1')
    try {
      const units = await unitsOf(vault.root)
      expect(units.length).toBeGreaterThanOrEqual(10)
      const r = await validateUnits(units, { version: 1 })
      expect(formatFailures(r.failures)).toEqual([])
      expect([r.ok, r.checked, r.mode, r.coverage]).toEqual([true, units.length, 'schema', { memory: 'schema', wiki: 'schema' }])
    } finally {
      await vault.cleanup()
    }
  })

  it('when several units fail then every unit and every issue is reported as path: field: message', async () => {
    const r = await validateUnits(
      [
        mem('schema_version: 1\nname: x\n'),
        wik('schema_version: 1\ntype: wiki_page\nname: ok\ndescription: ok\n'),
        wik('schema_version: 1\ntype: page\nname: ok\n', 'scout/wiki/bad.md'),
      ],
      { version: 1 },
    )
    expect(r.ok).toBe(false)
    expect(r.checked).toBe(3)
    expect(r.failures.map((f) => [f.unitId, f.issues.map((i) => i.field)])).toEqual([
      ['caldwell/memory/user_household.md', ['description', 'type', 'captured', 'last_seen', 'sources', 'confidence']],
      ['scout/wiki/bad.md', ['type', 'description']],
    ])
    const lines = formatFailures(r.failures)
    expect(lines).toHaveLength(8)
    expect(lines[0]).toBe('caldwell/memory/user_household.md: description: is required')
    expect(lines[6]).toBe('scout/wiki/bad.md: type: must be wiki_page')
  })

  it('when a unit is at another version then schema_version is reported once, with what was found', async () => {
    const r = await validateUnits(
      [
        wik('schema_version: 2\ntype: wiki_page\nname: a\ndescription: b\n'),
        wik("schema_version: '1'\ntype: wiki_page\nname: a\ndescription: b\n", 'w/wiki/s.md'),
      ],
      { version: 1 },
    )
    expect(formatFailures(r.failures)).toEqual([
      'caldwell/wiki/page.md: schema_version: must be 1, found 2',
      'w/wiki/s.md: schema_version: must be 1, found "1"',
    ])
  })

  it('when a unit is unreadable or has no front matter then it fails on front matter, not silently', async () => {
    const r = await validateUnits(
      [
        { unitId: 'a/memory/user_a.md', unitType: 'memory', text: '---\nschema_version: 1\ndescription: Locked: x\n---\n' },
        { unitId: 'a/wiki/plain.md', unitType: 'wiki', text: '# just text\n' },
      ],
      { version: 1 },
    )
    expect(r.failures.map((f) => [f.unitId, f.issues.map((i) => i.field)])).toEqual([
      ['a/memory/user_a.md', ['front matter']],
      ['a/wiki/plain.md', ['front matter']],
    ])
  })

  it('when no script defines a schema for the version then only structure and schema_version are checked and the result says so', async () => {
    const units = [
      mem('schema_version: 4\nanything: goes\n'),
      wik('schema_version: 3\n'),
      { unitId: 'x/wiki/y.md', unitType: 'wiki' as const, text: 'no front matter\n' },
    ]
    const r = await validateUnits(units, { version: 4, scripts: [script(4, {})] })
    expect([r.mode, r.coverage]).toEqual(['structure-only', { memory: 'structure-only', wiki: 'structure-only' }])
    expect(r.note).toContain('schema_version === 4')
    expect(r.failures.map((f) => [f.unitId, f.issues.map((i) => i.field)])).toEqual([
      ['caldwell/wiki/page.md', ['schema_version']],
      ['x/wiki/y.md', ['front matter']],
    ])
  })

  it('when the version has no script at all then validation is structure-only too', async () => {
    const r = await validateUnits([mem('schema_version: 7\n')], { version: 7 })
    expect([r.ok, r.mode]).toEqual([true, 'structure-only'])
  })

  it('when the script for the version gives a zod schema for memory only then memory uses it and wiki is structure-only', async () => {
    const s = script(2, { schema: { memory: z.object({ schema_version: z.literal(2), provenance: z.string() }) } })
    const r = await validateUnits([mem('schema_version: 2\n'), wik('schema_version: 2\n')], { version: 2, scripts: [s] })
    expect([r.mode, r.coverage]).toEqual(['schema', { memory: 'schema', wiki: 'structure-only' }])
    expect(r.failures.map((f) => [f.unitId, f.issues.map((i) => i.field)])).toEqual([['caldwell/memory/user_household.md', ['provenance']]])
    expect(r.note).toContain('wiki pages')
  })

  it('when the script validate returns field: message strings then they become fields; other strings name the front matter', async () => {
    const seen: unknown[] = []
    const s = script(2, {
      validate(meta, unit) {
        seen.push([unit.unitId, unit.unitType, unit.readBody(), meta.schema_version])
        return ['provenance: is required', 'tags[0]: must be lower case', 'something is off']
      },
    })
    const r = await validateUnits([mem('schema_version: 2\n')], { version: 2, scripts: [script(3, {}), s] })
    expect(r.mode).toBe('schema')
    expect(seen).toEqual([['caldwell/memory/user_household.md', 'memory', 'body\n', 2]])
    expect(r.failures[0]!.issues).toEqual([
      { field: 'provenance', message: 'is required' },
      { field: 'tags[0]', message: 'must be lower case' },
      { field: 'front matter', message: 'something is off' },
    ])
  })

  it('when the script validate throws or returns a non-array then the unit fails on validate, naming the script', async () => {
    const throws = script(2, {
      validate() {
        throw new Error('oops')
      },
    })
    const r1 = await validateUnits([mem('schema_version: 2\n')], { version: 2, scripts: [throws] })
    expect(r1.failures[0]!.issues).toEqual([{ field: 'validate', message: '_migrations/v1_to_v2.mjs validate() threw: oops' }])
    const weird = script(2, { validate: (() => 'fine') as never })
    const r2 = await validateUnits([mem('schema_version: 2\n')], { version: 2, scripts: [weird] })
    expect(r2.failures[0]!.issues.map((i) => i.field)).toEqual(['validate'])
  })

  it('when the fixture chain runs over the sample vault then the v3 result validates and no live file changed', async () => {
    const vault = await makeVault('vault-v1', { migrations: ['v1_to_v2.mjs', 'v2_to_v3.ts'] })
    try {
      const units = await unitsOf(vault.root)
      const { scripts, errors } = await discoverScripts(vault.root)
      expect(errors).toEqual([])
      const plan = planChain({ current: 1, target: 3, scripts })
      if (!plan.ok) throw plan.error
      const { loaded, errors: loadErrors } = await loadScripts(plan.steps.map((s) => s.script))
      expect(loadErrors).toEqual([])
      const applied = await applyChain(loaded, units)
      expect(applied.errors).toEqual([])
      expect(applied.units.every((u) => u.touched)).toBe(true)
      const after = applied.units.map((u) => ({ unitId: u.unitId, unitType: u.unitType, text: u.after }))
      const v3 = await validateUnits(after, { version: 3, scripts: loaded })
      expect(formatFailures(v3.failures)).toEqual([])
      expect(v3.mode).toBe('schema')
      // The v1 units fail at v3 on schema_version and the v3 rules: proof the check can fail.
      const stale = await validateUnits(units, { version: 3, scripts: loaded })
      expect(stale.failures).toHaveLength(units.length)
      expect(await unitsOf(vault.root)).toEqual(units)
    } finally {
      await vault.cleanup()
    }
  })
})
