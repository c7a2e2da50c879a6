import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readAudit } from '../../src/transaction/audit.js'
import { captureGitState } from '../helpers/git-state.js'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'
import { cli } from '../helpers/run-cli.js'
import { captureTree, filesOf } from '../helpers/tree-state.js'

const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

// In a git vault the repository's own files are compared separately (captureGitState).
const notEngine = (rel: string): boolean =>
  rel === '.git' || rel.startsWith('.git/') || rel.startsWith('_migrations/aas.git') || rel === '_migrations/migration.jsonl'

async function unitVersions(root: string, units: string[]): Promise<number[]> {
  return Promise.all(units.map(async (u) => Number(/^schema_version: (\d+)/m.exec(await readFile(path.join(root, u), 'utf8'))?.[1])))
}

describe.each([
  { name: 'a plain folder', git: false, subdir: undefined },
  { name: 'a git repository', git: true, subdir: undefined },
  { name: 'a sub-folder of a git repository', git: true, subdir: 'notes/agents' },
])('--to v3 on $name with the v1 -> v2 -> v3 chain', ({ git: useGit, subdir }) => {
  it('dry run changes nothing; the run migrates every unit and nothing else; rollback and its undo are exact', async () => {
    const v = await makeVault('vault-v1', { git: useGit, ...(subdir ? { subdir } : {}) })
    vaults.push(v)
    const root = v.root
    const gitBefore = useGit ? await captureGitState(v.dir) : null
    const pre = await captureTree(root, { exclude: notEngine })

    const dry = await cli(['--agents-root', root, '--to', 'v3', '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/^diff --git a\/caldwell\/memory\/archive\/feedback_2025_budget_app\.md b\//)
    expect(dry.stderr).toMatch(/preview kept on refs\/aas\/pending\//)
    expect(await captureTree(root, { exclude: notEngine })).toEqual(pre)

    const run = await cli(['--agents-root', root, '--to', 'v3', '--json'])
    expect(run.code, run.stderr).toBe(0)
    const doc = JSON.parse(run.stdout)
    expect(doc).toMatchObject({ ok: true, command: 'migrate', result: { from: 1, target: 3, applied: true, units: 13, touched: 13 } })
    const post = await captureTree(root, { exclude: notEngine })
    const units: string[] = doc.result.changed
    expect(units).toHaveLength(13)
    expect(await unitVersions(root, units)).toEqual(units.map(() => 3))
    // Every other file, directory and mode is as it was.
    const others = (s: Record<string, string>) => Object.fromEntries(Object.entries(s).filter(([k]) => !units.includes(k)))
    expect(others(post)).toEqual(others(pre))
    const snapshot: string = doc.result.snapshot.name

    const back = await cli(['--agents-root', root, '--rollback', snapshot, '--json'])
    expect(back.code, back.stderr).toBe(0)
    expect(await captureTree(root, { exclude: notEngine })).toEqual(pre)
    const safety: string = JSON.parse(back.stdout).result.safety.name

    const redo = await cli(['--agents-root', root, '--rollback', safety])
    expect(redo.code, redo.stderr).toBe(0)
    expect(await captureTree(root, { exclude: notEngine })).toEqual(post)

    if (gitBefore) expect(await captureGitState(v.dir)).toEqual(gitBefore)
    const audit = await readAudit(root)
    expect(audit.records.map((r) => [r.command, r.result, r.dry_run, r.rolled_back])).toEqual([
      ['--to v3 --dry-run', 'ok', true, false],
      ['--to v3', 'ok', false, false],
      [`--rollback ${snapshot}`, 'ok', false, true],
      [`--rollback ${safety}`, 'ok', false, true],
    ])
  })
})

describe('permission bits', () => {
  it('when notes are group-writable or private then --to and --rollback keep their bits, and the bits of every other file', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const root = v.root
    const shared = 'scout/memory/feedback_citation_style.md'
    const own = 'scout/memory/reference_2026_arxiv_feeds.md'
    await chmod(path.join(root, shared), 0o664)
    await chmod(path.join(root, own), 0o600)
    const bits = async (rel: string): Promise<string> => ((await stat(path.join(root, rel))).mode & 0o777).toString(8)
    const pre = await captureTree(root, { exclude: notEngine })

    const run = await cli(['--agents-root', root, '--to', 'v2', '--json'])
    expect(run.code, run.stderr).toBe(0)
    const doc = JSON.parse(run.stdout)
    expect(doc.result.changed).toEqual(expect.arrayContaining([shared, own]))
    expect([await bits(shared), await bits(own)]).toEqual(['664', '600'])

    const back = await cli(['--agents-root', root, '--rollback', doc.result.snapshot.name])
    expect(back.code, back.stderr).toBe(0)
    expect(await captureTree(root, { exclude: notEngine })).toEqual(pre)
  })
})

describe('refusals leave the vault byte-identical', () => {
  it('when validation fails then every invalid unit is listed as path: field: message and nothing changes', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const bad = ['caldwell/memory/user_household.md', 'scout/memory/feedback_citation_style.md']
    for (const rel of bad) {
      const p = path.join(v.root, rel)
      await writeFile(p, (await readFile(p, 'utf8')).replace(/^captured: .*$/m, 'captured: last tuesday'))
    }
    const pre = await captureTree(v.root)
    for (const args of [
      ['--to', 'v3', '--dry-run'],
      ['--to', 'v3'],
    ]) {
      const r = await cli(['--agents-root', v.root, ...args])
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^Error: 2 units would not be valid at v3/m)
      for (const rel of bad) expect(r.stderr + r.stdout).toContain(`${rel}: created: must be a date written YYYY-MM-DD`)
      expect(filesOf(await captureTree(v.root))).toEqual(filesOf(pre))
    }
  })

  it('when the vault is already at the target then refuses with the SPEC message and writes no snapshot', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const r = await cli(['--agents-root', v.root, '--to', 'v1'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('Error: Target version v1 is not above current v1.')
    const list = await cli(['--agents-root', v.root, '--list-snapshots', '--json'])
    expect(JSON.parse(list.stdout).snapshots).toEqual([])
  })

  it('when a script is missing then refuses naming the gap', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const r = await cli(['--agents-root', v.root, '--to', 'v4', '--json'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'CHAIN_GAP', data: { missing: [{ from: 3, to: 4 }] } })
  })

  it('when a unit was edited after the run then rollback refuses listing it, and --force restores', async () => {
    const v = await makeVault('vault-v1', { git: true })
    vaults.push(v)
    const pre = await captureTree(v.root, { exclude: notEngine })
    const run = JSON.parse((await cli(['--agents-root', v.root, '--to', 'v2', '--json'])).stdout)
    const edited = path.join(v.root, 'writer/memory/project_newsletter.md')
    await writeFile(edited, (await readFile(edited, 'utf8')) + '\nAdded by the writer agent after the migration.\n')
    const afterEdit = await captureTree(v.root, { exclude: notEngine })
    const refused = await cli(['--agents-root', v.root, '--rollback', run.result.snapshot.name, '--json'])
    expect(refused.code).toBe(1)
    expect(JSON.parse(refused.stdout).error).toMatchObject({ code: 'ROLLBACK_FOREIGN_CHANGES', data: { paths: ['writer/memory/project_newsletter.md'] } })
    expect(await captureTree(v.root, { exclude: notEngine })).toEqual(afterEdit)
    const forced = await cli(['--agents-root', v.root, '--rollback', run.result.snapshot.name, '--force'])
    expect(forced.code, forced.stderr).toBe(0)
    expect(await captureTree(v.root, { exclude: notEngine })).toEqual(pre)
    git(v.dir, 'status', '--porcelain') // the user's repository is still usable
  })

  it('when a rollback removes the only file of a folder created after the run then the folder goes and the rollback completes', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const pre = await captureTree(v.root, { exclude: notEngine })
    const run = JSON.parse((await cli(['--agents-root', v.root, '--to', 'v2', '--json'])).stdout)
    await mkdir(path.join(v.root, 'caldwell', 'runs'))
    await writeFile(path.join(v.root, 'caldwell', 'runs', 'a.log'), 'x\n')
    const forced = await cli(['--agents-root', v.root, '--rollback', run.result.snapshot.name, '--force', '--json'])
    expect(forced.code, forced.stdout).toBe(0)
    expect(await captureTree(v.root, { exclude: notEngine })).toEqual(pre)
    await expect(stat(path.join(v.root, '_migrations', 'aas.git', 'aas', 'journal.json'))).rejects.toThrow(/ENOENT/)
  })
})

