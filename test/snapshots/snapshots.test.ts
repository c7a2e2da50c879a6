import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { exportSnapshot } from '../../src/snapshots/export-tarball.js'
import { importSnapshot } from '../../src/snapshots/import-tarball.js'
import { listSnapshots, resolveSnapshotName } from '../../src/snapshots/list.js'
import { takeSnapshot } from '../../src/snapshots/take.js'
import { openStore } from '../../src/git/open-store.js'
import { BIG_BLOB_BYTES, type BackendName } from '../../src/git/store.js'
import { captureGitState } from '../helpers/git-state.js'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'

const NOW = new Date('2026-08-12T14:30:00Z')

describe.each<BackendName>(['cli', 'js'])('snapshots (%s)', (backend) => {
  let v: TempVault
  afterEach(async () => v?.cleanup())

  it('when two snapshots are taken in the same second then the second gets -2 and the first as parent', async () => {
    v = await makeVault('vault-v1')
    const store = await openStore({ agentsRoot: v.root, backend })
    const a = await takeSnapshot(store, { target: 2, from: 1, runId: 'run-a', now: NOW })
    await writeFile(path.join(v.root, 'scout/memory/feedback_citation_style.md'), 'changed\n')
    const b = await takeSnapshot(store, { target: 2, from: 1, runId: 'run-b', now: NOW })
    expect(a.name).toBe('2026-08-12T143000_pre_v2_migration')
    expect(b.name).toBe('2026-08-12T143000_pre_v2_migration-2')
    expect(b.parent).toBe(a.commit)
    expect(b.bytesAdded).toBe(Buffer.byteLength('changed\n'))
    const commit = await store.readCommit(b.commit)
    expect(commit.trailers).toMatchObject({ 'Aas-Run-Id': 'run-b', 'Aas-From': '1', 'Aas-Target': '2' })
    expect(commit.trailers['Aas-Engine-Version']).toMatch(/^\d+\.\d+\.\d+/)
    const list = await listSnapshots(store)
    expect(list.map((s) => s.name)).toEqual([b.name, a.name])
    expect(list[0]).toMatchObject({ target: 2, files: b.files, source: 'ref', time: '2026-08-12T14:30:00.000Z' })
  })

  it('when a user names a snapshot then only known names resolve', async () => {
    v = await makeVault('vault-v1')
    const store = await openStore({ agentsRoot: v.root, backend })
    const a = await takeSnapshot(store, { target: 2, from: 1, runId: 'r', now: NOW })
    expect((await resolveSnapshotName(store, a.name)).commit).toBe(a.commit)
    expect((await resolveSnapshotName(store, `${a.name}.tar.gz`)).commit).toBe(a.commit)
    for (const bad of ['../../heads/main', 'refs/heads/main', '-x', 'a b', 'a..b', '', '.hidden', 'x.lock']) {
      await expect(resolveSnapshotName(store, bad), bad).rejects.toMatchObject({ code: 'SNAPSHOT_NAME_INVALID' })
    }
    await expect(resolveSnapshotName(store, 'main')).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND', data: { name: 'main' } })
  })

  it('when a snapshot is exported and imported under another name then the tree is identical', async () => {
    v = await makeVault('vault-v1')
    const store = await openStore({ agentsRoot: v.root, backend })
    const a = await takeSnapshot(store, { target: 2, from: 1, runId: 'r', now: NOW })
    const exp = await exportSnapshot(store, a.name)
    expect(exp.file).toBe(path.join(v.root, '_migrations/snapshots', `${a.name}.tar.gz`))
    await expect(exportSnapshot(store, a.name)).rejects.toMatchObject({ code: 'TARBALL_EXISTS' })
    // the system tar reads it, with members relative to agents_root
    const members = execFileSync('tar', ['tzf', exp.file], { encoding: 'utf8' }).split('\n')
    expect(members).toContain('scout/memory/feedback_citation_style.md')
    const copy = path.join(v.root, '_migrations/snapshots/2026-08-13T000000_pre_v3_migration.tar.gz')
    await writeFile(copy, await readFile(exp.file))
    // not imported yet: listed as a legacy tarball
    expect((await listSnapshots(store))[0]).toMatchObject({ name: '2026-08-13T000000_pre_v3_migration', source: 'tarball', target: 3 })
    const imp = await importSnapshot(store, copy)
    expect(imp.tree).toBe(a.tree)
    const listed = await listSnapshots(store)
    expect(listed.map((s) => [s.name, s.source])).toEqual([
      ['2026-08-13T000000_pre_v3_migration', 'ref'],
      [a.name, 'ref'],
    ])
    await expect(importSnapshot(store, copy)).rejects.toMatchObject({ code: 'SNAPSHOT_EXISTS' })
  })

  it('when a snapshot holds a file above BIG_BLOB_BYTES then export and import stream it, the tree round-trips and no scratch file is left', async () => {
    v = await makeVault('vault-v1')
    const store = await openStore({ agentsRoot: v.root, backend })
    const big = randomBytes(BIG_BLOB_BYTES + 4096)
    await mkdir(path.join(v.root, 'scout/raw'), { recursive: true })
    await writeFile(path.join(v.root, 'scout/raw/recording.bin'), big)
    const a = await takeSnapshot(store, { target: 2, from: 1, runId: 'r', now: NOW })
    const outDir = path.join(v.dir, 'out')
    const exp = await exportSnapshot(store, a.name, { out: path.join(outDir, '2026-08-13T000000_pre_v3_migration.tar.gz') })
    expect(await readdir(outDir)).toEqual([path.basename(exp.file)])
    // tar(1) reads the member back byte for byte
    const extracted = execFileSync('tar', ['xzOf', exp.file, 'scout/raw/recording.bin'], { maxBuffer: 2 * big.length })
    expect(createHash('sha1').update(extracted).digest('hex')).toBe(createHash('sha1').update(big).digest('hex'))
    const imp = await importSnapshot(store, exp.file)
    expect(imp.tree).toBe(a.tree)
    expect((await readdir(store.location.stateDir)).filter((f) => f.startsWith('import-'))).toEqual([])
  })

  it('when a tarball holds no member at all then it imports as an empty snapshot', async () => {
    v = await makeVault('vault-v1')
    const store = await openStore({ agentsRoot: v.root, backend })
    const file = path.join(v.dir, '2026-01-01T000000_pre_v2_migration.tar.gz')
    execFileSync('python3', ['-c', "import tarfile, sys; tarfile.open(sys.argv[1], 'w:gz').close()", file])
    const imp = await importSnapshot(store, file)
    expect(imp).toMatchObject({ files: 0, skipped: [] })
    expect(await store.listTree(imp.tree)).toEqual([])
  })

  // Hostile tarballs, written with Python's tarfile like the Python runner.
  const hostile: Array<[string, string, string]> = [
    ['absolute path', "add_file(t, '/etc/evil.md')", '/etc/evil.md'],
    ['.. component', "add_file(t, 'a/../../evil.md')", 'a/../../evil.md'],
    ['link leaving the vault', "add_link(t, 'a/wiki/l.md', '../../../etc/passwd')", 'a/wiki/l.md'],
    ['absolute link', "add_link(t, 'a/wiki/l.md', '/etc/passwd')", 'a/wiki/l.md'],
    ['hard link', "add_link(t, 'a/wiki/h.md', 'a/memory/ok.md', tarfile.LNKTYPE)", 'a/wiki/h.md'],
    ['device', "add_special(t, 'a/dev', tarfile.CHRTYPE)", 'a/dev'],
    ['fifo', "add_special(t, 'a/fifo', tarfile.FIFOTYPE)", 'a/fifo'],
    ['duplicate', "add_file(t, 'a/memory/ok.md')", 'a/memory/ok.md'],
    ['.. component in a long (pax) name', `add_file(t, 'a/${'x'.repeat(120)}/../../../evil.md')`, `a/${'x'.repeat(120)}/../../../evil.md`],
    ['type tar does not define', "add_special(t, 'a/vol', b'V')", 'a/vol'],
  ]
  it.each(hostile)('when a tarball has a member with a %s then import refuses naming it and imports nothing', async (_what, line, member) => {
    v = await makeVault('vault-v1')
    const store = await openStore({ agentsRoot: v.root, backend })
    const file = path.join(v.dir, '2026-01-01T000000_pre_v2_migration.tar.gz')
    const script = `
import tarfile, io, sys
def add_file(t, name, data=b'x'):
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
def add_link(t, name, target, kind=tarfile.SYMTYPE):
    i = tarfile.TarInfo(name); i.type = kind; i.linkname = target; t.addfile(i)
def add_special(t, name, kind):
    i = tarfile.TarInfo(name); i.type = kind; t.addfile(i)
with tarfile.open(sys.argv[1], 'w:gz') as t:
    add_file(t, 'a/memory/ok.md')
    ${line}
`
    execFileSync('python3', ['-c', script, file])
    const before = await store.listRefs('refs/aas/')
    await expect(importSnapshot(store, file)).rejects.toMatchObject({ code: 'TARBALL_INVALID', data: { member } })
    expect(await store.listRefs('refs/aas/')).toEqual(before)
    // blob 'x' (c1b0730e…) was never written, loose or packed
    expect(() =>
      execFileSync('git', ['--git-dir', store.location.gitDir, 'cat-file', '-e', 'c1b0730e0133447badcfd47fd144e254807b06e1'], { stdio: 'ignore' }),
    ).toThrow()
  })
})

