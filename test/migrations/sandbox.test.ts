import { appendFileSync } from 'node:fs'
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrate } from '../../src/api.js'
import type { ApplyResult, UnitInput } from '../../src/migrations/apply.js'
import type { ScriptFile } from '../../src/migrations/discover.js'
import { applyBatches, batchesOf, ChainPool, MIN_UNITS_PER_WORKER, runChainContained, workerCount } from '../../src/migrations/sandbox.js'
import { readingOfText } from '../../src/vault/inventory.js'
import { renderUnifiedDiffBytes, type DiffFile } from '../../src/diff/unified.js'
import { hashBlob } from '../../src/transaction/blob-hash.js'
import { moduleUrl } from '../../src/module-worker.js'
import type { FileMode } from '../../src/vault/walk.js'
import { makeVault } from '../helpers/make-vault.js'

// The chain split over parallel workers must give exactly what one worker gives: the
// same texts, validation and errors, in unit order, for every way a run can end.

// v1 -> v2 throws on a body with BOOM1, hangs on HANG; its validation rejects `bad: true`.
const V1 = `export default {
  from: 1, to: 2,
  appliesTo(unit) { return unit.readFrontmatter().schema_version === 1 },
  migrate(unit) {
    const body = unit.readBody()
    if (body.includes('BOOM1')) throw new Error('boom at step 1')
    if (body.includes('HANG')) for (;;) {}
    const meta = unit.readFrontmatter()
    meta.schema_version = 2
    meta.step1 = unit.unitId
    unit.writeFrontmatter(meta)
    return { changes: ['one'] }
  },
}
`
const V2 = `export default {
  from: 2, to: 3,
  appliesTo(unit) { return unit.readFrontmatter().schema_version === 2 },
  migrate(unit) {
    if (unit.readBody().includes('BOOM2')) throw new Error('boom at step 2')
    const meta = unit.readFrontmatter()
    meta.schema_version = 3
    unit.writeFrontmatter(meta)
    return { changes: ['two'] }
  },
  validate(meta) { return meta.bad === true ? ['bad: must not be true'] : [] },
}
`

let dir: string
let scripts: ScriptFile[]

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'aas-sandbox-'))
  scripts = [
    { file: '_migrations/v1_to_v2.mjs', path: path.join(dir, 'v1_to_v2.mjs'), from: 1, to: 2, ext: 'mjs' },
    { file: '_migrations/v2_to_v3.mjs', path: path.join(dir, 'v2_to_v3.mjs'), from: 2, to: 3, ext: 'mjs' },
  ]
  await writeFile(scripts[0]!.path, V1)
  await writeFile(scripts[1]!.path, V2)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function units(n: number, special: Record<number, { body?: string; extra?: string; raw?: string }> = {}): UnitInput[] {
  return Array.from({ length: n }, (_, i) => {
    const s = special[i] ?? {}
    const text = s.raw ?? `---\nschema_version: 1\nname: Unit ${i}\n${s.extra ?? ''}---\n${s.body ?? `Body ${i}.`}\n`
    return { unitId: `a/memory/user_u${String(i).padStart(3, '0')}.md`, unitType: 'memory', text }
  })
}

// Batches of two units, pulled slowly: `most` is the largest number of batches the pool
// had in flight when the next one was asked for.
function watchedBatches(pool: ChainPool, input: UnitInput[]): { most: number; source: () => AsyncGenerator<UnitInput[]> } {
  const watched = {
    most: 0,
    async *source(): AsyncGenerator<UnitInput[]> {
      for (const b of batchesOf(input, 2)) {
        watched.most = Math.max(watched.most, pool.queued)
        yield b
      }
    },
  }
  return watched
}

// What must agree between runs: everything but error objects' identity (a failed run's
// units are not compared: one worker's reach the failing unit, merged batches carry none).
function shape(r: ApplyResult): unknown {
  return {
    ok: r.ok,
    units: (r.ok ? r.units : []).map((u) => [u.unitId, u.after, u.touched, u.changes, u.steps.map((s) => s.status)]),
    errors: r.errors.map((e) => [e.code, e.message]),
    failedStep: r.failedStep ?? null,
    validation: r.validation ?? null,
  }
}

async function both(input: UnitInput[], workers: number): Promise<{ one: ApplyResult; many: ApplyResult }> {
  const opts = { validateVersion: 3, unitsReadable: true, timeoutMs: 20_000 }
  // One worker, one batch; against several workers sharing batches of 2 units.
  const [one, many] = await Promise.all([
    runChainContained(scripts, input, { ...opts, workers: 1 }),
    runChainContained(scripts, input, { ...opts, workers, batchUnits: 2 }),
  ])
  return { one, many }
}

