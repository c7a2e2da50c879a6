import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { doctor } from '../../src/api.js'
import type { DoctorCheckId, DoctorResult } from '../../src/commands/doctor.js'
import { journalPath } from '../../src/transaction/journal.js'
import { shellQuote } from '../../src/transaction/lock.js'
import { git, gitEnv, makeVault, repoRoot, type TempVault } from '../helpers/make-vault.js'
import { bin, binPath, cli } from '../helpers/run-cli.js'

const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

async function vault(fixture = 'vault-v1', options: Parameters<typeof makeVault>[1] = {}): Promise<TempVault> {
  const v = await makeVault(fixture, options)
  vaults.push(v)
  return v
}

function check(r: DoctorResult, id: DoctorCheckId) {
  const c = r.checks.find((k) => k.id === id)
  if (!c) throw new Error(`no check ${id}`)
  return c
}

function failedIds(r: DoctorResult): DoctorCheckId[] {
  return r.checks.filter((c) => !c.ok).map((c) => c.id)
}

// Run a printed fix exactly as an operator would paste it, with `aas-migrate` the built binary.
function runFix(command: string, cwd: string): void {
  execFileSync('bash', ['-c', `aas-migrate() { ${shellQuote(process.execPath)} ${shellQuote(binPath)} "$@"; }\n${command}`], {
    cwd,
    env: { ...gitEnv, NO_COLOR: '1', ATOMIC_AGENTS_ROOT: '', EDITOR: 'true' },
    stdio: 'pipe',
  })
}

const rootArg = (root: string): string => `--agents-root ${shellQuote(root)}`

