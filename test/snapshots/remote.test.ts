import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchSnapshots, pushSnapshots } from '../../src/api.js'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'
import { makeBareRemote, refsOf, startGitDaemon, type BareRemote, type GitDaemon } from '../helpers/remotes.js'
import { cli } from '../helpers/run-cli.js'
import { captureTree, ENGINE_FILES } from '../helpers/tree-state.js'

// --push-snapshots, --fetch-snapshots and --list-snapshots against real remotes on this
// machine: bare repositories by path and by file:// URL, and a git daemon on 127.0.0.1.

const cleanups: Array<() => Promise<void>> = []
let daemon: GitDaemon
let daemonBase: string

beforeAll(async () => {
  daemonBase = await mkdtemp(path.join(tmpdir(), 'aas-daemon-'))
  daemon = await startGitDaemon(daemonBase)
})

afterAll(async () => {
  await daemon?.stop()
  for (const c of cleanups.reverse()) await c()
  await rm(daemonBase, { recursive: true, force: true })
})

async function vault(opts: { git?: boolean } = {}): Promise<TempVault> {
  const v = await makeVault('vault-v1', opts)
  cleanups.push(v.cleanup)
  return v
}

async function bare(parent?: string): Promise<BareRemote> {
  const r = await makeBareRemote('vault.git', parent)
  cleanups.push(r.cleanup)
  return r
}

const json = async (args: string[]) => {
  const r = await cli([...args, '--json'])
  return { ...r, doc: JSON.parse(r.stdout) }
}

// The vault's snapshot scope as files: the engine's own files, .git, _dashboard/ and run logs left out.
const OUT_OF_SCOPE = /^(\.git|_dashboard)(\/|$)|(^|\/)log(\/|$)/
const scope = (root: string) => captureTree(root, { exclude: (rel) => ENGINE_FILES(rel) || OUT_OF_SCOPE.test(rel) })

