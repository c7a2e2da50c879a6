import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { discoverScripts } from '../../src/migrations/discover.js'
import { loadScript } from '../../src/migrations/load.js'
import { makeVault } from '../helpers/make-vault.js'

let root: string
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'aas-discover-'))
  await mkdir(path.join(root, '_migrations'))
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

const put = (name: string, text = 'export default {}\n') => writeFile(path.join(root, '_migrations', name), text)

describe('discoverScripts', () => {
  it('when the vault has no _migrations folder then finds nothing and reports no error', async () => {
    await rm(path.join(root, '_migrations'), { recursive: true })
    expect(await discoverScripts(root)).toEqual({ scripts: [], errors: [] })
  })

  it('when the fixture chain is copied in then lists both steps in order with file, from, to and ext', async () => {
    const vault = await makeVault('vault-v1', { migrations: ['v2_to_v3.ts', 'v1_to_v2.mjs'] })
    try {
      const { scripts, errors } = await discoverScripts(vault.root)
      expect(errors).toEqual([])
      expect(scripts.map(({ file, from, to, ext }) => ({ file, from, to, ext }))).toEqual([
        { file: '_migrations/v1_to_v2.mjs', from: 1, to: 2, ext: 'mjs' },
        { file: '_migrations/v2_to_v3.ts', from: 2, to: 3, ext: 'ts' },
      ])
      expect(scripts[0]!.path).toBe(path.join(vault.root, '_migrations', 'v1_to_v2.mjs'))
    } finally {
      await vault.cleanup()
    }
  })

  it('when every accepted extension is used then each is found, v0_to_v1 included', async () => {
    await put('v0_to_v1.js')
    await put('v1_to_v2.mts')
    await put('v2_to_v3.ts')
    await put('v3_to_v4.mjs')
    const { scripts, errors } = await discoverScripts(root)
    expect(errors).toEqual([])
    expect(scripts.map((s) => [s.from, s.ext])).toEqual([
      [0, 'js'],
      [1, 'mts'],
      [2, 'ts'],
      [3, 'mjs'],
    ])
  })

  it('when _migrations holds non-scripts, _-prefixed and dot files and folders then ignores them silently', async () => {
    await put('README.md', '# notes\n')
    await put('ignore', 'drafts/\n')
    await put('migration.jsonl', '')
    await put('_v1_to_v3.mjs')
    await put('_helpers.ts')
    await put('.v1_to_v2.mjs.swp')
    await mkdir(path.join(root, '_migrations', 'snapshots'))
    await mkdir(path.join(root, '_migrations', 'v1_to_v2.mjs.d'))
    await put('v1_to_v2.mjs')
    const { scripts, errors } = await discoverScripts(root)
    expect(errors).toEqual([])
    expect(scripts.map((s) => s.file)).toEqual(['_migrations/v1_to_v2.mjs'])
  })

  it.each([
    ['v1-to-v2.mjs'],
    ['V1_to_V2.mjs'],
    ['v1_to_v2.cjs'],
    ['v1_to_v2.tsx'],
    ['v1_v2.mjs'],
    ['v01_to_v02.mjs'],
    ['v1_to_v2.mjs.bak'],
    ['migrate.mjs'],
    ['add_provenance.ts'],
  ])('when a file is named %s then reports SCRIPT_NAME_INVALID naming it and does not list it', async (name) => {
    await put(name)
    const { scripts, errors } = await discoverScripts(root)
    expect(scripts).toEqual([])
    expect(errors.map((e) => [e.code, e.data.file])).toEqual([['SCRIPT_NAME_INVALID', `_migrations/${name}`]])
    expect(errors[0]!.hint).toContain('_')
  })

  it.each([
    ['v1_to_v3.mjs', 1, 3],
    ['v2_to_v1.ts', 2, 1],
    ['v2_to_v2.js', 2, 2],
  ])('when a script is named %s then reports SCRIPT_VERSION_SKIP with its versions', async (name, from, to) => {
    await put(name)
    await put('v1_to_v2.mjs')
    const { scripts, errors } = await discoverScripts(root)
    expect(scripts.map((s) => s.file)).toEqual(['_migrations/v1_to_v2.mjs'])
    expect(errors.map((e) => [e.code, e.data])).toEqual([['SCRIPT_VERSION_SKIP', { file: `_migrations/${name}`, from, to }]])
  })

  it('when two scripts cover the same step then reports SCRIPT_DUPLICATE naming both and lists neither', async () => {
    await put('v1_to_v2.mjs')
    await put('v1_to_v2.ts')
    await put('v2_to_v3.mjs')
    const { scripts, errors } = await discoverScripts(root)
    expect(scripts.map((s) => s.file)).toEqual(['_migrations/v2_to_v3.mjs'])
    expect(errors).toHaveLength(1)
    expect(errors[0]!.code).toBe('SCRIPT_DUPLICATE')
    expect(errors[0]!.data).toMatchObject({ files: ['_migrations/v1_to_v2.mjs', '_migrations/v1_to_v2.ts'], from: 1, to: 2 })
  })

  it('when several files are wrong then reports every one of them', async () => {
    await put('v1-to-v2.mjs')
    await put('v2_to_v4.mjs')
    await put('v5_to_v6.js')
    await put('v5_to_v6.mjs')
    const { errors } = await discoverScripts(root)
    expect(errors.map((e) => e.code).sort()).toEqual(['SCRIPT_DUPLICATE', 'SCRIPT_NAME_INVALID', 'SCRIPT_VERSION_SKIP'])
  })

  it('when _migrations is a file then reports it instead of throwing', async () => {
    await rm(path.join(root, '_migrations'), { recursive: true })
    await writeFile(path.join(root, '_migrations'), 'not a folder')
    const { scripts, errors } = await discoverScripts(root)
    expect(scripts).toEqual([])
    expect(errors.map((e) => [e.code, e.data.file])).toEqual([['SCRIPT_NAME_INVALID', '_migrations']])
  })

  it('when a script has a top-level side effect then discovery leaves no trace and loading does', async () => {
    const marker = path.join(root, 'marker.txt')
    const effect = `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(marker)}, 'ran')\n`
    await put('v1_to_v2.mjs', `${effect}export default { from: 1, to: 2, appliesTo() { return true }, migrate() { return true } }\n`)
    await put('v2_to_v3.ts', `${effect}export default { from: 2, to: 3, appliesTo() { return true }, migrate() { return true } }\n`)
    const { scripts, errors } = await discoverScripts(root)
    expect(errors).toEqual([])
    expect(scripts).toHaveLength(2)
    expect(existsSync(marker)).toBe(false)
    // The same script does write the marker when it is executed: the check above can fail.
    await loadScript(scripts[0]!)
    expect(existsSync(marker)).toBe(true)
  })
})
