import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { fixturesDir, makeVault, type TempVault } from '../helpers/make-vault.js'
import { bin, cli } from '../helpers/run-cli.js'

const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

describe('--status', () => {
  it('prints agents_root, vault version, units per version and type, scripts and the chain', async () => {
    const r = bin(['--agents-root', path.join(fixturesDir, 'vault-v1'), '--status'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`agents_root:   ${path.join(fixturesDir, 'vault-v1')}`)
    expect(r.stdout).toContain('vault version: v1')
    expect(r.stdout).toMatch(/v1:\s+13\s+\(memory 9, wiki 4\)/)
    expect(r.stdout).toContain('v1 -> v2  _migrations/v1_to_v2.mjs')
    expect(r.stdout).toContain('v2 -> v3  _migrations/v2_to_v3.ts')
    expect(r.stdout).toContain('v1 -> v3 complete (2 steps)')
  })

  it('with --json gives the same data as one JSON document', async () => {
    const r = await cli(['--agents-root', path.join(fixturesDir, 'vault-v1'), '--status', '--json'])
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc).toMatchObject({ schemaVersion: 1, ok: true, command: 'status' })
    expect(doc.status.inventory).toMatchObject({
      units: 13,
      vaultVersion: 1,
      versions: [{ version: 1, memory: 9, wiki: 4, total: 13 }],
      unreadable: [],
      unversioned: [],
    })
    expect(doc.status.scripts).toEqual([
      { file: '_migrations/v1_to_v2.mjs', from: 1, to: 2 },
      { file: '_migrations/v2_to_v3.ts', from: 2, to: 3 },
    ])
    expect(doc.status.chain).toMatchObject({ latest: 3, complete: true, gap: null })
  })

  it('on the broken vault lists the unreadable unit with line:column and the unversioned one by path', async () => {
    const r = await cli(['--agents-root', path.join(fixturesDir, 'vault-broken'), '--status', '--json'])
    expect(r.code).toBe(0)
    const inv = JSON.parse(r.stdout).status.inventory
    expect(inv.unreadable).toEqual([expect.objectContaining({ unitId: 'caldwell/memory/feedback_debt_priority.md', line: 4, column: expect.any(Number) })])
    expect(inv.unversioned).toEqual([{ unitId: 'caldwell/memory/user_preferences.md', unitType: 'memory' }])
    const text = await cli(['--agents-root', path.join(fixturesDir, 'vault-broken'), '--status'])
    expect(text.stdout).toMatch(/caldwell\/memory\/feedback_debt_priority\.md:4:\d+: /)
    expect(text.stdout).toContain('  caldwell/memory/user_preferences.md')
  })

  it('does not execute script code: a script with a top-level side effect leaves no trace', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const marker = path.join(v.root, 'executed.marker')
    await writeFile(
      path.join(v.root, '_migrations', 'v3_to_v4.mjs'),
      `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(marker)}, 'ran')\nexport default {}\n`,
    )
    const r = bin(['--agents-root', v.root, '--status'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('v3 -> v4  _migrations/v3_to_v4.mjs')
    expect(existsSync(marker)).toBe(false)
  })

  it('takes agents_root from ATOMIC_AGENTS_ROOT when no flag is given', async () => {
    const r = await cli(['--status', '--json'], { ATOMIC_AGENTS_ROOT: path.join(fixturesDir, 'vault-v1') })
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).status.agentsRoot).toEqual({ path: path.join(fixturesDir, 'vault-v1'), origin: 'env' })
  })

  it('when agents_root does not exist then exits 1 with an Error: line naming it', async () => {
    const r = await cli(['--agents-root', '/nonexistent/vault', '--status'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^Error: agents_root \/nonexistent\/vault does not exist/)
    const j = await cli(['--agents-root', '/nonexistent/vault', '--status', '--json'])
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, error: { code: 'AGENTS_ROOT_MISSING', data: { agentsRoot: '/nonexistent/vault' } } })
  })
})

describe('usage errors exit 2', () => {
  it.each([
    [['--status', '--to', 'v2'], /--status and --to cannot be combined/],
    [['--list-snapshots', '--doctor'], /cannot be combined/],
    [['--to', 'x'], /--to expects a version like v2 or 2, got 'x'/],
    [['--to', 'v2.1'], /--to expects a version/],
    [['--to', '-3'], /--to/],
    [[], /no action given/],
    [['--status', '--dry-run'], /--dry-run does not apply to --status/],
    [['--to', 'v2', '--stat'], /--stat needs --dry-run/],
    [['--to', 'v2', '--force'], /--force does not apply to --to/],
    [['--rollback'], /argument missing|--rollback/],
    [['--bogus'], /unknown option '--bogus'/],
    [['--status', 'extra'], /too many arguments|unknown command/],
    [['--to', 'v2', '--lock-timeout', 'soon'], /--lock-timeout expects seconds/],
  ])('%j', async (args, message) => {
    const r = await cli(args)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^Error: /)
    expect(r.stderr).toMatch(message)
    expect(r.stdout).toBe('')
  })

  it('--to accepts v2 and 2 alike', async () => {
    const { parseTargetVersion } = await import('../../src/cli/program.js')
    expect(parseTargetVersion('v2')).toBe(2)
    expect(parseTargetVersion('2')).toBe(2)
    expect(parseTargetVersion('v10')).toBe(10)
  })

  it('--help and --version exit 0', () => {
    const h = bin(['--help'])
    expect(h.code).toBe(0)
    expect(h.stdout).toContain('--rollback <snapshot>')
    expect(h.stdout).toContain('Examples:')
    const v = bin(['--version'])
    expect(v.code).toBe(0)
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })
})
