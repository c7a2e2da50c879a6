import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { applyChain, type UnitInput } from '../../src/migrations/apply.js'
import type { MigratableUnit, Migration } from '../../src/migrations/define.js'
import { loadScript, type LoadedMigration } from '../../src/migrations/load.js'
import { parseUnitText } from '../../src/vault/frontmatter.js'
import { fixturesDir } from '../helpers/make-vault.js'

// An in-memory step: the engine's view of a loaded script, without a file.
function step(from: number, migration: Partial<Migration>): LoadedMigration {
  const file = `_migrations/v${from}_to_v${from + 1}.mjs`
  return {
    file,
    path: `/nowhere/${file}`,
    from,
    to: from + 1,
    ext: 'mjs',
    migration: {
      from,
      to: from + 1,
      appliesTo: (u) => u.readFrontmatter().schema_version === from,
      migrate: (u) => {
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: from + 1 })
        return true
      },
      ...migration,
    },
  }
}

const memory = (v = 1, extra = ''): UnitInput => ({
  unitId: 'caldwell/memory/user_household.md',
  unitType: 'memory',
  text: `---\nschema_version: ${v}\n# who the household is\nname: Household\ncaptured: 2026-03-02\ntags: [household]   # budget view\n${extra}---\nHousehold of three.\n`,
})
const wiki = (v = 1): UnitInput => ({
  unitId: 'caldwell/wiki/avalanche_method.md',
  unitType: 'wiki',
  text: `---\r\nschema_version: ${v}\r\ntype: wiki_page\r\nname: Avalanche\r\n---\r\n# Avalanche\r\n`,
})

const meta = (text: string) => {
  const p = parseUnitText(text)
  if (!p.ok) throw new Error(p.error.message)
  return p.unit.readFrontmatter()
}
const body = (text: string) => {
  const p = parseUnitText(text)
  if (!p.ok) throw new Error(p.error.message)
  return p.unit.readBody()
}

async function fixtureChain(): Promise<LoadedMigration[]> {
  return Promise.all([
    loadScript({ file: '_migrations/v1_to_v2.mjs', path: path.join(fixturesDir, 'migrations', 'v1_to_v2.mjs'), from: 1, to: 2, ext: 'mjs' }),
    loadScript({ file: '_migrations/v2_to_v3.ts', path: path.join(fixturesDir, 'migrations', 'v2_to_v3.ts'), from: 2, to: 3, ext: 'ts' }),
  ])
}

