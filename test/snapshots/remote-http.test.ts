import { randomBytes } from 'node:crypto'
import { renameSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchSnapshots, locateSnapshots, migrate, pushSnapshots } from '../../src/api.js'
import type { EngineEvent } from '../../src/commands/session.js'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'
import { parseName } from '../../src/snapshots/names.js'
import { makeBareRemote, makeCertificate, refsOf, startGitHttpServer, type BareRemote, type GitHttpServer } from '../helpers/remotes.js'
import { binAsync, cli } from '../helpers/run-cli.js'
import { captureTree, ENGINE_FILES } from '../helpers/tree-state.js'

// Snapshots on an http:// remote served by `git http-backend`, with both backends: the
// git binary and isomorphic-git (AAS_GIT=js). The same cases run on each.

const cleanups: Array<() => Promise<void>> = []
let base: string
let server: GitHttpServer
const CREDS = { user: 'vault-bot', password: 's3cr3t-t0ken' }
let authServer: GitHttpServer

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'aas-http-'))
  server = await startGitHttpServer(base)
  authServer = await startGitHttpServer(base, { auth: CREDS })
})

afterAll(async () => {
  await server?.stop()
  await authServer?.stop()
  for (const c of cleanups.reverse()) await c()
  await rm(base, { recursive: true, force: true })
})

async function vault(opts: { git?: boolean } = {}): Promise<TempVault> {
  const v = await makeVault('vault-v1', opts)
  cleanups.push(v.cleanup)
  return v
}

let repos = 0
// A new bare repository served over http, and its URL.
async function httpRemote(): Promise<BareRemote & { http: string; name: string }> {
  const name = `vault-${++repos}.git`
  const r = await makeBareRemote(name, base)
  cleanups.push(r.cleanup)
  return { ...r, name, http: server.url(name) }
}

const OUT_OF_SCOPE = /^(\.git|_dashboard)(\/|$)|(^|\/)log(\/|$)/
const scope = (root: string) => captureTree(root, { exclude: (rel) => ENGINE_FILES(rel) || OUT_OF_SCOPE.test(rel) })
const storeOf = (v: TempVault) => path.join(v.root, '_migrations/aas.git')
const tmpRefs = (gitDir: string) => Object.keys(refsOf(gitDir)).filter((r) => r.startsWith('refs/aas/tmp/'))

