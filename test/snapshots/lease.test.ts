import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openStore } from '../../src/git/open-store.js'
import { acquireLease } from '../../src/snapshots/lease.js'
import { makeVault, type TempVault } from '../helpers/make-vault.js'
import { makeBareRemote, refsOf, startGitHttpServer, type GitHttpServer } from '../helpers/remotes.js'
import { binPath, cli, cli as cliIn } from '../helpers/run-cli.js'
import { captureTree } from '../helpers/tree-state.js'

// The cross-host lease refs/aas/lease on aas.remote: one run of a vault at a time across
// machines, --break-lease for a run that died, and --doctor's report of it.

const cleanups: Array<() => Promise<void>> = []
let base: string
let server: GitHttpServer
beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'aas-lease-http-'))
  server = await startGitHttpServer(base)
})
afterAll(async () => {
  await server?.stop()
  for (const c of cleanups.reverse()) await c()
  await rm(base, { recursive: true, force: true })
})

// Where the shared remote is and which backend talks to it.
const TRANSPORTS = [
  { name: 'a bare repository by path, git binary', backend: 'cli', http: false },
  { name: 'http, git binary', backend: 'cli', http: true },
  { name: 'http, isomorphic-git', backend: 'js', http: true },
] as const
type Transport = (typeof TRANSPORTS)[number]

async function vault(): Promise<TempVault> {
  const v = await makeVault('vault-v1')
  cleanups.push(v.cleanup)
  return v
}

let repos = 0
// A new bare repository: its folder, and the remote argument that reaches it.
async function remote(t: Transport): Promise<{ dir: string; arg: string }> {
  const name = `lease-${++repos}.git`
  const r = t.http ? await makeBareRemote(name, base) : await makeBareRemote()
  cleanups.push(r.cleanup)
  return { dir: r.dir, arg: t.http ? server.url(name) : r.url }
}

const LEASE = 'refs/aas/lease'

// Holds <agent>/.lock (flock) until release() closes its stdin.
function holdAgentLock(file: string): Promise<{ release: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['-x', file, '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] })
    child.once('error', reject)
    const exited = new Promise<void>((r) => child.once('exit', () => r()))
    child.stdout.once('data', () =>
      resolve({
        release: async () => {
          child.stdin.end()
          await exited
        },
      }),
    )
  })
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 1200) throw new Error('condition not reached in 60 s')
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe.each(TRANSPORTS)('the lease on $name', (t) => {
  const env = { AAS_GIT: t.backend }
  const cli = (args: string[]) => cliIn(args, env)
  it('when two clones of a vault sharing a remote migrate at once then exactly one holds the lease, the other is refused naming it, and nothing is lost', async () => {
    const a = await vault()
    const b = await vault()
    const r = await remote(t)
    for (const v of [a, b]) expect((await cli(['--agents-root', v.root, '--status', '--remote', t.http ? r.arg : r.dir])).code).toBe(0)
    const bBefore = await captureTree(b.root)
    // a's run stops in its fast-forward, lease held, until an agent of a lets go of its lock
    await writeFile(path.join(a.root, 'writer/.lock'), '')
    const agent = await holdAgentLock(path.join(a.root, 'writer/.lock'))
    const runA = spawn(process.execPath, [binPath, '--agents-root', a.root, '--to', 'v2', '--lock-timeout', '120', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', ...env },
    })
    let outA = ''
    runA.stdout.on('data', (d: Buffer) => (outA += d.toString('utf8')))
    const doneA = new Promise<number | null>((res) => runA.once('exit', (code) => res(code)))
    await until(() => refsOf(r.dir)[LEASE] !== undefined)

    const refused = await cli(['--agents-root', b.root, '--to', 'v2', '--json'])
    expect(refused.code).toBe(1)
    const error = JSON.parse(refused.stdout).error
    expect(error.code).toBe('LEASE_HELD')
    expect(error.data.holder).toMatchObject({ host: hostname(), pid: runA.pid, command: '--to v2', agentsRoot: a.root })
    expect(refused.stderr).toContain('--break-lease')
    expect(await captureTree(b.root, { exclude: (p) => p.startsWith('_migrations/aas.git') || p === '_migrations/migration.jsonl' })).toEqual(
      Object.fromEntries(Object.entries(bBefore).filter(([p]) => !p.startsWith('_migrations/aas.git') && p !== '_migrations/migration.jsonl')),
    )

    await agent.release()
    expect(await doneA, outA).toBe(0)
    expect(JSON.parse(outA).result.applied).toBe(true)
    expect(refsOf(r.dir)[LEASE]).toBeUndefined() // given back
    const second = await cli(['--agents-root', b.root, '--to', 'v2'])
    expect(second.code, second.stderr).toBe(0)
  })

  it('when a run died holding the lease then --doctor reports it and --break-lease removes it after naming its holder', async () => {
    const v = await vault()
    const r = await remote(t)
    expect((await cli(['--agents-root', v.root, '--status', '--remote', r.arg])).code).toBe(0)
    const healthy = JSON.parse((await cli(['--agents-root', v.root, '--doctor', '--json'])).stdout)
    expect(healthy.doctor.checks.find((c: { id: string }) => c.id === 'remote')).toMatchObject({ ok: true })
    const store = await openStore({ agentsRoot: v.root, backend: t.backend })
    const dead = await acquireLease(store, r.arg, '--to v9')
    const doctor = await cli(['--agents-root', v.root, '--doctor', '--json'])
    expect(doctor.code).toBe(1)
    const check = JSON.parse(doctor.stdout).doctor.checks.find((c: { id: string }) => c.id === 'remote')
    expect(check).toMatchObject({ ok: false, details: [`${LEASE} ${dead.commit}`] })
    expect(check.message).toContain('--to v9')
    expect(check.fixes[0]).toContain('--break-lease')
    const refused = await cli(['--agents-root', v.root, '--rollback', 'nothing-yet', '--json'])
    expect(JSON.parse(refused.stdout).error.code).toBe('LEASE_HELD')
    const broken = await cli(['--agents-root', v.root, '--break-lease'])
    expect(broken.code, broken.stderr).toBe(0)
    expect(broken.stdout).toContain(`removed the lease on ${r.arg}, held by ${hostname()} (pid ${process.pid}, --to v9`)
    expect(refsOf(r.dir)[LEASE]).toBeUndefined()
    expect((await cli(['--agents-root', v.root, '--break-lease'])).stdout).toBe(`no lease on ${r.arg}: nothing to remove\n`)
  })
})

describe('the lease on an unreachable remote', () => {
  it('when aas.remote cannot be reached then --doctor says so with the command to check it, and a run is refused before it changes anything', async () => {
    const v = await vault()
    const gone = path.join(v.dir, 'gone.git')
    expect((await cli(['--agents-root', v.root, '--status', '--remote', gone])).code).toBe(0)
    const doctor = JSON.parse((await cli(['--agents-root', v.root, '--doctor', '--json'])).stdout)
    expect(doctor.doctor.checks.find((c: { id: string }) => c.id === 'remote')).toMatchObject({ ok: false, fixes: [`git ls-remote '${gone}'`] })
    const before = await captureTree(v.root, { exclude: (p) => p.startsWith('_migrations/') })
    const run = await cli(['--agents-root', v.root, '--to', 'v2', '--json'])
    expect(run.code).toBe(1)
    expect(JSON.parse(run.stdout).error.code).toBe('REMOTE_FAILED')
    expect(await captureTree(v.root, { exclude: (p) => p.startsWith('_migrations/') })).toEqual(before)
  })
})