describe('--push-snapshots', () => {
  it('when pushed to a bare repository by path then only the snapshot and run refs are on it, and a second push has nothing to do', async () => {
    const v = await vault({ git: true })
    const remote = await bare()
    expect((await cli(['--agents-root', v.root, '--to', 'v2'])).code).toBe(0)
    expect((await cli(['--agents-root', v.root, '--to', 'v3', '--dry-run'])).code).toBe(0) // a pending ref, which stays here
    const push = await json(['--agents-root', v.root, '--push-snapshots', remote.dir])
    expect(push.code, push.stderr).toBe(0)
    const pushed = push.doc.transfer.transferred as string[]
    expect(pushed).toHaveLength(2)
    expect(Object.keys(remote.refs()).sort()).toEqual([...pushed].sort())
    expect(pushed.every((r) => r.startsWith('refs/aas/snapshots/') || r.startsWith('refs/aas/runs/'))).toBe(true)
    const local = refsOf(path.join(v.dir, '.git'))
    for (const r of pushed) expect(remote.refs()[r]).toBe(local[r])
    const again = await json(['--agents-root', v.root, '--push-snapshots', remote.dir])
    expect(again.doc.transfer).toMatchObject({ transferred: [], upToDate: 2, diverged: [] })
  })

  it('when no remote is given then it uses origin of the vault repository (a file:// URL)', async () => {
    const v = await vault({ git: true })
    const remote = await bare()
    git(v.dir, 'remote', 'add', 'origin', remote.url)
    expect((await cli(['--agents-root', v.root, '--to', 'v2'])).code).toBe(0)
    const push = await cli(['--agents-root', v.root, '--push-snapshots'])
    expect(push.code, push.stderr).toBe(0)
    expect(push.stdout).toMatch(/^pushed 2 refs to origin \(0 already there\)/)
    expect(Object.keys(remote.refs())).toHaveLength(2)
    expect(git(v.dir, 'for-each-ref', 'refs/remotes', 'refs/heads')).not.toContain('refs/remotes') // no tracking ref written
  })

  it('when the isomorphic-git backend is forced then push and fetch refuse, saying they need the git binary', async () => {
    const v = await vault()
    const remote = await bare()
    for (const call of [
      () => pushSnapshots({ agentsRoot: v.root, remote: remote.dir, backend: 'js' }),
      () => fetchSnapshots({ agentsRoot: v.root, remote: remote.url, backend: 'js' }),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: 'REMOTE_UNSUPPORTED', message: expect.stringContaining('needs the git binary') })
    }
    expect(remote.refs()).toEqual({})
  })

  it('when there is no remote at all then refuses with REMOTE_MISSING', async () => {
    const v = await vault()
    const r = await json(['--agents-root', v.root, '--push-snapshots'])
    expect(r.code).toBe(1)
    expect(r.doc.error.code).toBe('REMOTE_MISSING')
  })

  it('when the remote holds the same snapshot name with another commit then that one is refused, left as it was, and the others are pushed', async () => {
    const a = await vault()
    const b = await vault()
    const remote = await bare()
    expect((await cli(['--agents-root', a.root, '--to', 'v2'])).code).toBe(0)
    expect((await cli(['--agents-root', a.root, '--push-snapshots', remote.url])).code).toBe(0)
    const before = remote.refs()
    // b holds a's snapshot name with a commit of its own
    const aSnap = Object.keys(before).find((r) => r.startsWith('refs/aas/snapshots/')) as string
    expect((await cli(['--agents-root', b.root, '--to', 'v2'])).code).toBe(0)
    const bGit = path.join(b.root, '_migrations/aas.git')
    const bSnap = Object.keys(refsOf(bGit)).find((r) => r.startsWith('refs/aas/snapshots/')) as string
    const other = git(bGit, 'commit-tree', '-m', 'another snapshot under that name', `${bSnap}^{tree}`).trim()
    git(bGit, 'update-ref', aSnap, other)
    const r = await json(['--agents-root', b.root, '--push-snapshots', remote.dir])
    expect(r.code).toBe(1)
    expect(r.doc.error.code).toBe('SNAPSHOT_DIVERGED')
    expect(r.doc.transfer.diverged).toEqual([{ ref: aSnap, local: other, remote: before[aSnap] }])
    expect(remote.refs()[aSnap]).toBe(before[aSnap])
    expect(r.doc.transfer.transferred.length).toBeGreaterThan(0) // b's own snapshot and run went
    for (const ref of r.doc.transfer.transferred) expect(remote.refs()[ref]).toBe(refsOf(bGit)[ref])
  })
})