describe('--rollback accepts every form of snapshot name', () => {
  it('NAME.tar.gz and a legacy tarball in _migrations/snapshots/ (imported first); the vault root keeps its inode and mode', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    await chmod(v.root, 0o750)
    const rootBefore = await stat(v.root)
    const pre = await captureTree(v.root)
    const run = JSON.parse((await cli(['--agents-root', v.root, '--to', 'v2', '--json'])).stdout)
    const name: string = run.result.snapshot.name
    const post = await captureTree(v.root)

    const byTarName = await cli(['--agents-root', v.root, '--rollback', `${name}.tar.gz`])
    expect(byTarName.code, byTarName.stderr).toBe(0)
    expect(await captureTree(v.root)).toEqual(pre)

    // A Python-runner tarball that was never imported: export one, hide the ref by
    // renaming the tarball to a name no ref has, and roll back to it by that name.
    const exported = JSON.parse((await cli(['--agents-root', v.root, '--export-snapshot', name, '--json'])).stdout)
    const legacyName = '2026-08-12T143000_pre_v2_migration'
    await mkdir(path.join(v.root, '_migrations/snapshots'), { recursive: true })
    await rename(exported.export.file, path.join(v.root, '_migrations/snapshots', `${legacyName}.tar.gz`))
    const redo = await cli([
      '--agents-root',
      v.root,
      '--rollback',
      JSON.parse((await cli(['--agents-root', v.root, '--list-snapshots', '--json'])).stdout).snapshots.find((s: { name: string }) =>
        s.name.endsWith('_pre_rollback'),
      ).name,
    ])
    expect(redo.code, redo.stderr).toBe(0)
    const files = (s: Record<string, string>) => Object.fromEntries(Object.entries(s).filter(([k]) => !k.startsWith('_migrations/snapshots')))
    expect(files(await captureTree(v.root))).toEqual(files(post))
    const legacy = await cli(['--agents-root', v.root, '--rollback', legacyName, '--json'])
    expect(legacy.code, legacy.stderr).toBe(0)
    expect(JSON.parse(legacy.stdout).result).toMatchObject({ imported: true, snapshot: { name: legacyName } })
    expect(files(await captureTree(v.root))).toEqual(files(pre))

    const rootAfter = await stat(v.root)
    expect([rootAfter.ino, rootAfter.mode & 0o777]).toEqual([rootBefore.ino, 0o750])
  })

  it.each(['../../heads/main', 'refs/heads/main', '-x', 'a name', '..', '../x.tar.gz'])('refuses the snapshot name %j and changes nothing', async (bad) => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const pre = await captureTree(v.root)
    const r = await cli(['--agents-root', v.root, `--rollback=${bad}`, '--json'])
    expect(r.code).toBe(1)
    expect(['SNAPSHOT_NAME_INVALID', 'SNAPSHOT_NOT_FOUND']).toContain(JSON.parse(r.stdout).error.code)
    const after = await captureTree(v.root)
    expect(Object.keys(after).filter((k) => !k.startsWith('_migrations/') && k !== '.migration.lock')).toEqual(
      Object.keys(pre).filter((k) => !k.startsWith('_migrations/')),
    )
  })
})