describe('runChainContained over parallel workers and batches', () => {
  it('when the chain succeeds then 2 and 3 workers return the texts, order and validation of one worker', async () => {
    const input = units(10, { 1: { extra: 'bad: true\n' }, 8: { extra: 'bad: true\n' } })
    for (const workers of [2, 3]) {
      const { one, many } = await both(input, workers)
      expect(one.ok).toBe(true)
      expect(one.validation?.failures.map((f) => f.unitId)).toEqual([input[1]!.unitId, input[8]!.unitId])
      expect(one.units[9]!.after).toContain('step1: a/memory/user_u009.md')
      expect(shape(many)).toEqual(shape(one))
    }
  })

  it('when slices fail at different steps then only every error of the earliest step is reported, as with one worker', async () => {
    // Slice 0 of 3 fails at step 2 only, slices 1 and 2 at step 1.
    const input = units(9, { 0: { body: 'BOOM2' }, 4: { body: 'BOOM1' }, 7: { body: 'BOOM1' } })
    const { one, many } = await both(input, 3)
    expect(one.ok).toBe(false)
    expect(one.failedStep?.from).toBe(1)
    expect(one.errors.map((e) => e.data.unit)).toEqual([input[4]!.unitId, input[7]!.unitId])
    expect(shape(many)).toEqual(shape(one))
  })

  it('when one slice has an unreadable unit and another a failing script then only the unreadable unit is reported', async () => {
    const input = units(6, { 1: { body: 'BOOM1' }, 5: { raw: '---\nname: [unclosed\n---\nx\n' } })
    const { one, many } = await both(input, 2)
    expect(one.errors.map((e) => e.code)).toEqual(['UNIT_UNREADABLE'])
    expect(shape(many)).toEqual(shape(one))
  })

  it('when a script hangs in one slice then the run stops naming that script and unit, and the other slices are stopped', async () => {
    const input = units(6, { 4: { body: 'HANG' } })
    const r = await runChainContained(scripts, input, { validateVersion: 3, unitsReadable: true, timeoutMs: 1000, workers: 2, batchUnits: 2 })
    expect(r.ok).toBe(false)
    expect(r.errors).toHaveLength(1)
    expect(r.errors[0]!.data).toMatchObject({ script: '_migrations/v1_to_v2.mjs', unit: input[4]!.unitId, reason: 'timeout' })
  })

  it('when the caller aborts then every worker stops and the result is a failure saying so', async () => {
    const input = units(4, { 0: { body: 'HANG' }, 3: { body: 'HANG' } })
    const stop = new AbortController()
    const pending = runChainContained(scripts, input, {
      validateVersion: 3,
      unitsReadable: true,
      timeoutMs: 60_000,
      workers: 2,
      batchUnits: 2,
      signal: stop.signal,
    })
    setTimeout(() => stop.abort(), 300)
    const r = await pending
    expect(r.ok).toBe(false)
    expect(r.errors[0]!.data.reason).toBe('aborted')
  })

  it('splits only vaults big enough to pay for a second worker, and an explicit count wins', () => {
    expect(workerCount(MIN_UNITS_PER_WORKER - 1)).toBe(1)
    expect(workerCount(10, 3)).toBe(3)
    expect(workerCount(2, 5)).toBe(2)
    expect(workerCount(0, 2)).toBe(1)
  })
})

