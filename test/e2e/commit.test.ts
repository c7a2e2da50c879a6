import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'
import { cli } from '../helpers/run-cli.js'
import { captureTree } from '../helpers/tree-state.js'

const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

describe('--commit', () => {
  it('records the migration as one commit touching only unit paths and leaves staged work staged', async () => {
    const v = await makeVault('vault-v1', { git: true, subdir: 'vault' })
    vaults.push(v)
    await writeFile(path.join(v.dir, 'TODO.txt'), 'staged, not committed\n')
    git(v.dir, 'add', 'TODO.txt')
    const head = git(v.dir, 'rev-parse', 'HEAD').trim()
    const r = await cli(['--agents-root', v.root, '--to', 'v2', '--commit', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.result.branchCommit).toMatchObject({ branch: 'refs/heads/main' })
    const newHead = git(v.dir, 'rev-parse', 'HEAD').trim()
    expect(newHead).toBe(doc.result.branchCommit.commit)
    expect(git(v.dir, 'rev-parse', 'HEAD~1').trim()).toBe(head)
    const touched = git(v.dir, 'diff', '--name-only', head, newHead).trim().split('\n').sort()
    expect(touched).toEqual(doc.result.changed.map((p: string) => `vault/${p}`).sort())
    expect(touched).toHaveLength(13)
    // The staged file is still staged (and not part of the commit); nothing else is dirty
    // but the engine's audit log, which is not committed for the user.
    expect(git(v.dir, 'status', '--porcelain').trim().split('\n')).toEqual(['A  TODO.txt', '?? vault/_migrations/migration.jsonl'])
    expect(git(v.dir, 'show', `${newHead}:vault/caldwell/memory/user_household.md`)).toBe(
      await readFile(path.join(v.root, 'caldwell/memory/user_household.md'), 'utf8'),
    )
    expect(git(v.dir, 'log', '-1', '--format=%s')).toBe('Migrate vault to v2\n')

    const back = await cli(['--agents-root', v.root, '--rollback', doc.result.snapshot.name, '--commit', '--json'])
    expect(back.code, back.stderr).toBe(0)
    expect(git(v.dir, 'rev-parse', 'HEAD~1').trim()).toBe(newHead)
    expect(git(v.dir, 'diff', '--stat', head, 'HEAD', '--', 'vault').trim()).toBe('')
    expect(git(v.dir, 'status', '--porcelain').trim().split('\n')).toEqual(['A  TODO.txt', '?? vault/_migrations/migration.jsonl'])
  })

  it('when a unit has uncommitted changes then refuses naming it and changes nothing', async () => {
    const v = await makeVault('vault-v1', { git: true })
    vaults.push(v)
    const unit = path.join(v.root, 'scout/memory/feedback_citation_style.md')
    await writeFile(unit, `${await readFile(unit, 'utf8')}\nlocal edit\n`)
    const before = await captureTree(v.root, { exclude: (rel) => rel === '.git' || rel.startsWith('.git/') || rel.startsWith('_migrations/migration.jsonl') })
    const head = git(v.dir, 'rev-parse', 'HEAD').trim()
    const r = await cli(['--agents-root', v.root, '--to', 'v2', '--commit', '--json'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).error).toMatchObject({
      code: 'COMMIT_REFUSED',
      data: { paths: [{ path: 'scout/memory/feedback_citation_style.md', reason: 'has uncommitted changes' }] },
    })
    expect(await captureTree(v.root, { exclude: (rel) => rel === '.git' || rel.startsWith('.git/') || rel.startsWith('_migrations/migration.jsonl') })).toEqual(
      before,
    )
    expect(git(v.dir, 'rev-parse', 'HEAD').trim()).toBe(head)
  })

  it('when the vault is not in a git repository then refuses and changes nothing', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const r = await cli(['--agents-root', v.root, '--to', 'v2', '--commit', '--json'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).error.code).toBe('COMMIT_REFUSED')
    expect(JSON.parse((await cli(['--agents-root', v.root, '--status', '--json'])).stdout).status.inventory.vaultVersion).toBe(1)
  })

  it('when HEAD is detached then refuses', async () => {
    const v = await makeVault('vault-v1', { git: true })
    vaults.push(v)
    git(v.dir, 'checkout', '-q', '--detach')
    const r = await cli(['--agents-root', v.root, '--to', 'v2', '--commit', '--json'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'COMMIT_REFUSED', message: expect.stringContaining('HEAD is detached') })
  })
})
