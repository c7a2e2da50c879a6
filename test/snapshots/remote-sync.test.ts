import { spawn } from 'node:child_process'
import { renameSync } from 'node:fs'
import { readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { migrate } from '../../src/api.js'
import type { EngineEvent } from '../../src/commands/session.js'
import { makeVault, type TempVault } from '../helpers/make-vault.js'
import { makeBareRemote, refsOf, startGitHttpServer, type BareRemote } from '../helpers/remotes.js'
import { binPath, cli } from '../helpers/run-cli.js'

// aas.remote: --to and --rollback push their snapshots once the run is done; a push that
// fails leaves the run done, says so, and is recorded in the audit line.

const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
})

async function setup(): Promise<{ v: TempVault; remote: BareRemote }> {
  const v = await makeVault('vault-v1')
  const remote = await makeBareRemote()
  cleanups.push(v.cleanup, remote.cleanup)
  return { v, remote }
}

async function lastAudit(root: string): Promise<Record<string, unknown>> {
  const lines = (await readFile(path.join(root, '_migrations/migration.jsonl'), 'utf8')).trim().split('\n')
  return JSON.parse(lines[lines.length - 1] as string)
}

const unit = (root: string) => readFile(path.join(root, 'writer/memory/project_newsletter.md'), 'utf8')

