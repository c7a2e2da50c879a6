import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PAINT_CODES } from '../../src/cli/render/paint.js'
import { ansi } from '../../src/diff/unified.js'
import { fixturesDir, makeVault, type TempVault } from '../helpers/make-vault.js'
import { binPath } from '../helpers/run-cli.js'

// What the built CLI loads for a command: a module resolution hook (module.register)
// records every module the process resolves, and the packages among them are checked.

let dir = ''
const vaults: TempVault[] = []

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'aas-startup-'))
  await writeFile(
    path.join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs'
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context)
  appendFileSync(process.env.AAS_TEST_LOADED, r.url + '\\n')
  return r
}
`,
  )
  await writeFile(path.join(dir, 'register.mjs'), `import { register } from 'node:module'\nregister('./hooks.mjs', import.meta.url)\n`)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
  for (const v of vaults) await v.cleanup()
})

// The packages (below node_modules/) the built binary resolves when run with args.
function packagesLoaded(args: string[], name: string): { code: number | null; stdout: string; packages: string[] } {
  const log = path.join(dir, `${name}.log`)
  const r = spawnSync(process.execPath, ['--import', path.join(dir, 'register.mjs'), binPath, ...args], {
    env: { ...process.env, NO_COLOR: '1', AAS_TEST_LOADED: log },
    encoding: 'utf8',
  })
  const urls = existsSync(log) ? readFileSync(log, 'utf8') : ''
  const packages = [...new Set([...urls.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)].map((m) => m[1] as string))].sort()
  return { code: r.status, stdout: r.stdout, packages }
}

const HEAVY = ['yaml', 'js-yaml', 'zod', 'diff', 'simple-git', 'isomorphic-git', 'tar', 'ignore']

describe('start-up', () => {
  it('when --status reads a vault of simple front matter then it loads no YAML parser, zod, diff engine or git backend', () => {
    const r = packagesLoaded(['--agents-root', path.join(fixturesDir, 'vault-v1'), '--status'], 'status-v1')
    expect(r.code).toBe(0)
    expect(r.packages).toEqual(['commander'])
  })

  it('when a unit needs the full parser (a nested mapping) then --status loads yaml (and js-yaml, the fast reader beside it)', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    await writeFile(path.join(v.root, 'caldwell/memory/user_nested.md'), '---\nschema_version: 1\nreview:\n  every: 30\n---\n')
    const r = packagesLoaded(['--agents-root', v.root, '--status'], 'status-block')
    expect(r.code).toBe(0)
    expect(r.packages).toEqual(['commander', 'js-yaml', 'yaml'])
  })

  it('when the cache answers --status then it loads no more than on a first call', async () => {
    const v = await makeVault('vault-v1', { git: true })
    vaults.push(v)
    // A state folder, as a first snapshot leaves it: --status keeps its cache there.
    await mkdir(path.join(v.dir, '.git', 'aas'))
    // Past the racy window of the files just copied, so that the second call trusts the cache.
    await new Promise((resolve) => setTimeout(resolve, 2100))
    expect(packagesLoaded(['--agents-root', v.root, '--status'], 'status-first').packages).toEqual(['commander'])
    const again = packagesLoaded(['--agents-root', v.root, '--status', '--json'], 'status-again')
    expect(again.packages).toEqual(['commander'])
    expect(JSON.parse(again.stdout).status.cache).toMatchObject({ loaded: true, read: 0 })
  })

  it("when --status runs then none of the other commands' renderers, the lease or the remote code is loaded", () => {
    const log = path.join(dir, 'status-modules.log')
    const r = spawnSync(
      process.execPath,
      ['--import', path.join(dir, 'register.mjs'), binPath, '--agents-root', path.join(fixturesDir, 'vault-v1'), '--status'],
      {
        env: { ...process.env, NO_COLOR: '1', AAS_TEST_LOADED: log },
        encoding: 'utf8',
      },
    )
    expect(r.status).toBe(0)
    const own = [...readFileSync(log, 'utf8').matchAll(/\/dist\/(\S+\.js)$/gm)].map((m) => m[1] as string)
    expect(own).toContain('cli/render/status.js')
    for (const m of [
      'cli/render/doctor.js',
      'cli/render/previews.js',
      'cli/render/remote.js',
      'cli/render/snapshots.js',
      'snapshots/lease.js',
      'git/remote.js',
    ])
      expect(own, m).not.toContain(m)
  })

  it('when the migration engine runs then it is loaded (the hook sees packages)', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const r = packagesLoaded(['--agents-root', v.root, '--to', 'v2', '--dry-run', '--stat'], 'dry-run')
    expect(r.code).toBe(0)
    for (const p of ['yaml', 'diff']) expect(r.packages).toContain(p)
    expect(HEAVY.filter((p) => r.packages.includes(p)).length).toBeGreaterThan(2)
    // zod checks a journal only when one is read back (src/transaction/journal-schema.ts);
    // these v2 scripts bring no schema of their own.
    expect(r.packages).not.toContain('zod')
  })

  it('when the CLI paints then it uses the codes of the diff renderer', () => {
    expect(PAINT_CODES).toMatchObject({ reset: ansi.reset, bold: ansi.bold, red: ansi.red, green: ansi.green })
  })
})
