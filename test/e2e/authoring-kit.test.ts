import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { pyScriptTemplate, scriptTemplate, testTemplate } from '../../src/cli/new-script.js'
import { discoverScripts } from '../../src/migrations/discover.js'
import { runMigrationInMemory } from '../../src/testing.js'
import { fixturesDir, makeVault, repoRoot, type TempVault } from '../helpers/make-vault.js'
import { cli } from '../helpers/run-cli.js'

const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

async function vault(): Promise<TempVault> {
  const v = await makeVault('vault-v1')
  vaults.push(v)
  return v
}

describe('--new-script', () => {
  it('writes the next script and its test from the templates; discovery and --status accept them', async () => {
    const v = await vault()
    const r = await cli(['--agents-root', v.root, '--new-script'])
    expect(r.code, r.stderr).toBe(0)
    expect(await readFile(path.join(v.root, '_migrations/v3_to_v4.ts'), 'utf8')).toBe(scriptTemplate(3))
    expect(await readFile(path.join(v.root, '_migrations/tests/v3_to_v4.test.ts'), 'utf8')).toBe(testTemplate(3))
    const found = await discoverScripts(v.root)
    expect(found.errors).toEqual([])
    expect(found.scripts.map((s) => s.file)).toEqual(['_migrations/v1_to_v2.mjs', '_migrations/v2_to_v3.ts', '_migrations/v3_to_v4.ts'])
    const status = JSON.parse((await cli(['--agents-root', v.root, '--status', '--json'])).stdout)
    expect(status.status.scriptErrors).toEqual([])
    expect(status.status.chain).toMatchObject({ latest: 4, complete: true })
    // The template is a working step: the whole chain to v4 previews cleanly.
    const dry = await cli(['--agents-root', v.root, '--to', 'v4', '--dry-run', '--json'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(JSON.parse(dry.stdout).result).toMatchObject({ from: 1, target: 4, touched: 13 })
  })

  it('refuses to write over an existing step and names the file', async () => {
    const v = await vault()
    const r = await cli(['--agents-root', v.root, '--new-script', 'v2', '--json'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'SCRIPT_DUPLICATE', data: { file: '_migrations/v2_to_v3.ts' } })
  })

  it('the generated test passes under node --test with aas-migrate/testing resolved from the package', async () => {
    const v = await vault()
    expect((await cli(['--agents-root', v.root, '--new-script'])).code).toBe(0)
    await mkdir(path.join(v.dir, 'node_modules'), { recursive: true })
    await symlink(repoRoot, path.join(v.dir, 'node_modules', 'aas-migrate'))
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', path.join(v.root, '_migrations/tests/v3_to_v4.test.ts')], {
      cwd: repoRoot,
      encoding: 'utf8',
    })
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^# pass 1$/m)
    // A broken script makes the same test fail.
    await writeFile(path.join(v.root, '_migrations/v3_to_v4.ts'), scriptTemplate(3).replace('meta.schema_version = 4', 'meta.schema_version = 3'))
    const broken = spawnSync(process.execPath, ['--import', 'tsx', '--test', path.join(v.root, '_migrations/tests/v3_to_v4.test.ts')], {
      cwd: repoRoot,
      encoding: 'utf8',
    })
    expect(broken.status).not.toBe(0)
  })
})