describe('ChainPool: the pre-flight parse, then the chain, in the same workers', () => {
  it("reports every unit's reading in order, then runs the chain it is given as runChainContained would", async () => {
    const input = units(7, { 2: { raw: '---\nname: no version\n---\nx\n' }, 5: { raw: '---\nname: [unclosed\n---\nx\n' } })
    const pool = new ChainPool(3, { validateVersion: 3, unitsReadable: true })
    try {
      const got = await Promise.all([...batchesOf(input, 2)].map((b) => pool.read(b)))
      expect(got.every((g) => g.ok)).toBe(true)
      const readings = got.flatMap((g) => (g.ok ? g.readings : []))
      expect(readings).toEqual(input.map((u) => readingOfText(u.text)))
      expect(readings[2]).toEqual({ kind: 'unversioned' })
      expect(readings[5]!.kind).toBe('unreadable')
      const readable = units(7, { 3: { extra: 'bad: true\n' } })
      expect(await pool.load(scripts)).toBeNull()
      const seen: number[] = []
      const ran = await applyBatches(pool, batchesOf(readable, 2), (batch, r, k) => {
        expect(r.units.map((u) => u.unitId)).toEqual(batch.map((u) => u.unitId))
        seen.push(k)
      })
      const direct = await runChainContained(scripts, readable, { validateVersion: 3, unitsReadable: true, workers: 1 })
      expect(ran.ok).toBe(true)
      expect(shape(ran)).toEqual(shape(direct))
      expect(seen.sort()).toEqual([0, 1, 2, 3])
    } finally {
      await pool.close()
    }
  })

  it('when batches come from a slow source then at most two per worker are in flight, and a batch emptied by its callback is not kept', async () => {
    const input = units(40)
    const pool = new ChainPool(2, { validateVersion: 3, unitsReadable: true })
    const watched = watchedBatches(pool, input)
    try {
      expect(await pool.load(scripts)).toBeNull()
      let touched = 0
      const r = await applyBatches(pool, watched.source(), (_batch, res) => {
        touched += res.units.filter((u) => u.touched).length
        res.units.length = 0
      })
      expect(r.ok).toBe(true)
      expect(r.units).toEqual([])
      expect(touched).toBe(40)
      expect(r.validation?.checked).toBe(40)
      expect(watched.most).toBeLessThanOrEqual(4)
      expect(watched.most).toBeGreaterThan(0)
    } finally {
      await pool.close()
    }
  })

  it('when the pool is told to use one worker then only that worker gets batches until it is told to use all again', async () => {
    const tagger: ScriptFile = { file: '_migrations/v1_to_v2.mjs', path: path.join(dir, 'tagger.mjs'), from: 1, to: 2, ext: 'mjs' }
    await writeFile(
      tagger.path,
      `import { threadId } from 'node:worker_threads'\nexport default { from: 1, to: 2, appliesTo: () => true, migrate(unit) { const m = unit.readFrontmatter(); m.schema_version = 2; m.thread = threadId; unit.writeFrontmatter(m); return { changes: ['tag'] } } }\n`,
    )
    const input = units(24)
    const pool = new ChainPool(2, { unitsReadable: true })
    const threads = (r: ApplyResult): Set<string> => new Set(r.units.map((u) => /thread: (\d+)/.exec(u.after)?.[1] ?? 'none'))
    const watched = watchedBatches(pool, input)
    try {
      expect(await pool.load([tagger])).toBeNull()
      pool.use(1)
      const one = await applyBatches(pool, watched.source())
      expect(one.ok).toBe(true)
      expect(threads(one).size).toBe(1)
      expect(watched.most).toBeLessThanOrEqual(2)
      pool.use(2)
      const both = await applyBatches(pool, batchesOf(input, 1))
      expect(both.ok).toBe(true)
      expect(threads(both).size).toBe(2)
      expect(threads(both)).toContain([...threads(one)][0])
    } finally {
      await pool.close()
    }
  })

  it('when the source throws then the pool stops and the error reaches the caller', async () => {
    const pool = new ChainPool(1, { validateVersion: 3, unitsReadable: true })
    async function* source(): AsyncGenerator<UnitInput[]> {
      yield units(2)
      throw new Error('the vault changed under the chain')
    }
    try {
      expect(await pool.load(scripts)).toBeNull()
      await expect(applyBatches(pool, source())).rejects.toThrow('the vault changed under the chain')
      expect(pool.halted).toBe(true)
    } finally {
      await pool.close()
    }
  })

  it('when cancelled after the readings then no script is ever loaded and the workers stop', async () => {
    const marker = path.join(dir, 'loaded.txt')
    const loud: ScriptFile = { file: '_migrations/v1_to_v2.mjs', path: path.join(dir, 'loud.mjs'), from: 1, to: 2, ext: 'mjs' }
    await writeFile(
      loud.path,
      `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(marker)}, 'loaded')\nexport default { from: 1, to: 2, appliesTo: () => false, migrate: () => false }\n`,
    )
    const pool = new ChainPool(2, { validateVersion: 2, unitsReadable: true })
    try {
      expect((await pool.read(units(4))).ok).toBe(true)
      pool.cancel()
      const after = await pool.load([loud])
      expect(after?.ok).toBe(false)
      expect(after?.errors[0]?.data.reason).toBe('aborted')
      await new Promise((resolve) => setTimeout(resolve, 200))
      await expect(access(marker)).rejects.toThrow()
    } finally {
      await pool.close()
    }
  })
})