describe('--fetch-snapshots and --list-snapshots', () => {
  it('when a new machine fetches into an empty folder over git:// then --rollback restores the vault byte for byte', async () => {
    const v = await vault()
    await mkdir(path.join(daemonBase, 'dr'), { recursive: true })
    const remote = await bare(path.join(daemonBase, 'dr'))
    const pre = await scope(v.root)
    const run = await json(['--agents-root', v.root, '--to', 'v2'])
    expect(run.code, run.stderr).toBe(0)
    const name = run.doc.result.snapshot.name as string
    const url = daemon.url('dr/vault.git')
    expect((await cli(['--agents-root', v.root, '--push-snapshots', url])).code).toBe(0)
    expect(Object.keys(remote.refs())).toHaveLength(2)

    const fresh = await mkdtemp(path.join(tmpdir(), 'aas-newhost-'))
    cleanups.push(() => rm(fresh, { recursive: true, force: true }))
    const fetched = await json(['--agents-root', fresh, '--fetch-snapshots', url])
    expect(fetched.code, fetched.stderr).toBe(0)
    expect(fetched.doc.transfer.transferred).toHaveLength(2)
    const list = await json(['--agents-root', fresh, '--list-snapshots'])
    expect(list.doc.snapshots.map((s: { name: string }) => s.name)).toEqual([name])
    const back = await cli(['--agents-root', fresh, '--rollback', name])
    expect(back.code, back.stderr).toBe(0)
    expect(await scope(fresh)).toEqual(pre)
  })

  it('when listed with a remote then each snapshot says local, remote or both', async () => {
    const a = await vault()
    const b = await vault()
    const remote = await bare()
    const first = (await json(['--agents-root', a.root, '--to', 'v2'])).doc.result.snapshot.name as string
    expect((await cli(['--agents-root', a.root, '--push-snapshots', remote.dir])).code).toBe(0)
    expect((await cli(['--agents-root', b.root, '--fetch-snapshots', remote.dir])).code).toBe(0)
    const second = (await json(['--agents-root', a.root, '--to', 'v3'])).doc.result.snapshot.name as string
    const third = (await json(['--agents-root', b.root, '--rollback', first])).doc.result.safety.name as string
    expect((await cli(['--agents-root', b.root, '--push-snapshots', remote.dir])).code).toBe(0)
    const list = await json(['--agents-root', a.root, '--list-snapshots', '--remote', remote.dir])
    expect(list.code, list.stderr).toBe(0)
    const where = Object.fromEntries(list.doc.snapshots.map((s: { name: string; location: string }) => [s.name, s.location]))
    expect(where).toEqual({ [first]: 'both', [second]: 'local', [third]: 'remote' })
    expect(list.doc.remote).toEqual({ name: remote.dir, reachable: true, error: null })
    // --remote was stored: a plain --list-snapshots compares with it too
    const text = await cli(['--agents-root', a.root, '--list-snapshots'])
    expect(text.stdout).toMatch(/^WHERE\s+NAME/)
    expect(text.stdout).toMatch(new RegExp(`remote\\s+${third}`))
  })

  it('when the local store holds a name with another commit then the fetch leaves it and says so', async () => {
    const a = await vault()
    const b = await vault()
    const remote = await bare()
    expect((await cli(['--agents-root', a.root, '--to', 'v2'])).code).toBe(0)
    expect((await cli(['--agents-root', a.root, '--push-snapshots', remote.dir])).code).toBe(0)
    const snapRef = Object.keys(remote.refs()).find((r) => r.startsWith('refs/aas/snapshots/')) as string
    expect((await cli(['--agents-root', b.root, '--to', 'v2'])).code).toBe(0)
    const bGit = path.join(b.root, '_migrations/aas.git')
    const own = Object.keys(refsOf(bGit)).find((r) => r.startsWith('refs/aas/snapshots/')) as string
    const mine = git(bGit, 'commit-tree', '-m', 'mine', `${own}^{tree}`).trim()
    git(bGit, 'update-ref', snapRef, mine)
    const r = await json(['--agents-root', b.root, '--fetch-snapshots', remote.dir])
    expect(r.code).toBe(1)
    expect(r.doc.error.code).toBe('SNAPSHOT_DIVERGED')
    expect(refsOf(bGit)[snapRef]).toBe(mine)
    expect(Object.keys(refsOf(bGit)).filter((x) => x.startsWith('refs/aas/tmp/'))).toEqual([])
  })

  it('when the remote cannot be reached then --fetch-snapshots fails with REMOTE_FAILED and --list-snapshots lists the local ones', async () => {
    const v = await vault()
    expect((await cli(['--agents-root', v.root, '--to', 'v2'])).code).toBe(0)
    const gone = path.join(v.dir, 'no-such-remote.git')
    const r = await json(['--agents-root', v.root, '--fetch-snapshots', gone])
    expect(r.code).toBe(1)
    expect(r.doc.error.code).toBe('REMOTE_FAILED')
    const list = await json(['--agents-root', v.root, '--list-snapshots', '--remote', gone])
    expect(list.code).toBe(0)
    expect(list.doc.remote).toMatchObject({ reachable: false, error: { code: 'REMOTE_FAILED' } })
    expect(list.doc.snapshots.map((s: { location: string }) => s.location)).toEqual(['local'])
  })
})
