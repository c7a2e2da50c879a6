import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isAasError } from '../../src/errors.js'
import { defineMigration } from '../../src/migrations/define.js'
import type { ScriptExt, ScriptFile } from '../../src/migrations/discover.js'
import { loadScript, loadScripts } from '../../src/migrations/load.js'
import { fixturesDir } from '../helpers/make-vault.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'aas-load-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function script(name: string, text: string): Promise<ScriptFile> {
  const m = /^v(\d+)_to_v(\d+)\.(\w+)$/.exec(name)!
  const abs = path.join(dir, name)
  await writeFile(abs, text)
  return { file: `_migrations/${name}`, path: abs, from: Number(m[1]), to: Number(m[2]), ext: m[3] as ScriptExt }
}

async function loadError(s: ScriptFile) {
  try {
    await loadScript(s)
  } catch (err) {
    if (isAasError(err)) return err
    throw err
  }
  throw new Error(`expected ${s.file} to fail loading`)
}

const good = (from: number, to: number) => `export default { from: ${from}, to: ${to}, appliesTo() { return true }, migrate() { return true } }\n`

describe('loadScript', () => {
  it('when loading the fixture chain then both the plain .mjs object and the typed .ts load without a build step', async () => {
    const mjs = await loadScript({ file: '_migrations/v1_to_v2.mjs', path: path.join(fixturesDir, 'migrations', 'v1_to_v2.mjs'), from: 1, to: 2, ext: 'mjs' })
    const ts = await loadScript({ file: '_migrations/v2_to_v3.ts', path: path.join(fixturesDir, 'migrations', 'v2_to_v3.ts'), from: 2, to: 3, ext: 'ts' })
    expect([mjs.migration.from, mjs.migration.to, typeof mjs.migration.migrate, typeof mjs.migration.validate]).toEqual([1, 2, 'function', 'function'])
    expect([ts.migration.from, ts.migration.to, typeof ts.migration.appliesTo, typeof ts.migration.validate]).toEqual([2, 3, 'function', 'function'])
    expect(ts.file).toBe('_migrations/v2_to_v3.ts')
  })

  it.each([
    ['v1_to_v2.mjs', good(1, 2)],
    ['v1_to_v2.js', good(1, 2)],
    [
      'v1_to_v2.ts',
      `const m: { from: number; to: number; appliesTo(u: unknown): boolean; migrate(u: unknown): boolean } = { from: 1, to: 2, appliesTo: () => true, migrate: () => true }\nexport default m\n`,
    ],
    ['v1_to_v2.mts', `export default { from: 1 as number, to: 2, appliesTo: (): boolean => true, migrate: (): boolean => true }\n`],
    ['v1_to_v2.js', `module.exports = { from: 1, to: 2, appliesTo() { return true }, migrate() { return true } }\n`],
  ])('when a %s script exports a plain object then it loads', async (name, text) => {
    const loaded = await loadScript(await script(name, text))
    expect([loaded.migration.from, loaded.migration.to, await loaded.migration.appliesTo({} as never)]).toEqual([1, 2, true])
  })

  it.each([
    ['the default export is a number', 'v1_to_v2.mjs', 'export default 42\n', 'default export'],
    ['there is no default export', 'v1_to_v2.mjs', 'export const from = 1\n', 'default export'],
    ['a .ts script has no default export', 'v1_to_v2.ts', 'export const from: number = 1\n', 'default export'],
    ['the default export is a function', 'v1_to_v2.mjs', 'export default function migrate() {}\n', 'default export'],
    ['from does not match the file name', 'v1_to_v2.mjs', good(2, 3).replace('to: 3', 'to: 2'), 'from'],
    ['to does not match the file name', 'v1_to_v2.ts', good(1, 3), 'to'],
    ['appliesTo is missing', 'v1_to_v2.mjs', 'export default { from: 1, to: 2, migrate() { return true } }\n', 'appliesTo'],
    ['migrate is missing', 'v1_to_v2.ts', 'export default { from: 1, to: 2, appliesTo() { return true } }\n', 'migrate'],
    ['migrate is not a function', 'v1_to_v2.mjs', 'export default { from: 1, to: 2, appliesTo() { return true }, migrate: true }\n', 'migrate'],
    ['validate is not a function', 'v1_to_v2.mjs', 'export default { from: 1, to: 2, appliesTo() {}, migrate() {}, validate: [] }\n', 'validate'],
    [
      'schema.memory is not a schema',
      'v1_to_v2.mjs',
      'export default { from: 1, to: 2, appliesTo() {}, migrate() {}, schema: { memory: {} } }\n',
      'schema.memory',
    ],
  ])('when %s then SCRIPT_INVALID names the file and the problem', async (_case, name, text, subject) => {
    const err = await loadError(await script(name, text))
    expect(err.code).toBe('SCRIPT_INVALID')
    expect(err.data.file).toBe(`_migrations/${name}`)
    const problems = err.data.problems as string[]
    expect(problems).toHaveLength(1)
    expect(problems[0]!.startsWith(subject) || problems[0]!.includes(subject)).toBe(true)
  })

  it('when both appliesTo and migrate are missing then both problems are reported at once', async () => {
    const err = await loadError(await script('v1_to_v2.mjs', 'export default { from: 1, to: 2 }\n'))
    expect(err.code).toBe('SCRIPT_INVALID')
    expect((err.data.problems as string[]).map((p) => p.split(' ')[0])).toEqual(['appliesTo', 'migrate'])
  })

  it.each([
    ['an .mjs script throws at its top level', 'v1_to_v2.mjs', "throw new Error('boom at import')\nexport default {}\n", 'boom at import'],
    ['a .ts script throws at its top level', 'v1_to_v2.ts', "throw new Error('ts boom')\nexport default {}\n", 'ts boom'],
    ['a script has a syntax error', 'v1_to_v2.mjs', 'export default { from: 1, to: 2,, }\n', null],
    ['a script imports a missing package', 'v1_to_v2.mjs', "import 'a-package-that-is-not-there'\nexport default {}\n", null],
  ])('when %s then SCRIPT_LOAD_FAILED names it and keeps the cause', async (_case, name, text, cause) => {
    const err = await loadError(await script(name, text))
    expect(err.code).toBe('SCRIPT_LOAD_FAILED')
    expect(err.data).toEqual({ file: `_migrations/${name}`, from: 1, to: 2 })
    expect(err.cause).toBeTruthy()
    if (cause) expect((err.cause as Error).message).toBe(cause)
  })

  it('when a script is edited between two loads then the second load sees the new code', async () => {
    const s = await script('v1_to_v2.mjs', `export default { from: 1, to: 2, description: 'first', appliesTo() {}, migrate() {} }\n`)
    expect((await loadScript(s)).migration.description).toBe('first')
    await writeFile(s.path, `export default { from: 1, to: 2, description: 'second, longer', appliesTo() {}, migrate() {} }\n`)
    expect((await loadScript(s)).migration.description).toBe('second, longer')
  })

  it('when loading several scripts then every failure is collected and the good ones load', async () => {
    const a = await script('v1_to_v2.mjs', good(1, 2))
    const b = await script('v2_to_v3.mjs', 'export default 1\n')
    const c = await script('v3_to_v4.mjs', "throw new Error('x')\n")
    const { loaded, errors } = await loadScripts([a, b, c])
    expect(loaded.map((l) => l.file)).toEqual(['_migrations/v1_to_v2.mjs'])
    expect(errors.map((e) => [e.code, e.data.file])).toEqual([
      ['SCRIPT_INVALID', '_migrations/v2_to_v3.mjs'],
      ['SCRIPT_LOAD_FAILED', '_migrations/v3_to_v4.mjs'],
    ])
  })
})

describe('defineMigration', () => {
  it('when given a migration then returns the very same object', () => {
    const m = { from: 1, to: 2, appliesTo: () => true, migrate: () => true }
    expect(defineMigration(m)).toBe(m)
  })
})
