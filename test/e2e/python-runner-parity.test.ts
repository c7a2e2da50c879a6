import { hostname } from 'node:os'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { acquireVaultLock } from '../../src/transaction/lock.js'
import { makeVault, type TempVault } from '../helpers/make-vault.js'
import { captureTree } from '../helpers/tree-state.js'
import { cli } from '../helpers/run-cli.js'

// The Python runner's records and edges, re-enacted on the command line: its audit
// line's fields, names and types; the vault version on a lock refusal; an Error: line
// for every failure, with and without --json; an empty vault; dry runs and
// --list-snapshots.

const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

async function vault(fixture: string | null = 'vault-v1'): Promise<TempVault> {
  const v = await makeVault(fixture)
  vaults.push(v)
  return v
}

async function auditLines(root: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path.join(root, '_migrations', 'migration.jsonl'), 'utf8')
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

// The Python runner's MigrationEvent: these names with these JSON types.
const PYTHON_FIELDS: Record<string, string> = {
  run_id: 'string',
  timestamp: 'string',
  agents_root: 'string',
  from_version: 'number',
  to_version: 'number',
  units_touched: 'number',
  dry_run: 'boolean',
  rolled_back: 'boolean',
  error: 'string',
}

function pythonShape(record: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.keys(PYTHON_FIELDS).map((k) => [k, typeof record[k]]))
}

describe('the audit line', () => {
  it('when a dry run, a run, a refusal and a rollback are recorded then each line has the Python runner fields with their types, and ours beside them', async () => {
    const v = await vault()
    const root = ['--agents-root', v.root]
    expect((await cli([...root, '--to', 'v2', '--dry-run'])).code).toBe(0)
    const run = JSON.parse((await cli([...root, '--to', 'v2', '--json'])).stdout)
    expect((await cli([...root, '--to', 'v2'])).code).toBe(1)
    expect((await cli([...root, '--rollback', run.result.snapshot.name])).code).toBe(0)
    const lines = await auditLines(v.root)
    expect(lines).toHaveLength(4)
    for (const line of lines) {
      expect(pythonShape(line)).toEqual(PYTHON_FIELDS)
      expect(Number.isInteger(line.from_version) && Number.isInteger(line.to_version) && Number.isInteger(line.units_touched)).toBe(true)
      expect(line.agents_root).toBe(v.root)
      expect(typeof line.command).toBe('string')
      expect(typeof line.duration_ms).toBe('number')
    }
    const [dry, real, refused, back] = lines as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>, Record<string, unknown>]
    expect(dry).toMatchObject({
      from_version: 1,
      to_version: 2,
      dry_run: true,
      rolled_back: false,
      error: '',
      error_code: null,
      result: 'ok',
      units_touched: 13,
    })
    expect(real).toMatchObject({
      run_id: run.result.runId,
      from_version: 1,
      to_version: 2,
      dry_run: false,
      error: '',
      result: 'ok',
      units_touched: 13,
      snapshot: run.result.snapshot.name,
      result_commit: run.result.result.commit,
    })
    expect(refused).toMatchObject({ from_version: 2, to_version: 2, units_touched: 0, error_code: 'NOT_ABOVE_CURRENT', result: 'refused' })
    expect(refused.error).toMatch(/^Target version v2 is not above current v2\./)
    expect(back).toMatchObject({ rolled_back: true, error: '', result: 'ok', snapshot: run.result.snapshot.name })
  })

  it('when another run holds the lock then the refusal still records the vault version', async () => {
    const v = await vault()
    const lock = await acquireVaultLock(v.root, { command: '--to v2' })
    try {
      const r = await cli(['--agents-root', v.root, '--to', 'v2'])
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^Error: /)
    } finally {
      await lock.release()
    }
    const [line] = await auditLines(v.root)
    expect(line).toMatchObject({ from_version: 1, to_version: 2, error_code: 'LOCKED', result: 'refused', units_touched: 0 })
    expect(line?.error).toContain(String(process.pid))
    expect(line?.error).toContain(hostname())
  })
})

