import { createHash } from 'node:crypto'
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrate } from '../../src/api.js'
import type { MigrateResult } from '../../src/commands/migrate/migrate.js'
import { writeDryRun } from '../../src/cli/render/migrate.js'
import { makePaint } from '../../src/cli/render/paint.js'
import { bufferBytesFor } from '../../src/commands/migrate/context.js'
import { generateVault } from '../helpers/gen-vault.js'
import { fixturesDir } from '../helpers/make-vault.js'
import { cli } from '../helpers/run-cli.js'

// A run holds at most AAS_BUFFER_MB of unit bytes between phases; beyond it the chain
// reads units again from the vault (checked against their blob ids), the fast-forward
// and the dry-run diff read the new bytes back from the store. With a buffer of 0 every
// byte takes that way: the results must be exactly those of a run that held everything.

let dir: string
let source: string

// 600 units: three batches of the chain, split over two workers.
const env = { AAS_SCRIPT_WORKERS: '2' }

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'aas-buffer-'))
  source = path.join(dir, 'source')
  await generateVault(source, { units: 600, bodyBytes: 600 })
  await mkdir(path.join(source, '_migrations'), { recursive: true })
  await cp(path.join(fixturesDir, 'migrations', 'v1_to_v2.mjs'), path.join(source, '_migrations', 'v1_to_v2.mjs'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function copy(name: string): Promise<string> {
  const root = path.join(dir, name)
  await cp(source, root, { recursive: true })
  return root
}

// Every vault file (not _migrations/: the store and the audit log), with its bytes' hash.
async function files(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    const abs = path.join(e.parentPath, e.name)
    const rel = path.relative(root, abs)
    if (e.isFile() && !rel.startsWith('_migrations'))
      out[rel] = createHash('sha1')
        .update(await readFile(abs))
        .digest('hex')
  }
  return out
}

describe('AAS_BUFFER_MB: units not held in memory are read again', () => {
  it('when nothing is held then the dry-run diff and --stat are byte for byte those of a run that held everything', async () => {
    const [held, streamed] = await Promise.all([copy('dry-held'), copy('dry-streamed')])
    const a = await cli(['--agents-root', held, '--to', 'v2', '--dry-run', '--no-progress'], env)
    const b = await cli(['--agents-root', streamed, '--to', 'v2', '--dry-run', '--no-progress'], { ...env, AAS_BUFFER_MB: '0' })
    expect(a.code).toBe(0)
    expect(b.code).toBe(0)
    expect(a.stdout).toContain('+schema_version: 2')
    expect(a.stdout.match(/^diff --git /gm)?.length).toBeGreaterThan(500)
    expect(b.stdout).toBe(a.stdout)
    const sa = await cli(['--agents-root', held, '--to', 'v2', '--dry-run', '--stat', '--no-progress'], env)
    const sb = await cli(['--agents-root', streamed, '--to', 'v2', '--dry-run', '--stat', '--no-progress'], { ...env, AAS_BUFFER_MB: '0' })
    expect(sa.code).toBe(0)
    expect(sb.stdout).toBe(sa.stdout)
    expect(sa.stdout).toMatch(/files changed/)
  })

  it('when nothing is held then --to writes exactly the files a run holding everything writes, and rolls back to the original', async () => {
    const [held, streamed] = await Promise.all([copy('to-held'), copy('to-streamed')])
    const before = await files(streamed)
    const a = await migrate({ agentsRoot: held, target: 2, env })
    const b = await migrate({ agentsRoot: streamed, target: 2, env: { ...env, AAS_BUFFER_MB: '0' } })
    expect(a.error).toBeNull()
    expect(b.error).toBeNull()
    expect(b.changed).toEqual(a.changed)
    expect(b.changed.length).toBeGreaterThan(500)
    expect(b.result?.commit).toBeDefined()
    expect(await files(streamed)).toEqual(await files(held))
    expect(await files(streamed)).not.toEqual(before)
    const back = await cli(['--agents-root', streamed, '--rollback', b.snapshot!.name, '--no-progress'], { AAS_BUFFER_MB: '0' })
    expect(back.code).toBe(0)
    expect(await files(streamed)).toEqual(before)
  })
})

describe('a dry run whose chain renders the patches (MigrateOptions.patches, as the CLI asks)', () => {
  it('when every patch is held then each changed file has one and no contents, and the diff, in color or not, is byte for byte the one rendered from the stored bytes', async () => {
    for (const color of [false, true]) {
      const root = await copy(`dry-patches-${color}`)
      const r = await migrate({ agentsRoot: root, target: 2, dryRun: true, env, patches: { color } })
      expect(r.error).toBeNull()
      expect(r.diff.length).toBeGreaterThan(500)
      expect(r.diff.every((f) => f.patch?.color === color && f.oldContent === null && f.newContent === null)).toBe(true)
      const printed = await dryRunOutput(r, color)
      expect(printed).toContain('schema_version: 2')
      // the same files without their patches: their bytes read back from the preview
      const bare = { ...r, diff: r.diff.map((f) => ({ ...f, patch: null })) }
      expect(await dryRunOutput(bare, color)).toBe(printed)
      // and half of them without: what a run whose buffer filled part-way prints
      const half = { ...r, diff: r.diff.map((f, i) => (i % 2 === 0 ? f : { ...f, patch: null })) }
      expect(await dryRunOutput(half, color)).toBe(printed)
      // printed without color, patches rendered with color are not used
      if (color) expect(await dryRunOutput(r, false)).toBe(await dryRunOutput(bare, false))
    }
  })

  it('when nothing can be held then no file keeps a patch (the diff is rendered from the stored bytes)', async () => {
    const root = await copy('dry-patches-unheld')
    const r = await migrate({ agentsRoot: root, target: 2, dryRun: true, env: { ...env, AAS_BUFFER_MB: '0' }, patches: { color: false } })
    expect(r.error).toBeNull()
    expect(r.diff.length).toBeGreaterThan(500)
    expect(r.diff.every((f) => !f.patch && f.oldContent === null && f.newContent === null)).toBe(true)
  })
})

async function dryRunOutput(r: MigrateResult, color: boolean): Promise<string> {
  let out = ''
  await writeDryRun(r, { stat: false, paint: makePaint(color), write: (t) => (out += t) })
  return out
}

describe('the default buffer depends on the vault size', () => {
  const MiB = 1024 * 1024
  it('holds 32 MiB up to 10,000 units, 0.6 MiB less per 1,000 above, 8 MiB from 50,000', () => {
    expect(bufferBytesFor({}, 0)).toBe(32 * MiB)
    expect(bufferBytesFor({}, 10_000)).toBe(32 * MiB)
    expect(bufferBytesFor({}, 30_000)).toBe(20 * MiB)
    expect(bufferBytesFor({}, 50_000)).toBe(8 * MiB)
    expect(bufferBytesFor({}, 200_000)).toBe(8 * MiB)
  })

  it('is AAS_BUFFER_MB when it is set, at any size', () => {
    expect(bufferBytesFor({ AAS_BUFFER_MB: '0' }, 10)).toBe(0)
    expect(bufferBytesFor({ AAS_BUFFER_MB: ' 64 ' }, 100_000)).toBe(64 * MiB)
    expect(bufferBytesFor({ AAS_BUFFER_MB: 'lots' }, 50_000)).toBe(8 * MiB)
  })
})