describe.each(['cli', 'js'] as const)('an http:// remote with the %s backend', (backend) => {
  const env = { AAS_GIT: backend }
  const run = (args: string[]) => cli(args, env)
  const json = async (args: string[]) => {
    const r = await cli([...args, '--json'], env)
    return { ...r, doc: JSON.parse(r.stdout) }
  }

  it('when pushed then only the snapshot and run refs are there, the repository has no tracking ref and an unchanged config, and a second push has nothing to do', async () => {
    const v = await vault({ git: true })
    const remote = await httpRemote()
    expect((await run(['--agents-root', v.root, '--to', 'v2'])).code).toBe(0)
    expect((await run(['--agents-root', v.root, '--to', 'v3'])).code).toBe(0)
    const config = await readFile(path.join(v.dir, '.git/config'))
    const push = await json(['--agents-root', v.root, '--push-snapshots', remote.http])
    expect(push.code, push.stderr).toBe(0)
    const pushed = push.doc.transfer.transferred as string[]
    expect(pushed).toHaveLength(4)
    const local = refsOf(path.join(v.dir, '.git'))
    expect(remote.refs()).toEqual(Object.fromEntries(pushed.map((r) => [r, local[r]])))
    expect(git(remote.dir, 'fsck', '--strict', '--no-dangling')).toBe('')
    expect(Object.keys(local).filter((r) => r.startsWith('refs/remotes/') || r.startsWith('refs/aas/tmp/'))).toEqual([])
    expect(await readFile(path.join(v.dir, '.git/config'))).toEqual(config)
    const again = await json(['--agents-root', v.root, '--push-snapshots', remote.http])
    expect(again.doc.transfer).toMatchObject({ transferred: [], upToDate: 4, diverged: [] })
    // fetched into another git vault: the same refs, and again no tracking ref, no config change
    const w = await vault({ git: true })
    const wConfig = await readFile(path.join(w.dir, '.git/config'))
    const fetched = await json(['--agents-root', w.root, '--fetch-snapshots', remote.http])
    expect(fetched.code, fetched.stderr).toBe(0)
    const wRefs = refsOf(path.join(w.dir, '.git'))
    for (const r of pushed) expect(wRefs[r]).toBe(local[r])
    expect(Object.keys(wRefs).filter((r) => r.startsWith('refs/remotes/') || r.startsWith('refs/aas/tmp/'))).toEqual([])
    expect(await readFile(path.join(w.dir, '.git/config'))).toEqual(wConfig)
    expect(git(w.dir, 'fsck', '--strict', '--no-dangling')).toBe('')
  })

  it('when a later snapshot is pushed then only what changed since the one already there is sent', async () => {
    const v = await vault()
    const remote = await httpRemote()
    await writeFile(path.join(v.root, 'writer/memory/attachment.bin'), randomBytes(1 << 20)) // 1 MiB that never changes
    expect((await run(['--agents-root', v.root, '--to', 'v2'])).code).toBe(0)
    const start = server.pushedBytes
    expect((await run(['--agents-root', v.root, '--push-snapshots', remote.http])).code).toBe(0)
    const first = server.pushedBytes - start
    expect(first).toBeGreaterThan(1 << 20)
    expect((await run(['--agents-root', v.root, '--to', 'v3'])).code).toBe(0)
    const again = server.pushedBytes
    const second = await json(['--agents-root', v.root, '--push-snapshots', remote.http])
    expect(second.doc.transfer.transferred).toHaveLength(2)
    expect(server.pushedBytes - again).toBeLessThan(256 * 1024)
    expect(git(remote.dir, 'fsck', '--strict', '--no-dangling')).toBe('')
  })

  it('when a new machine fetches into an empty folder then --rollback restores the vault byte for byte', async () => {
    const v = await vault()
    const remote = await httpRemote()
    const pre = await scope(v.root)
    const first = await json(['--agents-root', v.root, '--to', 'v2'])
    expect(first.code, first.stderr).toBe(0)
    expect((await run(['--agents-root', v.root, '--to', 'v3'])).code).toBe(0)
    expect((await run(['--agents-root', v.root, '--push-snapshots', remote.http])).code).toBe(0)
    const fresh = await mkdtemp(path.join(tmpdir(), 'aas-newhost-'))
    cleanups.push(() => rm(fresh, { recursive: true, force: true }))
    const fetched = await json(['--agents-root', fresh, '--fetch-snapshots', remote.http])
    expect(fetched.code, fetched.stderr).toBe(0)
    expect([...fetched.doc.transfer.transferred].sort()).toEqual(Object.keys(remote.refs()).sort())
    const freshStore = path.join(fresh, '_migrations/aas.git')
    expect(refsOf(freshStore)).toEqual(remote.refs())
    expect(git(freshStore, 'fsck', '--strict', '--no-dangling')).toBe('')
    const back = await run(['--agents-root', fresh, '--rollback', first.doc.result.snapshot.name])
    expect(back.code, back.stderr).toBe(0)
    expect(await scope(fresh)).toEqual(pre)
    const twice = await json(['--agents-root', fresh, '--fetch-snapshots', remote.http])
    expect(twice.doc.transfer).toMatchObject({ transferred: [], upToDate: 4 })
  })

  it('when listed with the remote then each snapshot says local, remote, both or diverged', async () => {
    const a = await vault()
    const b = await vault()
    const remote = await httpRemote()
    const first = (await json(['--agents-root', a.root, '--to', 'v2'])).doc.result.snapshot.name as string
    expect((await run(['--agents-root', a.root, '--push-snapshots', remote.http])).code).toBe(0)
    expect((await run(['--agents-root', b.root, '--fetch-snapshots', remote.http])).code).toBe(0)
    const second = (await json(['--agents-root', a.root, '--to', 'v3'])).doc.result.snapshot.name as string
    const third = (await json(['--agents-root', b.root, '--rollback', first])).doc.result.safety.name as string
    expect((await run(['--agents-root', b.root, '--push-snapshots', remote.http])).code).toBe(0)
    // a snapshot name b pushed, held by a with a commit of its own
    const thirdRef = `refs/aas/snapshots/${third}`
    const aStore = storeOf(a)
    git(aStore, 'update-ref', thirdRef, git(aStore, 'commit-tree', '-m', 'mine', `refs/aas/snapshots/${second}^{tree}`).trim())
    const list = await json(['--agents-root', a.root, '--list-snapshots', '--remote', remote.http])
    expect(list.code, list.stderr).toBe(0)
    const where = Object.fromEntries(list.doc.snapshots.map((s: { name: string; location: string }) => [s.name, s.location]))
    expect(where).toEqual({ [first]: 'both', [second]: 'local', [third]: 'diverged' })
    expect(list.doc.remote).toEqual({ name: remote.http, reachable: true, error: null })
    const api = await locateSnapshots({ agentsRoot: b.root, remote: remote.http, backend })
    expect(Object.fromEntries(api.snapshots.map((s) => [s.name, s.location]))).toEqual({ [first]: 'both', [third]: 'both' })
  })

  it('when a name is on both sides with different commits then neither a push nor a fetch overwrites it, and the other refs go', async () => {
    const a = await vault()
    const b = await vault()
    const remote = await httpRemote()
    expect((await run(['--agents-root', a.root, '--to', 'v2'])).code).toBe(0)
    expect((await run(['--agents-root', a.root, '--push-snapshots', remote.http])).code).toBe(0)
    const before = remote.refs()
    const aSnap = Object.keys(before).find((r) => r.startsWith('refs/aas/snapshots/')) as string
    // Snapshot names are to the second: b's own snapshot must not be named as a's.
    await nextSecondAfter(aSnap)
    expect((await run(['--agents-root', b.root, '--to', 'v2'])).code).toBe(0)
    const bStore = storeOf(b)
    const bSnap = Object.keys(refsOf(bStore)).find((r) => r.startsWith('refs/aas/snapshots/')) as string
    const other = git(bStore, 'commit-tree', '-m', 'another snapshot under that name', `${bSnap}^{tree}`).trim()
    git(bStore, 'update-ref', aSnap, other)

    const push = await json(['--agents-root', b.root, '--push-snapshots', remote.http])
    expect(push.code).toBe(1)
    expect(push.doc.error.code).toBe('SNAPSHOT_DIVERGED')
    expect(push.doc.transfer.diverged).toEqual([{ ref: aSnap, local: other, remote: before[aSnap] }])
    expect(remote.refs()[aSnap]).toBe(before[aSnap])
    expect(push.doc.transfer.transferred).toHaveLength(2) // b's own snapshot and run
    for (const ref of push.doc.transfer.transferred) expect(remote.refs()[ref]).toBe(refsOf(bStore)[ref])

    const fetch = await json(['--agents-root', b.root, '--fetch-snapshots', remote.http])
    expect(fetch.code).toBe(1)
    expect(fetch.doc.error.code).toBe('SNAPSHOT_DIVERGED')
    expect(fetch.doc.transfer.diverged).toEqual([{ ref: aSnap, local: other, remote: before[aSnap] }])
    expect(refsOf(bStore)[aSnap]).toBe(other)
    const aRun = Object.keys(before).find((r) => r.startsWith('refs/aas/runs/')) as string
    expect(fetch.doc.transfer.transferred).toEqual([aRun]) // a's run, which b lacked
    expect(tmpRefs(bStore)).toEqual([])
  })

  it('when the remote refuses one ref then the result says which refs went (all or none with git, each on its own with isomorphic-git) and a re-run sends the rest', async () => {
    const v = await vault()
    const remote = await httpRemote()
    expect((await run(['--agents-root', v.root, '--to', 'v2'])).code).toBe(0)
    const hook = path.join(remote.dir, 'hooks/pre-receive')
    await writeFile(hook, '#!/bin/sh\nwhile read old new ref; do case "$ref" in refs/aas/runs/*) echo "runs are refused here" >&2; exit 1;; esac; done\n')
    await chmod(hook, 0o755)
    const refused = await json(['--agents-root', v.root, '--push-snapshots', remote.http])
    expect(refused.code).toBe(1)
    expect(refused.doc.error.code).toBe('REMOTE_FAILED')
    const local = refsOf(storeOf(v))
    const snap = Object.keys(local).find((r) => r.startsWith('refs/aas/snapshots/')) as string
    const runRef = Object.keys(local).find((r) => r.startsWith('refs/aas/runs/')) as string
    expect(refused.doc.error.message).toContain(runRef)
    if (backend === 'cli') {
      expect(refused.doc.transfer.transferred).toEqual([])
      expect(remote.refs()).toEqual({})
    } else {
      expect(refused.doc.transfer.transferred).toEqual([snap])
      expect(remote.refs()).toEqual({ [snap]: local[snap] })
      expect(refused.doc.error.message).toContain('the other 1 ref was pushed')
    }
    await rm(hook)
    const rest = await json(['--agents-root', v.root, '--push-snapshots', remote.http])
    expect(rest.code, rest.stderr).toBe(0)
    expect(rest.doc.transfer.transferred).toEqual(backend === 'cli' ? [snap, runRef] : [runRef])
    expect(remote.refs()).toEqual({ [snap]: local[snap], [runRef]: local[runRef] })
  })

  it('when the remote vanishes during the run then the run is done, warns that the push failed and records it; a later push sends it', async () => {
    const v = await vault()
    const remote = await httpRemote()
    expect((await run(['--agents-root', v.root, '--status', '--remote', remote.http])).code).toBe(0)
    const away = `${remote.dir}.away`
    const events: EngineEvent[] = []
    const result = await migrate({
      agentsRoot: v.root,
      target: 2,
      backend,
      onEvent: (e) => {
        events.push(e)
        if (e.type === 'snapshot') renameSync(remote.dir, away) // the repository goes while the vault is migrated
      },
    })
    expect(result.ok, JSON.stringify(result.errors)).toBe(true)
    expect(events.find((e) => e.type === 'push')).toMatchObject({ push: { remote: remote.http, ok: false, transferred: 0, error: { code: 'REMOTE_FAILED' } } })
    const lines = (await readFile(path.join(v.root, '_migrations/migration.jsonl'), 'utf8')).trim().split('\n')
    expect(JSON.parse(lines[lines.length - 1] as string)).toMatchObject({
      result: 'ok',
      push: { ok: false, error_code: 'REMOTE_FAILED' },
      lease: { released: false },
    })
    await rename(away, remote.dir)
    expect((await run(['--agents-root', v.root, '--push-snapshots'])).code).toBe(0)
    expect((await run(['--agents-root', v.root, '--break-lease'])).code).toBe(0)
    expect(Object.keys(remote.refs()).sort()).toEqual([`refs/aas/runs/${result.runId}`, result.snapshot?.ref].sort())
  })

  it('when the server stops then push, fetch and the lease fail with REMOTE_FAILED naming the remote, and the listing falls back to local', async () => {
    const v = await vault()
    const gone = await startGitHttpServer(base)
    const remote = await makeBareRemote(`gone-${backend}.git`, base)
    cleanups.push(remote.cleanup)
    const url = gone.url(`gone-${backend}.git`)
    expect((await run(['--agents-root', v.root, '--status', '--remote', url])).code).toBe(0)
    await gone.stop()
    for (const args of [['--push-snapshots'], ['--fetch-snapshots', url], ['--to', 'v2']]) {
      const r = await json(['--agents-root', v.root, ...args])
      expect(r.code, args.join(' ')).toBe(1)
      expect(r.doc.error.code).toBe('REMOTE_FAILED')
      expect(r.doc.error.message).toContain(url)
    }
    const list = await json(['--agents-root', v.root, '--list-snapshots'])
    expect(list.doc.remote).toMatchObject({ name: url, reachable: false, error: { code: 'REMOTE_FAILED' } })
    const doctor = JSON.parse((await run(['--agents-root', v.root, '--doctor', '--json'])).stdout)
    expect(doctor.doctor.checks.find((c: { id: string }) => c.id === 'remote')).toMatchObject({ ok: false, details: ['REMOTE_FAILED'] })
  })

  it('when the URL carries credentials then they are used, and the password shows nowhere: output, --json, audit line', async () => {
    const v = await vault()
    const remote = await makeBareRemote(`auth-${backend}.git`, base)
    cleanups.push(remote.cleanup)
    const url = authServer.url(`auth-${backend}.git`, CREDS)
    const shown = url.replace(`:${CREDS.password}@`, ':***@')
    const set = await run(['--agents-root', v.root, '--status', '--remote', url])
    expect(set.code, set.stderr).toBe(0)
    const r = await json(['--agents-root', v.root, '--to', 'v2'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.doc.push).toEqual({ remote: shown, ok: true, transferred: 2, error: null })
    expect(Object.keys(remote.refs())).toHaveLength(2)
    const wrong = authServer.url(`auth-${backend}.git`, { user: CREDS.user, password: 'wrong-password' })
    const refused = await json(['--agents-root', v.root, '--push-snapshots', wrong])
    expect(refused.doc.error.code).toBe('REMOTE_FAILED')
    const texts = [set.stdout, set.stderr, r.stdout, r.stderr, refused.stdout, refused.stderr]
    texts.push((await run(['--agents-root', v.root, '--list-snapshots'])).stdout)
    texts.push((await run(['--agents-root', v.root, '--doctor'])).stdout)
    texts.push(await readFile(path.join(v.root, '_migrations/migration.jsonl'), 'utf8'))
    for (const t of texts) {
      expect(t).not.toContain(CREDS.password)
      expect(t).not.toContain('wrong-password')
    }
    expect(r.stderr + r.stdout).toContain(shown)
  })
})

describe('an https:// remote with a private CA', () => {
  it.each([
    ['cli', 'GIT_SSL_CAINFO'],
    ['js', 'NODE_EXTRA_CA_CERTS'],
  ] as const)(
    'when the %s backend is given the CA through %s then push, fetch and the lease work, and without it the push fails naming the remote',
    async (backend, caVar) => {
      const dir = await mkdtemp(path.join(tmpdir(), 'aas-tls-'))
      cleanups.push(() => rm(dir, { recursive: true, force: true }))
      const cert = makeCertificate(dir)
      const tls = await startGitHttpServer(base, { tls: cert, auth: CREDS })
      cleanups.push(() => tls.stop())
      const remote = await makeBareRemote(`tls-${backend}.git`, base)
      cleanups.push(remote.cleanup)
      const url = tls.url(`tls-${backend}.git`, CREDS)
      const v = await vault()
      const env = { AAS_GIT: backend, [caVar]: cert.caFile }
      const run = await binAsync(['--agents-root', v.root, '--to', 'v2', '--remote', url, '--json'], { env })
      expect(run.code, run.stderr).toBe(0)
      expect(JSON.parse(run.stdout).push).toMatchObject({ ok: true, transferred: 2 })
      expect(Object.keys(remote.refs()).sort()).toEqual(Object.keys(refsOf(storeOf(v))).sort())
      const fresh = await mkdtemp(path.join(tmpdir(), 'aas-tls-new-'))
      cleanups.push(() => rm(fresh, { recursive: true, force: true }))
      const fetched = await binAsync(['--agents-root', fresh, '--fetch-snapshots', url, '--json'], { env })
      expect(fetched.code, fetched.stderr).toBe(0)
      expect(refsOf(path.join(fresh, '_migrations/aas.git'))).toEqual(remote.refs())
      const untrusted = await binAsync(['--agents-root', v.root, '--push-snapshots', '--json'], { env: { AAS_GIT: backend } })
      expect(untrusted.code).toBe(1)
      expect(JSON.parse(untrusted.stdout).error).toMatchObject({ code: 'REMOTE_FAILED', data: { remote: url.replace(`:${CREDS.password}@`, ':***@') } })
      for (const out of [run, fetched, untrusted]) expect(out.stdout + out.stderr).not.toContain(CREDS.password)
    },
  )
})

describe('the isomorphic-git backend and remotes other than http(s)', () => {
  it('when the remote is ssh, scp-like, git://, file:// or a path then every remote command refuses with REMOTE_UNSUPPORTED, saying it needs the git binary', async () => {
    const v = await vault()
    const remote = await makeBareRemote()
    cleanups.push(remote.cleanup)
    expect((await cli(['--agents-root', v.root, '--to', 'v2'], { AAS_GIT: 'js' })).code).toBe(0)
    for (const r of ['ssh://backup.example/vault.git', 'backup.example:vault.git', 'git://127.0.0.1/vault.git', remote.url, remote.dir]) {
      await expect(pushSnapshots({ agentsRoot: v.root, remote: r, backend: 'js' })).rejects.toMatchObject({
        code: 'REMOTE_UNSUPPORTED',
        message: expect.stringContaining('needs the git binary'),
      })
      await expect(fetchSnapshots({ agentsRoot: v.root, remote: r, backend: 'js' })).rejects.toMatchObject({ code: 'REMOTE_UNSUPPORTED' })
      const list = await cli(['--agents-root', v.root, '--list-snapshots', '--remote', r, '--json'], { AAS_GIT: 'js' })
      expect(JSON.parse(list.stdout).remote).toMatchObject({ reachable: false, error: { code: 'REMOTE_UNSUPPORTED' } })
      for (const args of [
        ['--prune-snapshots', '--keep-last', '1', '--remote', r],
        ['--break-lease', '--remote', r],
        ['--to', 'v3', '--remote', r],
      ]) {
        const out = await cli(['--agents-root', v.root, ...args, '--json'], { AAS_GIT: 'js' })
        expect(out.code, args.join(' ')).toBe(1)
        expect(JSON.parse(out.stdout).error.code).toBe('REMOTE_UNSUPPORTED')
      }
    }
    expect(remote.refs()).toEqual({})
    expect(Object.keys(refsOf(storeOf(v))).filter((r) => r.startsWith('refs/aas/snapshots/'))).toHaveLength(1) // nothing pruned
  })
})

// Waits until the wall clock is past the second a snapshot's name records, so that a
// snapshot taken next gets another name.
async function nextSecondAfter(ref: string): Promise<void> {
  const name = ref.slice('refs/aas/snapshots/'.length)
  const parsed = parseName(name)
  if (!parsed) throw new Error(`${name} is not a snapshot name`)
  const wait = (parsed.timestamp + 1) * 1000 - Date.now()
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 20))
}