describe('--new-script --lang py', () => {
  it('writes an atomic-agents style .py that discovery finds and a dry run to it migrates every unit', async () => {
    const v = await vault()
    const r = await cli(['--agents-root', v.root, '--new-script', '--lang', 'py', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).newScript).toMatchObject({ from: 3, to: 4, script: '_migrations/v3_to_v4.py', test: '_migrations/tests/v3_to_v4.test.ts' })
    const written = await readFile(path.join(v.root, '_migrations/v3_to_v4.py'), 'utf8')
    expect(written).toBe(pyScriptTemplate(3))
    expect(written).toMatch(/^from atomic_agents\.migration import MigratableUnit$/m)
    expect(written).toMatch(/^FROM_VERSION = 3$/m)
    expect(written).toMatch(/^TO_VERSION = 4$/m)
    expect(written).toMatch(/^def applies_to\(unit: MigratableUnit\) -> bool:$/m)
    expect(written).toMatch(/^def migrate\(unit: MigratableUnit\) -> dict:$/m)
    expect(await readFile(path.join(v.root, '_migrations/tests/v3_to_v4.test.ts'), 'utf8')).toBe(testTemplate(3, 'ts', 'py'))
    const found = await discoverScripts(v.root)
    expect(found.errors).toEqual([])
    expect(found.scripts.map((s) => s.file)).toEqual(['_migrations/v1_to_v2.mjs', '_migrations/v2_to_v3.ts', '_migrations/v3_to_v4.py'])
    // The template as written is the identity bump: v1 -> v4 through .mjs, .ts, then .py.
    const dry = await cli(['--agents-root', v.root, '--to', 'v4', '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/^\+schema_version: 4$/m)
    expect(dry.stdout).not.toMatch(/^\+schema_version: 3$/m)
    const json = await cli(['--agents-root', v.root, '--to', 'v4', '--dry-run', '--json'])
    expect(JSON.parse(json.stdout).result).toMatchObject({
      ok: true,
      from: 1,
      target: 4,
      touched: 13,
      steps: [{ status: 'applied' }, { status: 'applied' }, { file: '_migrations/v3_to_v4.py', status: 'applied' }],
    })
  })

  it('refuses a --lang other than ts or py with a usage error (exit 2), and --lang without --new-script', async () => {
    const v = await vault()
    const bad = await cli(['--agents-root', v.root, '--new-script', '--lang', 'rb'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/^Error: --lang expects ts or py, got 'rb'\./)
    const json = await cli(['--agents-root', v.root, '--new-script', '--lang', 'js', '--json'])
    expect(json.code).toBe(2)
    expect(JSON.parse(json.stdout).error).toMatchObject({ code: 'USAGE' })
    const stray = await cli(['--agents-root', v.root, '--status', '--lang', 'py'])
    expect(stray.code).toBe(2)
    expect(stray.stderr).toMatch(/^Error: --lang does not apply to --status\./)
    expect((await discoverScripts(v.root)).scripts.map((s) => s.file)).toEqual(['_migrations/v1_to_v2.mjs', '_migrations/v2_to_v3.ts'])
  })

  it('the generated test of a .py passes under node --test, exits on its own (the bridge is closed), and fails for a broken script', async () => {
    const v = await vault()
    expect((await cli(['--agents-root', v.root, '--new-script', '--lang', 'py'])).code).toBe(0)
    await mkdir(path.join(v.dir, 'node_modules'), { recursive: true })
    await symlink(repoRoot, path.join(v.dir, 'node_modules', 'aas-migrate'))
    const test = path.join(v.root, '_migrations/tests/v3_to_v4.test.ts')
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', test], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 })
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^# pass 1$/m)
    await writeFile(
      path.join(v.root, '_migrations/v3_to_v4.py'),
      pyScriptTemplate(3).replace('meta["schema_version"] = TO_VERSION', 'meta["schema_version"] = FROM_VERSION'),
    )
    const broken = spawnSync(process.execPath, ['--import', 'tsx', '--test', test], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 })
    expect(broken.status).not.toBe(0)
    expect(broken.error).toBeUndefined() // failed, not timed out
  })
})

describe('runMigrationInMemory', () => {
  it('runs the fixture .py (atomic-agents style) over unit files through the Python bridge, then closes it', async () => {
    const unitId = 'caldwell/memory/user_household.md'
    const text = await readFile(path.join(fixturesDir, 'vault-v1', unitId), 'utf8')
    const wiki = '---\nschema_version: 1\ntitle: A page\n---\nBody.\n'
    const run = await runMigrationInMemory({
      scripts: [path.join(fixturesDir, 'migrations-py/v1_to_v2.py')],
      units: [
        { unitId, text },
        { unitId: 'agent/wiki/page.md', text: wiki },
      ],
    })
    expect(run).toMatchObject({ from: 1, target: 2, steps: [{ from: 1, to: 2, file: '_migrations/v1_to_v2.py' }] })
    const [unit, page] = run.units
    expect(unit).toMatchObject({ unitId, unitType: 'memory', before: text, touched: true })
    // A two-line change: the version, and provenance added at the end of the front matter.
    expect(unit?.after).toBe(text.replace(/^schema_version: 1$/m, 'schema_version: 2').replace(/\n---\n/, '\nprovenance: v1_migrated\n---\n'))
    expect(page?.after).toBe('---\nschema_version: 2\ntitle: A page\nprovenance: v1_migrated\n---\nBody.\n')
    expect(run.diff).toMatch(/^-schema_version: 1$/m)
    expect(run.diff).toMatch(/^\+provenance: v1_migrated$/m)
    // A .py script that raises is an AasError naming script and unit, and the bridge still closes.
    const dir = await mkdtemp(path.join(tmpdir(), 'aas-py-'))
    try {
      const raising = path.join(dir, 'v1_to_v2.py')
      await writeFile(
        raising,
        'FROM_VERSION = 1\nTO_VERSION = 2\n\ndef applies_to(unit):\n    return True\n\ndef migrate(unit):\n    raise ValueError("no way")\n',
      )
      await expect(runMigrationInMemory({ scripts: [raising], units: [{ unitId, text }] })).rejects.toMatchObject({
        code: 'SCRIPT_FAILED',
        message: expect.stringContaining('no way'),
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('runs the fixture chain over unit files and returns new contents, validation and the diff', async () => {
    const unitId = 'caldwell/memory/user_household.md'
    const text = await readFile(path.join(fixturesDir, 'vault-v1', unitId), 'utf8')
    const run = await runMigrationInMemory({
      scripts: [path.join(fixturesDir, 'migrations/v1_to_v2.mjs'), path.join(fixturesDir, 'migrations/v2_to_v3.ts')],
      units: [{ unitId, text }],
    })
    expect(run).toMatchObject({
      from: 1,
      target: 3,
      steps: [
        { from: 1, to: 2 },
        { from: 2, to: 3 },
      ],
    })
    const [unit] = run.units
    expect(unit).toMatchObject({ unitId, unitType: 'memory', before: text, touched: true })
    expect(unit?.after).toMatch(/^schema_version: 3$/m)
    expect(unit?.after).toContain('provenance: v1_migrated')
    expect(run.validation).toMatchObject({ ok: true, version: 3, checked: 1 })
    expect(run.diff).toMatch(/^diff --git a\/caldwell\/memory\/user_household\.md b\/caldwell\/memory\/user_household\.md$/m)
    expect(run.diff).toMatch(/^-schema_version: 1$/m)
    expect(run.diff).toMatch(/^\+schema_version: 3$/m)
  })

  it('works as the worked example of docs/writing-migrations.md shows, keeping the comment', async () => {
    const migration = {
      from: 3,
      to: 4,
      appliesTo: (u: { readFrontmatter(): Record<string, unknown> }) => u.readFrontmatter().schema_version === 3,
      migrate(u: { readFrontmatter(): Record<string, unknown>; writeFrontmatter(m: Record<string, unknown>): void }) {
        const meta = u.readFrontmatter()
        meta.schema_version = 4
        if (meta.confidence === 'medium') meta.confidence = 'moderate'
        u.writeFrontmatter(meta)
        return { changes: ['schema_version 3→4'] }
      },
    }
    const text = '---\nschema_version: 3\nname: Example\nconfidence: medium # was medium\n---\nBody.\n'
    const run = await runMigrationInMemory({ migrations: [migration], units: [{ unitId: 'agent/memory/feedback_example.md', text }] })
    expect(run.units[0]?.after).toBe('---\nschema_version: 4\nname: Example\nconfidence: moderate # was medium\n---\nBody.\n')
    expect(run.validation.failures).toEqual([])
    expect(run.diff).toMatch(/^\+confidence: moderate # was medium$/m)
  })

  it('reports invalid units as validation data and throws SCRIPT_NO_BUMP for a script that forgets the version', async () => {
    const keep = {
      from: 1,
      to: 2,
      appliesTo: () => true,
      migrate: () => true,
      validate: (m: Record<string, unknown>) => (m.provenance ? [] : ['provenance: is required']),
    }
    const text = '---\nschema_version: 1\nname: x\n---\n'
    await expect(runMigrationInMemory({ migrations: [keep], units: [{ unitId: 'a/wiki/page.md', text }] })).rejects.toMatchObject({ code: 'SCRIPT_NO_BUMP' })
    const bump = {
      ...keep,
      migrate: (u: { readFrontmatter(): Record<string, unknown>; writeFrontmatter(m: Record<string, unknown>): void }) => {
        u.writeFrontmatter({ ...u.readFrontmatter(), schema_version: 2 })
        return true
      },
    }
    const run = await runMigrationInMemory({ migrations: [bump], units: [{ unitId: 'a/wiki/page.md', text }] })
    expect(run.validation.failures).toEqual([{ unitId: 'a/wiki/page.md', unitType: 'wiki', issues: [{ field: 'provenance', message: 'is required' }] }])
  })
})