describe('applyChain', () => {
  it('when running the fixture chain v1->v2->v3 then v2_to_v3 sees v1_to_v2 output and every unit ends at v3', async () => {
    const r = await applyChain(await fixtureChain(), [memory(), wiki()])
    expect(r.errors).toEqual([])
    expect(r.ok).toBe(true)
    const [m, w] = r.units
    expect(meta(m!.after)).toEqual({
      schema_version: 3,
      name: 'Household',
      created: '2026-03-02',
      tags: ['household'],
      provenance: 'v1_migrated',
      agent: 'caldwell',
    })
    expect(meta(w!.after)).toEqual({ schema_version: 3, type: 'wiki_page', name: 'Avalanche', provenance: 'v1_migrated', agent: 'caldwell' })
    expect(body(m!.after)).toBe('Household of three.\n')
    expect(body(w!.after)).toBe('# Avalanche\r\n')
    expect(m!.touched).toBe(true)
    expect(m!.changes).toEqual(['schema_version 1→2', 'provenance added', 'schema_version 2→3', 'captured renamed to created'])
    expect(m!.steps.map((s) => [s.file, s.status])).toEqual([
      ['_migrations/v1_to_v2.mjs', 'touched'],
      ['_migrations/v2_to_v3.ts', 'touched'],
    ])
    expect(m!.before).toBe(memory().text)
  })

  it('when a unit is already past a step then that step is not applicable to it and later steps still run', async () => {
    const r = await applyChain(await fixtureChain(), [memory(2, 'provenance: hand_written\n')])
    expect(r.ok).toBe(true)
    expect(r.units[0]!.steps.map((s) => s.status)).toEqual(['not-applicable', 'touched'])
    expect(meta(r.units[0]!.after)).toMatchObject({ schema_version: 3, provenance: 'hand_written' })
  })

  it('when no step applies to a unit then after is byte-identical to before and it is not touched', async () => {
    const r = await applyChain([step(1, {}), step(2, {})], [memory(5), wiki(5)])
    expect(r.ok).toBe(true)
    expect(r.units.map((u) => [u.touched, u.after === u.before])).toEqual([
      [false, true],
      [false, true],
    ])
  })

  it('when the script reads the unit then it gets the vault-relative id, the type, the dry-run flag and no path', async () => {
    const seen: unknown[] = []
    const s = step(1, {
      migrate(u: MigratableUnit) {
        seen.push({ id: u.unitId, type: u.unitType, dryRun: u.dryRun, keys: Object.keys(u).sort() })
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: 2 })
        return true
      },
    })
    await applyChain([s], [memory(), wiki()], { dryRun: true })
    expect(seen).toEqual([
      {
        id: 'caldwell/memory/user_household.md',
        type: 'memory',
        dryRun: true,
        keys: ['dryRun', 'readBody', 'readFrontmatter', 'unitId', 'unitType', 'writeBody', 'writeFrontmatter'],
      },
      {
        id: 'caldwell/wiki/avalanche_method.md',
        type: 'wiki',
        dryRun: true,
        keys: ['dryRun', 'readBody', 'readFrontmatter', 'unitId', 'unitType', 'writeBody', 'writeFrontmatter'],
      },
    ])
  })

  it('when a script mutates what readFrontmatter returned without writing then the unit does not change', async () => {
    const s = step(1, {
      appliesTo: () => true,
      migrate(u) {
        const m = u.readFrontmatter()
        m.schema_version = 99
        ;(m.tags as string[]).push('mutated')
        const again = u.readFrontmatter()
        if (again.schema_version !== 1 || (again.tags as string[]).length !== 1) throw new Error('readFrontmatter is not a copy')
        u.writeFrontmatter({ ...again, schema_version: 2 })
        return true
      },
    })
    const r = await applyChain([s], [memory()])
    expect(r.errors).toEqual([])
    expect(meta(r.units[0]!.after)).toEqual({ schema_version: 2, name: 'Household', captured: '2026-03-02', tags: ['household'] })
  })

  it('when a script mutates the object it wrote after writing then the stored front matter is unaffected', async () => {
    const s = step(1, {
      migrate(u) {
        const m = { ...u.readFrontmatter(), schema_version: 2 }
        u.writeFrontmatter(m)
        m.schema_version = 7
        return true
      },
    })
    const r = await applyChain([s], [memory()])
    expect(meta(r.units[0]!.after).schema_version).toBe(2)
  })

  it('when a script writes front matter then it replaces all keys and keeps the body; writeBody replaces the body', async () => {
    const s = step(1, {
      migrate(u) {
        u.writeFrontmatter({ schema_version: 2 })
        u.writeBody(u.readBody().toUpperCase())
        return { changes: ['trimmed'] }
      },
    })
    const r = await applyChain([s], [memory()])
    expect(meta(r.units[0]!.after)).toEqual({ schema_version: 2 })
    expect(body(r.units[0]!.after)).toBe('HOUSEHOLD OF THREE.\n')
    expect(r.units[0]!.changes).toEqual(['trimmed'])
  })

  it('when migrate returns a falsy value then the unit is skipped and its writes are discarded', async () => {
    const s = step(1, {
      appliesTo: () => true,
      migrate(u) {
        u.writeBody('gone')
        return undefined
      },
    })
    const r = await applyChain([s], [memory(2)])
    expect(r.ok).toBe(true)
    expect(r.units[0]!.after).toBe(memory(2).text)
    expect([r.units[0]!.touched, r.units[0]!.steps[0]!.status]).toEqual([false, 'skipped'])
  })

  it('when appliesTo is true but migrate leaves the old version then the run fails with SCRIPT_NO_BUMP naming script and unit, and later steps do not run', async () => {
    let laterRan = false
    const bad = step(1, {
      migrate(u) {
        u.writeFrontmatter({ ...u.readFrontmatter(), touched: true })
        return true
      },
    })
    const later = step(2, { appliesTo: () => ((laterRan = true), false) })
    const r = await applyChain([bad, later], [memory(), wiki()])
    expect(r.ok).toBe(false)
    expect(r.errors.map((e) => [e.code, e.data])).toEqual([
      [
        'SCRIPT_NO_BUMP',
        { script: '_migrations/v1_to_v2.mjs', unit: 'caldwell/memory/user_household.md', step: 'v1 -> v2', found: 1, expected: 2, returned: 'truthy' },
      ],
      [
        'SCRIPT_NO_BUMP',
        { script: '_migrations/v1_to_v2.mjs', unit: 'caldwell/wiki/avalanche_method.md', step: 'v1 -> v2', found: 1, expected: 2, returned: 'truthy' },
      ],
    ])
    expect(r.failedStep).toEqual({ file: '_migrations/v1_to_v2.mjs', from: 1, to: 2 })
    expect(laterRan).toBe(false)
  })

  it('when migrate bumps but returns nothing then the writes are discarded and SCRIPT_NO_BUMP says it returned falsy', async () => {
    const s = step(1, {
      migrate(u) {
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: 2 })
      },
    })
    const r = await applyChain([s], [memory()])
    expect(r.errors.map((e) => [e.code, e.data.returned, e.data.found])).toEqual([['SCRIPT_NO_BUMP', 'falsy', 1]])
  })

  it('when migrate sets schema_version to the string "2" then SCRIPT_NO_BUMP reports what it found', async () => {
    const s = step(1, {
      migrate(u) {
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: '2' })
        return true
      },
    })
    const r = await applyChain([s], [memory()])
    expect(r.errors.map((e) => [e.code, e.data.found])).toEqual([['SCRIPT_NO_BUMP', '2']])
  })

  it('when migrate throws on some units then every failure is SCRIPT_FAILED with script, unit, step and cause', async () => {
    const boom = new Error('no captured date')
    const s = step(1, {
      migrate(u) {
        if (u.unitType === 'memory') throw boom
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: 2 })
        return true
      },
    })
    const r = await applyChain([s], [memory(), wiki(), { ...memory(), unitId: 'scout/memory/user_x.md' }])
    expect(r.ok).toBe(false)
    expect(r.errors.map((e) => [e.code, e.data])).toEqual([
      ['SCRIPT_FAILED', { script: '_migrations/v1_to_v2.mjs', unit: 'caldwell/memory/user_household.md', step: 'v1 -> v2', phase: 'migrate' }],
      ['SCRIPT_FAILED', { script: '_migrations/v1_to_v2.mjs', unit: 'scout/memory/user_x.md', step: 'v1 -> v2', phase: 'migrate' }],
    ])
    expect(r.errors[0]!.cause).toBe(boom)
  })

  it('when appliesTo throws then the run fails with SCRIPT_FAILED in phase appliesTo', async () => {
    const s = step(1, {
      appliesTo() {
        throw new TypeError('bad')
      },
    })
    const r = await applyChain([s], [wiki()])
    expect(r.errors.map((e) => [e.code, e.data.phase, e.data.unit])).toEqual([['SCRIPT_FAILED', 'appliesTo', 'caldwell/wiki/avalanche_method.md']])
  })

  it('when a unit is unreadable then no script runs and the run fails with UNIT_UNREADABLE naming it and the position', async () => {
    let calls = 0
    const s = step(1, { appliesTo: () => (calls++, true) })
    const broken: UnitInput = {
      unitId: 'caldwell/memory/feedback_debt_priority.md',
      unitType: 'memory',
      text: '---\nschema_version: 1\ndescription: Locked: avalanche first\n---\nbody\n',
    }
    const r = await applyChain([s], [memory(), broken])
    expect(r.ok).toBe(false)
    expect(r.units).toEqual([])
    const parsed = parseUnitText(broken.text)
    if (parsed.ok) throw new Error('fixture text must not parse')
    expect(r.errors.map((e) => [e.code, e.data])).toEqual([['UNIT_UNREADABLE', { unit: 'caldwell/memory/feedback_debt_priority.md', ...parsed.error }]])
    expect(calls).toBe(0)
  })

  it('when a script keeps a unit handle and writes through it in a later step then the write is refused', async () => {
    let kept: MigratableUnit | undefined
    const first = step(1, {
      migrate(u) {
        kept = u
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: 2 })
        return true
      },
    })
    const second = step(2, {
      migrate(u) {
        kept!.writeBody('late write')
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: 3 })
        return true
      },
    })
    const r = await applyChain([first, second], [memory()])
    expect(r.errors.map((e) => [e.code, e.data.unit, e.data.step])).toEqual([['UNIT_WRITE_INVALID', 'caldwell/memory/user_household.md', 'v2 -> v3']])
  })

  it.each([
    ['a function value', { schema_version: 2, f: () => 1 }],
    ['a Date', { schema_version: 2, captured: new Date('2026-03-02') }],
    ['a nested NaN', { schema_version: 2, stats: { score: [1, Number.NaN] } }],
    ['a class instance', { schema_version: 2, seen: new Set(['a']) }],
    ['an array', [1, 2]],
    ['null', null],
  ])('when a script writes %s as front matter then UNIT_WRITE_INVALID names the script and unit', async (_case, value) => {
    const s = step(1, {
      migrate(u) {
        u.writeFrontmatter(value as never)
        return true
      },
    })
    const r = await applyChain([s], [memory()])
    expect(r.errors.map((e) => [e.code, e.data.script, e.data.unit])).toEqual([
      ['UNIT_WRITE_INVALID', '_migrations/v1_to_v2.mjs', 'caldwell/memory/user_household.md'],
    ])
  })

  it('when an unversioned unit without front matter goes through v0_to_v1 then it gains front matter and keeps its body', async () => {
    const s = step(0, {
      appliesTo: (u) => u.readFrontmatter().schema_version === undefined,
      migrate(u) {
        u.writeFrontmatter({ schema_version: 1, ...u.readFrontmatter() })
        return { changes: ['front matter added'] }
      },
    })
    const plain: UnitInput = { unitId: 'writer/wiki/outline.md', unitType: 'wiki', text: '# Outline\n\n- intro\n' }
    const r = await applyChain([s], [plain])
    expect(r.errors).toEqual([])
    expect(r.units[0]!.after).toBe('---\nschema_version: 1\n---\n# Outline\n\n- intro\n')
    expect(r.units[0]!.steps[0]!.status).toBe('touched')
  })

  it('when no options are given then scripts see dryRun false', async () => {
    const flags: boolean[] = []
    await applyChain([step(1, { appliesTo: (u) => (flags.push(u.dryRun), false) })], [memory()])
    expect(flags).toEqual([false])
  })

  it('when a script writes a Date then the error points at the key', async () => {
    const s = step(1, {
      migrate(u) {
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: 2, dates: { captured: new Date() } })
        return true
      },
    })
    const r = await applyChain([s], [memory()])
    expect(r.errors.map((e) => [e.code, e.data.field])).toEqual([['UNIT_WRITE_INVALID', 'dates.captured']])
  })

  it('when a script leaves an undefined key then it is dropped like JSON would', async () => {
    const s = step(1, {
      migrate(u) {
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: 2, tags: undefined })
        return true
      },
    })
    const r = await applyChain([s], [memory()])
    expect(meta(r.units[0]!.after)).toEqual({ schema_version: 2, name: 'Household', captured: '2026-03-02' })
  })

  it('when appliesTo and migrate are async then they are awaited', async () => {
    const s = step(1, {
      appliesTo: async () => true,
      migrate: async (u) => {
        await new Promise((resolve) => setImmediate(resolve))
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: 2 })
        return { changes: ['async'] }
      },
    })
    const r = await applyChain([s], [memory()])
    expect([r.ok, r.units[0]!.changes, meta(r.units[0]!.after).schema_version]).toEqual([true, ['async'], 2])
  })

  it('when the given steps are not contiguous then refuses with CHAIN_GAP before running anything', async () => {
    let calls = 0
    const r = await applyChain([step(1, { appliesTo: () => (calls++, true) }), step(3, {})], [memory()])
    expect([r.ok, r.errors[0]!.code, calls]).toEqual([false, 'CHAIN_GAP', 0])
  })
})