describe('doctor', () => {
  it('on a healthy vault passes every check and exits 0 from the CLI', async () => {
    const v = await vault()
    const r = await doctor({ agentsRoot: v.root })
    expect(r.ok).toBe(true)
    expect(r.checks.map((c) => c.id)).toEqual(['store', 'journal', 'lock', 'unreadable', 'unversioned', 'versions', 'chain', 'scripts', 'python', 'remote'])
    expect(r.checks.every((c) => c.fixes.length === 0)).toBe(true)
    expect(check(r, 'python').message).toBe('no .py script in _migrations/, so no interpreter is needed')
    const out = await cli(['--agents-root', v.root, '--doctor'])
    expect(out.code).toBe(0)
    expect(out.stdout.split('\n').filter((l) => l.startsWith('ok  ')).length).toBe(10)
  })

  it('when a snapshot blob is missing from the store then the store check fails and its fix removes the broken refs', async () => {
    const v = await vault()
    expect((await cli(['--agents-root', v.root, '--to', 'v2'])).code).toBe(0)
    const gitDir = path.join(v.root, '_migrations', 'aas.git')
    const snapshotRef = execFileSync('git', ['--git-dir', gitDir, 'for-each-ref', '--format=%(refname)', 'refs/aas/snapshots/'], {
      env: gitEnv,
      encoding: 'utf8',
    }).trim()
    const blob = execFileSync('git', ['--git-dir', gitDir, 'rev-parse', `${snapshotRef}:caldwell/persona.md`], { env: gitEnv, encoding: 'utf8' }).trim()
    // The store keeps its objects in packs: unpack them all, then delete the one blob.
    const packDir = path.join(gitDir, 'objects', 'pack')
    for (const pack of (await readdir(packDir)).filter((f) => f.endsWith('.pack'))) {
      const moved = path.join(v.dir, pack)
      await rename(path.join(packDir, pack), moved)
      await unlink(path.join(packDir, pack.replace(/\.pack$/, '.idx')))
      execFileSync('git', ['--git-dir', gitDir, 'unpack-objects', '-q'], { env: gitEnv, input: readFileSync(moved) })
    }
    await unlink(path.join(gitDir, 'objects', blob.slice(0, 2), blob.slice(2)))

    const r = await doctor({ agentsRoot: v.root })
    expect(failedIds(r)).toEqual(['store'])
    const store = check(r, 'store')
    // The run's result commit shares the untouched persona.md, so both refs are broken.
    expect(store.details.map((d) => d.split(':')[0]).sort()).toEqual([snapshotRef, expect.stringMatching(/^refs\/aas\/runs\//)].sort())
    expect(store.fixes).toContain(`git --git-dir=${shellQuote(gitDir)} update-ref -d ${shellQuote(snapshotRef)}`)
    for (const fix of store.fixes) runFix(fix, v.root)
    expect((await doctor({ agentsRoot: v.root })).ok).toBe(true)
  })

  it('after a kill -9 mid fast-forward then the journal and lock checks fail, and the printed --status completes the recovery', async () => {
    const v = await vault()
    const crashed = bin(['--agents-root', v.root, '--to', 'v2'], { env: { AAS_FAULT: 'mid-fast-forward:3' } })
    expect(crashed.code).not.toBe(0)
    const r = await doctor({ agentsRoot: v.root })
    expect(failedIds(r)).toEqual(['journal', 'lock', 'versions'])
    const journal = check(r, 'journal')
    expect(journal.details).toEqual([journalPath(path.join(v.root, '_migrations', 'aas.git', 'aas'))])
    expect(journal.fixes).toEqual([`aas-migrate ${rootArg(v.root)} --status`])
    const lock = check(r, 'lock')
    expect(lock.fixes).toEqual([`rm ${shellQuote(path.join(v.root, '.migration.lock'))}`])
    runFix(journal.fixes[0] as string, v.root)
    const after = await doctor({ agentsRoot: v.root })
    expect(failedIds(after)).toEqual([])
    expect(existsSync(path.join(v.root, '.migration.lock'))).toBe(false)
  })

  it('when only a stale lock is left then the lock check fails and the printed rm clears it', async () => {
    const v = await vault()
    await writeFile(
      path.join(v.root, '.migration.lock'),
      JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), startedAt: '2026-01-01T00:00:00.000Z', command: '--to v2' }) + '\n',
    )
    const r = await doctor({ agentsRoot: v.root })
    expect(failedIds(r)).toEqual(['lock'])
    const fixes = check(r, 'lock').fixes
    expect(fixes).toEqual([`rm ${shellQuote(path.join(v.root, '.migration.lock'))}`])
    runFix(fixes[0] as string, v.root)
    expect((await doctor({ agentsRoot: v.root })).ok).toBe(true)
  })

  it('on the broken vault then unreadable and unversioned units fail with an editor command per unit at its line', async () => {
    const v = await vault('vault-broken')
    const r = await doctor({ agentsRoot: v.root })
    expect(failedIds(r)).toEqual(expect.arrayContaining(['unreadable', 'unversioned']))
    const unreadable = check(r, 'unreadable')
    expect(unreadable.details).toEqual([expect.stringMatching(/^caldwell\/memory\/feedback_debt_priority\.md:4:\d+: /)])
    expect(unreadable.fixes).toEqual([`\${EDITOR:-vi} +4 ${shellQuote(path.join(v.root, 'caldwell/memory/feedback_debt_priority.md'))}`])
    const unversioned = check(r, 'unversioned')
    expect(unversioned.details).toEqual(['caldwell/memory/user_preferences.md'])
    expect(unversioned.fixes).toEqual([`\${EDITOR:-vi} ${shellQuote(path.join(v.root, 'caldwell/memory/user_preferences.md'))}`])
    const cliRun = await cli(['--agents-root', v.root, '--doctor'])
    expect(cliRun.code).toBe(1)
    expect(cliRun.stdout).toContain(`fix: \${EDITOR:-vi} +4 ${shellQuote(path.join(v.root, 'caldwell/memory/feedback_debt_priority.md'))}`)
  })

  it('when one unit is already at v2 then mixed versions fail and the printed --to v2 brings every unit there', async () => {
    const v = await vault()
    const unit = path.join(v.root, 'writer/memory/project_newsletter.md')
    await writeFile(unit, (await readFile(unit, 'utf8')).replace(/^schema_version: 1$/m, 'schema_version: 2\nprovenance: written_by_hand'))
    const r = await doctor({ agentsRoot: v.root })
    expect(failedIds(r)).toEqual(['versions'])
    const fixes = check(r, 'versions').fixes
    expect(fixes).toEqual([`aas-migrate ${rootArg(v.root)} --to v2 --dry-run`, `aas-migrate ${rootArg(v.root)} --to v2`])
    for (const f of fixes) runFix(f, v.root)
    expect((await doctor({ agentsRoot: v.root })).ok).toBe(true)
  })

  it('when the v1 -> v2 script is missing then the chain check fails and the printed --new-script v1 closes the gap', async () => {
    const v = await vault()
    await rm(path.join(v.root, '_migrations', 'v1_to_v2.mjs'))
    const r = await doctor({ agentsRoot: v.root })
    expect(failedIds(r)).toEqual(['chain'])
    const fixes = check(r, 'chain').fixes
    expect(fixes).toEqual([`aas-migrate ${rootArg(v.root)} --new-script v1`])
    runFix(fixes[0] as string, v.root)
    expect(existsSync(path.join(v.root, '_migrations', 'v1_to_v2.ts'))).toBe(true)
    expect((await doctor({ agentsRoot: v.root })).ok).toBe(true)
  })

  it('when a script name skips a version then the scripts check fails and the printed mv makes discovery ignore it', async () => {
    const v = await vault()
    await writeFile(path.join(v.root, '_migrations', 'v3_to_v5.mjs'), 'export default {}\n')
    const r = await doctor({ agentsRoot: v.root })
    expect(failedIds(r)).toEqual(['scripts'])
    const scripts = check(r, 'scripts')
    expect(scripts.details).toEqual([expect.stringMatching(/^SCRIPT_VERSION_SKIP: /)])
    expect(scripts.fixes).toEqual([
      `mv ${shellQuote(path.join(v.root, '_migrations/v3_to_v5.mjs'))} ${shellQuote(path.join(v.root, '_migrations/_v3_to_v5.mjs'))}`,
    ])
    runFix(scripts.fixes[0] as string, v.root)
    expect((await doctor({ agentsRoot: v.root })).ok).toBe(true)
    expect(existsSync(path.join(v.root, '_migrations', '_v3_to_v5.mjs'))).toBe(true)
  })

  it('in a git vault reads refs/aas/* of the user repository and leaves HEAD and the index alone', async () => {
    const v = await vault('vault-v1', { git: true })
    expect((await cli(['--agents-root', v.root, '--to', 'v2'])).code).toBe(0)
    const head = git(v.dir, 'rev-parse', 'HEAD')
    const index = await readFile(path.join(v.dir, '.git', 'index'))
    const r = await doctor({ agentsRoot: v.root })
    expect(r.ok).toBe(true)
    expect(check(r, 'store').message).toMatch(/^2 refs under refs\/aas\//)
    expect(git(v.dir, 'rev-parse', 'HEAD')).toBe(head)
    expect(await readFile(path.join(v.dir, '.git', 'index'))).toEqual(index)
    expect(repoRoot).toBeTruthy()
  })

  describe('with a .py script', () => {
    // The sample vault with the atomic-agents v1 -> v2 script in place of the .mjs one.
    async function pyVault(): Promise<TempVault> {
      const v = await vault()
      await rm(path.join(v.root, '_migrations', 'v1_to_v2.mjs'))
      await writeFile(path.join(v.root, '_migrations', 'v1_to_v2.py'), await readFile(path.join(repoRoot, 'fixtures/migrations-py/v1_to_v2.py')))
      return v
    }
    const python3 = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim()

    it('when python3 has PyYAML then the python check passes naming the interpreter, its version and PyYAML, and runs no script', async () => {
      const v = await pyVault()
      const before = await readFile(path.join(v.root, 'caldwell/memory/user_household.md'), 'utf8')
      const r = await doctor({ agentsRoot: v.root, env: { ...process.env, AAS_PYTHON: '', VIRTUAL_ENV: '' } })
      expect(failedIds(r)).toEqual([])
      const py = check(r, 'python')
      expect(py.message).toMatch(/^python3 \(from PATH\): Python 3\.\d+\.\d+ \(.+\), PyYAML \d[^,]*, atomic_agents .+; runs _migrations\/v1_to_v2\.py$/)
      expect(py.message).toContain(`(${python3})`)
      expect(py.details).toEqual(['_migrations/v1_to_v2.py'])
      expect(await readFile(path.join(v.root, 'caldwell/memory/user_household.md'), 'utf8')).toBe(before)
    })

    it('when --python names a missing interpreter then the check fails, exits 1, and the printed --python fix passes', async () => {
      const v = await pyVault()
      const out = await cli(['--agents-root', v.root, '--doctor', '--python', '/nonexistent/python3'])
      expect(out.code).toBe(1)
      expect(out.stdout).toMatch(
        /^FAIL {2}python interpreter +\/nonexistent\/python3 \(from --python\) cannot run _migrations\/v1_to_v2\.py: not found\. .*--python PATH \(or set AAS_PYTHON\)/m,
      )
      const fix = `aas-migrate ${rootArg(v.root)} --doctor --python ${shellQuote(python3)}`
      expect(out.stdout).toContain(`fix: ${fix}\n`)
      expect(out.stderr).toMatch(/^Error: 1 of 10 checks failed: python\.$/m)
      const json = JSON.parse((await cli(['--agents-root', v.root, '--doctor', '--python', '/nonexistent/python3', '--json'])).stdout)
      expect(json.error).toMatchObject({ code: 'DOCTOR_UNHEALTHY', data: { failed: ['python'] } })
      expect(json.doctor.checks.find((c: { id: string }) => c.id === 'python')).toMatchObject({ ok: false, details: ['_migrations/v1_to_v2.py'], fixes: [fix] })
      runFix(fix, v.root) // throws unless it exits 0
    })

    it('when $AAS_PYTHON has no PyYAML then the fixes are the apt-get install and AAS_PYTHON set to python3', async () => {
      const v = await pyVault()
      const noYaml = path.join(v.dir, 'python-without-yaml')
      await writeFile(noYaml, `#!/bin/sh\nexec ${shellQuote(python3)} -S "$@"\n`, { mode: 0o755 })
      const r = await doctor({ agentsRoot: v.root, env: { ...process.env, AAS_PYTHON: noYaml, VIRTUAL_ENV: '' } })
      expect(failedIds(r)).toEqual(['python'])
      const py = check(r, 'python')
      expect(py.message).toMatch(
        /\(from \$AAS_PYTHON\) \(Python 3\.\d+\.\d+ \(.+\), no PyYAML, .*\) cannot run _migrations\/v1_to_v2\.py: .*has no PyYAML\. Install PyYAML/,
      )
      expect(py.fixes).toEqual(['apt-get install python3-yaml', `AAS_PYTHON=${shellQuote(python3)} aas-migrate ${rootArg(v.root)} --doctor`])
      runFix(py.fixes[1] as string, v.root)
    })
  })
})