describe('aas.remote', () => {
  it('when --to runs with --remote then the remote is stored and the run pushes its snapshot and run, and so does a rollback', async () => {
    const { v, remote } = await setup()
    const r = await cli(['--agents-root', v.root, '--to', 'v2', '--remote', remote.dir, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.push).toEqual({ remote: remote.dir, ok: true, transferred: 2, error: null })
    expect(remote.refs()[doc.result.snapshot.ref]).toBe(doc.result.snapshot.commit)
    expect(remote.refs()[doc.result.result.ref]).toBe(doc.result.result.commit)
    expect(await lastAudit(v.root)).toMatchObject({ result: 'ok', push: { remote: remote.dir, ok: true, transferred: 2, error: '' } })
    const back = await cli(['--agents-root', v.root, '--rollback', doc.result.snapshot.name])
    expect(back.code, back.stderr).toBe(0)
    expect(back.stdout).toMatch(/pushed 1 ref to .* \(aas\.remote\)/)
    expect(Object.keys(remote.refs()).filter((x) => x.endsWith('_pre_rollback'))).toHaveLength(1)
  })

  it('when the remote vanishes during the run then the run is done, says the push failed, records it, and a later --push-snapshots sends it', async () => {
    const { v, remote } = await setup()
    expect((await cli(['--agents-root', v.root, '--status', '--remote', remote.url])).code).toBe(0)
    const away = `${remote.dir}.away`
    const events: EngineEvent[] = []
    const result = await migrate({
      agentsRoot: v.root,
      target: 2,
      onEvent: (e) => {
        events.push(e)
        if (e.type === 'snapshot') renameSync(remote.dir, away) // the remote goes while the vault is migrated
      },
    })
    expect(result.ok, JSON.stringify(result.errors)).toBe(true)
    expect(await unit(v.root)).toMatch(/^schema_version: 2$/m)
    const push = events.find((e) => e.type === 'push')
    expect(push).toMatchObject({ push: { remote: remote.url, ok: false, transferred: 0, error: { code: 'REMOTE_FAILED' } } })
    expect(await lastAudit(v.root)).toMatchObject({ result: 'ok', error: '', push: { ok: false, error_code: 'REMOTE_FAILED' } })
    await rename(away, remote.dir)
    const later = await cli(['--agents-root', v.root, '--push-snapshots'])
    expect(later.code, later.stderr).toBe(0)
    // the lease the run could not give back stays until it is broken
    expect(Object.keys(remote.refs()).sort()).toEqual(['refs/aas/lease', `refs/aas/runs/${result.runId}`, result.snapshot?.ref].sort())
    expect((await cli(['--agents-root', v.root, '--break-lease'])).code).toBe(0)
    expect(Object.keys(remote.refs()).sort()).toEqual([`refs/aas/runs/${result.runId}`, result.snapshot?.ref].sort())
    expect(refsOf(remote.dir)[result.snapshot?.ref as string]).toBe(result.snapshot?.commit)
  })

  it.each([
    { name: 'a bare repository by path, git binary', backend: 'cli', http: false },
    { name: 'http, git binary', backend: 'cli', http: true },
    { name: 'http, isomorphic-git', backend: 'js', http: true },
  ] as const)(
    'when the remote ($name) goes while the CLI runs then the run exits 0, warns that the push failed and that the lease was not given back',
    async (t) => {
      const { v, remote } = await setup()
      const server = t.http ? await startGitHttpServer(path.dirname(remote.dir)) : null
      cleanups.push(async () => server?.stop())
      const arg = server ? server.url(path.basename(remote.dir)) : remote.dir
      expect((await cli(['--agents-root', v.root, '--list-snapshots', '--remote', arg], { AAS_GIT: t.backend })).code).toBe(0)
      // the run waits in its fast-forward for an agent's lock, holding the lease, while the remote goes
      await writeFile(path.join(v.root, 'writer/.lock'), '')
      const agent = spawn('flock', ['-x', path.join(v.root, 'writer/.lock'), '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] })
      await new Promise((res) => agent.stdout.once('data', res))
      const run = spawn(process.execPath, [binPath, '--agents-root', v.root, '--to', 'v2', '--lock-timeout', '120'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NO_COLOR: '1', AAS_GIT: t.backend },
      })
      let stderr = ''
      run.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
      const done = new Promise<number | null>((res) => run.once('exit', (code) => res(code)))
      for (let i = 0; refsOf(remote.dir)['refs/aas/lease'] === undefined; i++) {
        if (i > 1200) throw new Error('the run never took the lease')
        await new Promise((r) => setTimeout(r, 50))
      }
      await remote.cleanup()
      agent.stdin.end()
      expect(await done, stderr).toBe(0)
      expect(stderr).toContain(`warning: the run is done, but its snapshots were not pushed to ${arg}`)
      expect(stderr).toContain('aas-migrate --push-snapshots')
      expect(stderr).toContain(`warning: the lease on ${arg} was not given back`)
      expect(await unit(v.root)).toMatch(/^schema_version: 2$/m)
      expect(await lastAudit(v.root)).toMatchObject({ result: 'ok', push: { ok: false }, lease: { remote: arg, released: false } })
    },
  )
})

describe('--unset-remote', () => {
  const configFile = (v: TempVault) => path.join(v.root, '_migrations/aas.git/aas/config')

  it('when aas.remote is set then --unset-remote alone removes it, says what it removed, and runs take no lease and push nothing', async () => {
    const { v, remote } = await setup()
    expect((await cli(['--agents-root', v.root, '--status', '--remote', remote.dir])).code).toBe(0)
    await writeFile(configFile(v), `${await readFile(configFile(v), 'utf8')}[user]\n\tname = kept\n`)
    const r = await cli(['--agents-root', v.root, '--unset-remote'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`aas.remote ${remote.dir} removed (${configFile(v)})\n`)
    expect(await readFile(configFile(v), 'utf8')).toBe('[user]\n\tname = kept\n')
    const run = await cli(['--agents-root', v.root, '--to', 'v2', '--json'])
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout).push).toBeUndefined()
    expect(remote.refs()).toEqual({})
    const again = await cli(['--agents-root', v.root, '--unset-remote', '--json'])
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ command: 'unset-remote', ok: true, unset: { setting: 'aas.remote', removed: null, file: configFile(v) } })
  })

  it('when given with another command then aas.remote is removed first and the command runs without it; the config file goes once empty', async () => {
    const { v, remote } = await setup()
    expect((await cli(['--agents-root', v.root, '--status', '--remote', remote.url])).code).toBe(0)
    const list = await cli(['--agents-root', v.root, '--list-snapshots', '--unset-remote', '--json'])
    expect(list.code, list.stderr).toBe(0)
    expect(list.stderr).toBe(`aas.remote ${remote.url} removed (${configFile(v)})\n`)
    expect(JSON.parse(list.stdout).remote).toBeNull()
    await expect(readFile(configFile(v))).rejects.toMatchObject({ code: 'ENOENT' })
    const none = await cli(['--agents-root', v.root, '--status', '--unset-remote'])
    expect(none.stderr).toContain('aas.remote was not set')
  })

  it('when --remote and --unset-remote are given together then it is a usage error and aas.remote stays', async () => {
    const { v, remote } = await setup()
    expect((await cli(['--agents-root', v.root, '--status', '--remote', remote.dir])).code).toBe(0)
    const r = await cli(['--agents-root', v.root, '--status', '--remote', remote.url, '--unset-remote'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--remote and --unset-remote cannot be combined')
    expect(await readFile(configFile(v), 'utf8')).toContain(remote.dir)
  })
})