// Every git-vault shape: the user's HEAD, index, branches, tags, stash and config stay byte-identical.
const shapes: Array<[string, (dir: string) => void, string | undefined]> = [
  ['vault at the repo root', () => {}, undefined],
  ['vault in a sub-folder', () => {}, 'vault/agents'],
  ['repo without commits', (dir) => git(dir, 'update-ref', '-d', 'refs/heads/main'), undefined],
  ['detached HEAD', (dir) => git(dir, 'checkout', '-q', '--detach'), undefined],
  [
    'staged but uncommitted changes',
    (dir) => {
      execFileSync('sh', ['-c', 'echo staged >> scout/model.md && echo stash-me >> scout/persona.md'], { cwd: dir })
      git(dir, 'stash', 'push', '-q', '--', 'scout/persona.md')
      git(dir, 'add', 'scout/model.md')
      git(dir, 'tag', 'v-old')
    },
    undefined,
  ],
]

describe.each<BackendName>(['cli', 'js'])('git vault stays untouched (%s)', (backend) => {
  let v: TempVault
  afterEach(async () => v?.cleanup())

  it.each(shapes)('when the %s then no snapshot operation changes the user repository', async (_shape, setup, subdir) => {
    v = await makeVault('vault-v1', { git: true, ...(subdir ? { subdir } : {}) })
    setup(v.dir)
    // hooks that would leave a mark, attributes and autocrlf that would change bytes
    await mkdir(path.join(v.dir, '.git/hooks'), { recursive: true })
    for (const hook of ['post-index-change', 'reference-transaction', 'post-commit']) {
      await writeFile(path.join(v.dir, '.git/hooks', hook), `#!/bin/sh\necho ${hook} >> "${v.dir}/hook-ran"\n`, { mode: 0o755 })
    }
    git(v.dir, 'config', 'core.autocrlf', 'true')
    await writeFile(path.join(v.root, 'scout/memory/crlf.md'), 'a\r\nb\r\n')
    await writeFile(path.join(v.dir, '.gitattributes'), '*.md text eol=lf\n')
    await writeFile(path.join(v.dir, '.gitignore'), 'memory/\n')
    const before = await captureGitState(v.dir)

    const store = await openStore({ agentsRoot: v.root, backend })
    expect(store.location.kind).toBe('repo')
    const snap = await takeSnapshot(store, { target: 2, from: 1, runId: 'r', now: NOW })
    expect(await captureGitState(v.dir)).toEqual(before)
    await listSnapshots(store)
    const exp = await exportSnapshot(store, snap.name, { out: path.join(v.dir, '..', `${path.basename(v.dir)}-x.tar.gz`) })
    await rm(exp.file, { force: true }).catch(() => {})
    await exportSnapshot(store, snap.name, { out: path.join(v.dir, `${snap.name}.tar.gz`) })
    const { rename } = await import('node:fs/promises')
    const imported = path.join(v.dir, '2027-01-01T000000_pre_v3_migration.tar.gz')
    await rename(path.join(v.dir, `${snap.name}.tar.gz`), imported)
    const imp = await importSnapshot(store, imported)
    expect(imp.tree).toBe(snap.tree)
    expect(await captureGitState(v.dir)).toEqual(before)
    await expect(stat(path.join(v.dir, 'hook-ran'))).rejects.toThrow()

    // exact bytes despite autocrlf/eol attributes; ignored memory/ still in the snapshot
    const entries = await store.listTree(snap.tree)
    const crlf = entries.find((e) => e.path === 'scout/memory/crlf.md')
    expect(crlf).toBeDefined()
    expect((await store.readBlob(crlf!.oid)).toString()).toBe('a\r\nb\r\n')
    expect(git(v.dir, 'for-each-ref', '--format=%(refname)', 'refs/aas/').trim().split('\n')).toContain(`refs/aas/snapshots/${snap.name}`)
  })
})