describe('ChainPool asked for patches', () => {
  it('when a unit changes then it comes back with the patch of its two texts and the blob id of its new bytes; after stopPatches() no batch does', async () => {
    // unit 2 is not changed by the chain (already at v3)
    const input = units(6, { 2: { raw: '---\nschema_version: 3\nname: done\n---\nx\n' } }).map((u, i) => ({
      ...u,
      oid: hashBlob(Buffer.from(u.text, 'utf8')),
      mode: (i === 4 ? '100755' : '100644') as FileMode,
    }))
    const pool = new ChainPool(2, {
      validateVersion: 3,
      unitsReadable: true,
      patches: { color: true, renderer: moduleUrl(import.meta.url, '../../src/diff/unit-patch') },
    })
    try {
      expect(await pool.load(scripts)).toBeNull()
      const first = await pool.apply(input.slice(0, 3))
      expect(first.ok).toBe(true)
      first.units.forEach((u, i) => {
        const unit = input[i] as (typeof input)[number]
        if (i === 2) {
          expect(u.touched).toBe(false)
          expect(u.patch).toBeUndefined()
          return
        }
        const [oldBytes, newBytes] = [Buffer.from(u.before, 'utf8'), Buffer.from(u.after, 'utf8')]
        const newOid = hashBlob(newBytes)
        expect(u.patch?.newOid).toBe(newOid)
        const file: DiffFile = {
          path: unit.unitId,
          oldMode: unit.mode,
          newMode: unit.mode,
          oldOid: unit.oid,
          newOid,
          oldContent: oldBytes,
          newContent: newBytes,
        }
        expect(u.patch?.color).toBe(true)
        expect(Buffer.from(u.patch?.text ?? '', 'latin1').equals(renderUnifiedDiffBytes([file], { color: true }))).toBe(true)
        expect(u.patch?.text).toContain(i === 4 ? 'index ' : 'schema_version: 3')
        if (i === 4) expect(u.patch?.text).toMatch(/^.*index [0-9a-f]{7}..[0-9a-f]{7} 100755/m)
      })
      pool.stopPatches()
      const rest = await pool.apply(input.slice(3))
      expect(rest.ok).toBe(true)
      expect(rest.units.map((u) => u.touched)).toEqual([true, true, true])
      expect(rest.units.map((u) => u.patch)).toEqual([undefined, undefined, undefined])
    } finally {
      await pool.close()
    }
  })

  it('when a pool is not asked for patches then no unit comes back with one', async () => {
    const input = units(3).map((u) => ({ ...u, oid: hashBlob(Buffer.from(u.text, 'utf8')), mode: '100644' as FileMode }))
    const r = await runChainContained(scripts, input, { validateVersion: 3, unitsReadable: true, workers: 1 })
    expect(r.ok).toBe(true)
    expect(r.units.every((u) => u.touched && u.patch === undefined)).toBe(true)
  })
})

describe('--to starts the chain before the snapshot', () => {
  it.each([
    ['the pre-flight kept every unit', '32'],
    ['the chain reads every unit again', '0'],
  ])('when a unit changes between the pre-flight and the snapshot (%s) then the chain runs again on the snapshot bytes', async (_label, buffer) => {
    const v = await makeVault('vault-v1', { migrations: 'v1_to_v2.mjs' })
    try {
      const unit = path.join(v.root, 'caldwell', 'memory', 'user_household.md')
      const r = await migrate({
        agentsRoot: v.root,
        target: 2,
        env: { AAS_SCRIPT_WORKERS: '2', AAS_BUFFER_MB: buffer },
        onEvent: (e) => {
          // The chain is already running on the pre-flight's text of this unit.
          if (e.type === 'phase' && e.phase === 'snapshot') appendFileSync(unit, 'Appended between pre-flight and snapshot.\n')
        },
      })
      expect(r.error).toBeNull()
      expect(r.ok).toBe(true)
      const text = await readFile(unit, 'utf8')
      expect(text).toContain('schema_version: 2')
      expect(text.endsWith('Appended between pre-flight and snapshot.\n')).toBe(true)
    } finally {
      await v.cleanup()
    }
  })

  it('when a unit the chain has not read yet changes after the snapshot then nothing is written and the change is kept', async () => {
    const v = await makeVault('vault-v1', { migrations: 'v1_to_v2.mjs' })
    try {
      const unit = path.join(v.root, 'caldwell', 'memory', 'user_household.md')
      const before = await readFile(unit, 'utf8')
      const r = await migrate({
        agentsRoot: v.root,
        target: 2,
        env: { AAS_BUFFER_MB: '0', AAS_SCRIPT_TIMEOUT_MS: '60000' },
        onEvent: (e) => {
          // Whether or not the chain already read this unit again, the result is the
          // snapshot's, and the fast-forward must not overwrite the append.
          if (e.type === 'snapshot') appendFileSync(unit, 'Appended after the snapshot.\n')
        },
      })
      expect(r.ok).toBe(false)
      expect(r.applied).toBe(false)
      expect(r.error?.code).toBe('CONCURRENT_CHANGE')
      expect(await readFile(unit, 'utf8')).toBe(`${before}Appended after the snapshot.\n`)
    } finally {
      await v.cleanup()
    }
  })
})
