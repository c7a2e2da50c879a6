import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { pruneSnapshots } from '../../src/api.js'
import { openStore } from '../../src/git/open-store.js'
import { refsToPrune } from '../../src/snapshots/prune.js'
import { takeSnapshot } from '../../src/snapshots/take.js'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'
import { makeBareRemote, refsOf, startGitHttpServer } from '../helpers/remotes.js'
import { cli } from '../helpers/run-cli.js'

// --prune-snapshots: retention that keeps the newest snapshot and the runs of the kept
// ones, deletes here and on a remote by compare-and-swap, and gives the embedded store's
// space back.

const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
})

async function vault(opts: { git?: boolean } = {}): Promise<TempVault> {
  const v = await makeVault('vault-v1', opts)
  cleanups.push(v.cleanup)
  return v
}

const json = async (args: string[]) => {
  const r = await cli([...args, '--json'])
  return { ...r, doc: JSON.parse(r.stdout) }
}

// A snapshot taken a minute from now: the newest one, without a run of its own.
async function laterSnapshot(root: string): Promise<string> {
  const store = await openStore({ agentsRoot: root })
  const s = await takeSnapshot(store, { target: 3, from: 2, runId: 'later', now: new Date(Date.now() + 60_000) })
  return s.ref as string
}

// Every object file of a store dated an hour back, as if its snapshots were that old.
async function ageObjects(gitDir: string): Promise<void> {
  const old = new Date(Date.now() - 3600_000)
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) await walk(p)
      else await utimes(p, old, old)
    }
  }
  await walk(path.join(gitDir, 'objects'))
}

const at = (ref: string, timestamp: number) => ({ ref, oid: ref.padEnd(40, '0').slice(0, 40), timestamp })

describe('which refs a policy prunes', () => {
  const refs = [at('a', 100), at('b', 200), at('c', 300), at('d', 400)]
  it.each([
    ['keep-last 2 keeps the two newest', { keepLast: 2, keepWithinSeconds: null }, ['b', 'a']],
    ['keep-last 1 keeps the newest', { keepLast: 1, keepWithinSeconds: null }, ['c', 'b', 'a']],
    ['keep-within keeps what is younger than the window', { keepLast: null, keepWithinSeconds: 150 }, ['b', 'a']],
    ['a window nothing is in still keeps the newest', { keepLast: null, keepWithinSeconds: 10 }, ['c', 'b', 'a']],
    ['both: what either keeps stays', { keepLast: 3, keepWithinSeconds: 50 }, ['a']],
  ])('%s', (_name, policy, pruned) => {
    expect(refsToPrune(refs, policy, 450).map((r) => r.ref)).toEqual(pruned)
  })
})

describe('--prune-snapshots', () => {
  it('when the embedded store is pruned then old snapshots, their runs and older previews go, the newest stays, and the space of what nothing else holds is freed', async () => {
    const v = await vault()
    const gitDir = path.join(v.root, '_migrations/aas.git')
    const big = path.join(v.root, 'scout/big.bin')
    await writeFile(big, randomBytes(512 * 1024))
    const bigOid = execFileSync('git', ['hash-object', big], { encoding: 'utf8' }).trim()
    const preview1 = await json(['--agents-root', v.root, '--to', 'v2', '--dry-run']) // its base holds big.bin
    expect(preview1.code, preview1.stderr).toBe(0)
    await rm(big)
    const run = await json(['--agents-root', v.root, '--to', 'v2'])
    expect(run.code, run.stderr).toBe(0)
    const preview2 = await json(['--agents-root', v.root, '--to', 'v3', '--dry-run'])
    const newest = await laterSnapshot(v.root)
    await ageObjects(gitDir)
    const r = await pruneSnapshots({ agentsRoot: v.root, keepLast: 1 })
    expect(r.ok).toBe(true)
    expect(r.deleted.sort()).toEqual([run.doc.result.snapshot.ref, run.doc.result.result.ref, preview1.doc.result.result.ref].sort())
    expect(r.kept).toEqual([newest.slice('refs/aas/snapshots/'.length)])
    expect(Object.keys(refsOf(gitDir)).sort()).toEqual([newest, preview2.doc.result.result.ref].sort())
    expect(r.repack?.bytesFreed).toBeGreaterThan(400 * 1024)
    expect(() => git(gitDir, 'cat-file', '-e', bigOid)).toThrow()
    git(gitDir, 'fsck', '--no-dangling') // what is kept is whole
    const list = await json(['--agents-root', v.root, '--list-snapshots'])
    expect(list.doc.snapshots.map((s: { ref: string }) => s.ref)).toEqual([newest])
  })

  it('when a snapshot is kept then so is its run, which its rollback reads', async () => {
    const v = await vault()
    const run = await json(['--agents-root', v.root, '--to', 'v2'])
    await laterSnapshot(v.root)
    const r = await pruneSnapshots({ agentsRoot: v.root, keepLast: 2 })
    expect(r.deleted).toEqual([])
    expect(r.repack).toBeNull()
    expect(refsOf(path.join(v.root, '_migrations/aas.git'))[run.doc.result.result.ref]).toBe(run.doc.result.result.commit)
  })

  it.each([
    { name: 'a bare repository by path, git binary', backend: 'cli', http: false },
    { name: 'http, git binary', backend: 'cli', http: true },
    { name: 'http, isomorphic-git', backend: 'js', http: true },
  ] as const)(
    'when a user repository is pruned with --remote ($name) then only our refs go, here and on the remote, and it says git gc gives the space back',
    async (t) => {
      const env = { AAS_GIT: t.backend }
      const v = await vault({ git: true })
      const base = await mkdtemp(path.join(tmpdir(), 'aas-prune-http-'))
      const server = t.http ? await startGitHttpServer(base) : null
      cleanups.push(async () => {
        await server?.stop()
        await rm(base, { recursive: true, force: true })
      })
      const remote = await makeBareRemote('vault.git', base)
      const arg = server ? server.url('vault.git') : remote.dir
      const run = JSON.parse((await cli(['--agents-root', v.root, '--to', 'v2', '--json'], env)).stdout)
      const newest = await laterSnapshot(v.root)
      expect((await cli(['--agents-root', v.root, '--push-snapshots', arg], env)).code).toBe(0)
      expect(Object.keys(remote.refs())).toHaveLength(3)
      const userRefs = () => Object.entries(refsOf(path.join(v.dir, '.git'))).filter(([r]) => !r.startsWith('refs/aas/'))
      const before = userRefs()
      const r = await cli(['--agents-root', v.root, '--prune-snapshots', '--keep-last', '1', '--remote', arg], env)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toContain(`deleted 2 refs on ${arg}`)
      expect(r.stdout).toContain('git gc')
      const gone = [run.result.snapshot.ref, run.result.result.ref]
      expect(Object.keys(remote.refs())).toEqual([newest])
      for (const ref of gone) expect(refsOf(path.join(v.dir, '.git'))[ref]).toBeUndefined()
      expect(userRefs()).toEqual(before)
    },
  )

  it.each([
    [['--prune-snapshots'], /needs --keep-last N or --keep-within/],
    [['--status', '--keep-last', '2'], /--keep-last does not apply to --status/],
    [['--prune-snapshots', '--keep-within', '30x'], /--keep-within expects a duration/],
    [['--prune-snapshots', '--keep-last', '0'], /--keep-last expects a number/],
  ])('when given %j then it is a usage error', async (args, message) => {
    const r = await cli(args)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
  })
})