describe('failures print an Error: line on stderr, with and without --json', () => {
  const cases: Array<[string, (v: TempVault) => Promise<string[]>, string]> = [
    ['--to refused', async () => ['--to', 'v1'], 'NOT_ABOVE_CURRENT'],
    ['--to with a chain gap', async () => ['--to', 'v9'], 'CHAIN_GAP'],
    [
      '--to --dry-run that would fail validation',
      async (v) => {
        await writeFile(
          path.join(v.root, '_migrations', 'v1_to_v2.mjs'),
          'export default { from: 1, to: 2, appliesTo: () => true, migrate(u) { const m = u.readFrontmatter(); m.schema_version = 2; m.name = 7; u.writeFrontmatter(m); return true }, validate: (m) => typeof m.name === "string" ? [] : ["name: must be a string"] }\n',
        )
        return ['--to', 'v2', '--dry-run']
      },
      'SCHEMA_INVALID',
    ],
    ['--rollback of an unknown snapshot', async () => ['--rollback', 'no_such_snapshot'], 'SNAPSHOT_NOT_FOUND'],
    ['--export-snapshot of an unknown snapshot', async () => ['--export-snapshot', 'no_such_snapshot'], 'SNAPSHOT_NOT_FOUND'],
    ['--import-snapshot of a missing file', async (v) => ['--import-snapshot', path.join(v.dir, 'missing.tar.gz')], ''],
    [
      '--doctor on an unhealthy vault',
      async (v) => {
        await writeFile(path.join(v.root, 'caldwell', 'memory', 'user_unversioned.md'), '---\nname: x\n---\n')
        return ['--doctor']
      },
      'DOCTOR_UNHEALTHY',
    ],
    ['--status of a missing agents_root', async (v) => ['--agents-root', path.join(v.dir, 'nope'), '--status'], 'AGENTS_ROOT_MISSING'],
    ['--list-snapshots of a missing agents_root', async (v) => ['--agents-root', path.join(v.dir, 'nope'), '--list-snapshots'], 'AGENTS_ROOT_MISSING'],
    ['--new-script of a missing agents_root', async (v) => ['--agents-root', path.join(v.dir, 'nope'), '--new-script'], 'AGENTS_ROOT_MISSING'],
  ]
  it.each(cases)('%s', async (_name, setup, code) => {
    const v = await vault()
    const args = await setup(v)
    const withRoot = args.includes('--agents-root') ? args : ['--agents-root', v.root, ...args]
    const text = await cli(withRoot)
    expect(text.code).toBe(1)
    expect(text.stderr).toMatch(/(^|\n)Error: /)
    const json = await cli([...withRoot, '--json'])
    expect(json.code).toBe(1)
    expect(json.stderr).toMatch(/(^|\n)Error: /)
    const doc = JSON.parse(json.stdout)
    expect(doc.ok).toBe(false)
    if (code) expect(doc.error.code).toBe(code)
    expect(json.stderr).toContain(doc.error.message.split('\n')[0])
  })
})

describe('an empty vault', () => {
  it('when a vault has no units then it reads as empty, and --to v2 succeeds and changes nothing', async () => {
    const v = await vault(null)
    await mkdir(path.join(v.root, 'caldwell', 'memory'), { recursive: true })
    await writeFile(path.join(v.root, 'caldwell', 'persona.md'), '# Caldwell\n')
    const status = JSON.parse((await cli(['--agents-root', v.root, '--status', '--json'])).stdout)
    expect(status.status.inventory).toMatchObject({ units: 0, vaultVersion: null, versions: [] })
    expect((await cli(['--agents-root', v.root, '--status'])).stdout).toContain('vault version: empty')
    // The engine's own folder (store, audit log) aside, nothing changes.
    const vaultFiles = (): ReturnType<typeof captureTree> => captureTree(v.root, { exclude: (rel) => rel === '_migrations' || rel.startsWith('_migrations/') })
    const before = await vaultFiles()
    const run = await cli(['--agents-root', v.root, '--to', 'v2', '--json'])
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout).result).toMatchObject({ ok: true, from: null, units: 0, changed: [], steps: [] })
    expect(await vaultFiles()).toEqual(before)
    const [line] = await auditLines(v.root)
    expect(line).toMatchObject({ from_version: -1, to_version: 2, units_touched: 0, error: '', result: 'ok' })
  })
})

describe('dry runs and the snapshot list', () => {
  it('when a dry run previews a migration then --list-snapshots shows nothing new, and its base is the pending ref parent', async () => {
    const v = await vault()
    const dry = JSON.parse((await cli(['--agents-root', v.root, '--to', 'v2', '--dry-run', '--json'])).stdout)
    expect(dry.result.snapshot).toMatchObject({ ref: null })
    const list = JSON.parse((await cli(['--agents-root', v.root, '--list-snapshots', '--json'])).stdout)
    expect(list.snapshots).toEqual([])
    const { execFileSync } = await import('node:child_process')
    const gitDir = path.join(v.root, '_migrations', 'aas.git')
    const parent = execFileSync('git', ['--git-dir', gitDir, 'rev-parse', `${dry.result.result.ref}^`], { encoding: 'utf8' }).trim()
    expect(parent).toBe(dry.result.snapshot.commit)
    const refs = execFileSync('git', ['--git-dir', gitDir, 'for-each-ref', '--format=%(refname)'], { encoding: 'utf8' }).trim().split('\n')
    expect(refs).toEqual([dry.result.result.ref])
  })
})
