import { randomBytes } from 'node:crypto'
import { closeSync, openSync, writeSync } from 'node:fs'
import { appendFile, chmod, lstat, mkdir, readdir, readFile, readlink, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { EMPTY_TREE } from '../../src/git/git-objects.js'
import { openStore } from '../../src/git/open-store.js'
import { STAT_CACHE_FILE } from '../../src/git/stat-cache.js'
import { BIG_BLOB_BYTES, type BackendName, type BaseTree, type BlobInput, type FileChange, type Store } from '../../src/git/store.js'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'

const OLD = new Date('2024-01-01T00:00:00Z')

// A vault with every kind of file the store must keep exactly.
async function writeTricky(root: string): Promise<Record<string, { bytes: Buffer; mode: string }>> {
  const files: Record<string, { bytes: Buffer; mode: string }> = {
    'alice/memory/feedback_debt.md': { bytes: Buffer.from('---\nschema_version: 1\n---\r\nbody\r\n'), mode: '100644' },
    'alice/memory/name with spaces.md': { bytes: Buffer.from('spaces'), mode: '100644' },
    'alice/wiki/ünïcödé – page.md': { bytes: Buffer.from('unicode'), mode: '100644' },
    'alice/wiki/new\nline.md': { bytes: Buffer.from('newline in name'), mode: '100644' },
    'alice/tools/run.sh': { bytes: Buffer.from('#!/bin/sh\necho hi\n'), mode: '100755' },
    'alice/empty.md': { bytes: Buffer.alloc(0), mode: '100644' },
    'alice/blob.bin': { bytes: Buffer.from([0, 1, 2, 255, 13, 10, 0]), mode: '100644' },
    '.gitattributes': { bytes: Buffer.from('*.md text eol=lf filter=nope\n'), mode: '100644' },
  }
  for (const [p, f] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, p)), { recursive: true })
    await writeFile(path.join(root, p), f.bytes)
    if (f.mode === '100755') await chmod(path.join(root, p), 0o755)
  }
  await symlink('../memory/feedback_debt.md', path.join(root, 'alice/wiki/link.md'))
  files['alice/wiki/link.md'] = { bytes: Buffer.from('../memory/feedback_debt.md'), mode: '120000' }
  await symlink('/etc/passwd', path.join(root, 'alice/outside'))
  files['alice/outside'] = { bytes: Buffer.from('/etc/passwd'), mode: '120000' }
  // outside the snapshot scope
  await mkdir(path.join(root, '_cache'), { recursive: true })
  await writeFile(path.join(root, '_cache/x.md'), 'cache')
  await writeFile(path.join(root, '.migration.lock'), 'lock')
  return files
}

async function readBack(store: Store, tree: string): Promise<Record<string, { bytes: Buffer; mode: string }>> {
  const entries = await store.listTree(tree)
  const out: Record<string, { bytes: Buffer; mode: string }> = {}
  let i = 0
  for await (const { content } of store.readBlobs(entries.map((e) => e.oid))) {
    const e = entries[i++]!
    out[e.path] = { bytes: content, mode: e.mode }
  }
  return out
}

describe.each<BackendName>(['cli', 'js'])('store conformance (%s)', (backend) => {
  let v: TempVault
  afterEach(async () => v?.cleanup())

  it('when a vault is snapshotted then every file reads back with identical bytes and mode', async () => {
    v = await makeVault(null)
    const files = await writeTricky(v.root)
    const store = await openStore({ agentsRoot: v.root, backend })
    expect(store.location.kind).toBe('embedded')
    const res = await store.writeVaultTree()
    expect(res.files).toBe(Object.keys(files).length)
    const back = await readBack(store, res.tree)
    expect(Object.keys(back).sort()).toEqual(Object.keys(files).sort())
    for (const [p, f] of Object.entries(files)) {
      expect(back[p]!.mode, p).toBe(f.mode)
      expect(back[p]!.bytes.equals(f.bytes), p).toBe(true)
    }
    // readBlob agrees with the streamed reads, and git itself finds the store sound
    const one = (await store.listTree(res.tree)).find((e) => e.path === 'alice/blob.bin')!
    expect((await store.readBlob(one.oid)).equals(files['alice/blob.bin']!.bytes)).toBe(true)
    git(v.root, '--git-dir', store.location.gitDir, 'fsck', '--strict', '--no-dangling')
    expect(await readFile(path.join(store.location.gitDir, 'info/attributes'), 'utf8')).toContain('-text -filter')
  })

  it('when the ref moved then a compare-and-swap update or delete refuses with REF_MOVED', async () => {
    v = await makeVault(null)
    await writeTricky(v.root)
    const store = await openStore({ agentsRoot: v.root, backend })
    const { tree } = await store.writeVaultTree()
    const c1 = await store.writeCommit({ tree, parents: [], message: 'one', timestamp: 1000 })
    const c2 = await store.writeCommit({ tree, parents: [c1], message: 'two\n\nAas-Run-Id: r1\nAas-Target: 2', timestamp: 2000 })
    const ref = 'refs/aas/snapshots/x'
    await store.updateRef(ref, c1, null)
    await expect(store.updateRef(ref, c2, null)).rejects.toMatchObject({ code: 'REF_MOVED', data: { ref, actual: c1 } })
    await store.updateRef(ref, c2, c1)
    await expect(store.updateRef(ref, c1, c1)).rejects.toMatchObject({ code: 'REF_MOVED', data: { expected: c1, actual: c2 } })
    await expect(store.deleteRef(ref, c1)).rejects.toMatchObject({ code: 'REF_MOVED' })
    expect(await store.resolveRef(ref)).toBe(c2)
    expect(await store.listRefs('refs/aas/')).toEqual([{ ref, oid: c2 }])
    const info = await store.readCommit(c2)
    expect(info).toMatchObject({ tree, parents: [c1], timestamp: 2000, trailers: { 'Aas-Run-Id': 'r1', 'Aas-Target': '2' } })
    await store.deleteRef(ref, c2)
    expect(await store.resolveRef(ref)).toBeNull()
    await expect(store.updateRef('refs/heads/main', c1, null)).rejects.toMatchObject({ code: 'REF_INVALID' })
    await expect(store.updateRef('refs/aas/../heads/main', c1, null)).rejects.toMatchObject({ code: 'REF_INVALID' })
  })

  it('when a ref is only in packed-refs then it resolves, lists and deletes', async () => {
    v = await makeVault(null)
    await writeTricky(v.root)
    const store = await openStore({ agentsRoot: v.root, backend })
    const { tree } = await store.writeVaultTree()
    const c = await store.writeCommit({ tree, parents: [], message: 'p', timestamp: 1 })
    await store.updateRef('refs/aas/snapshots/p', c, null)
    git(v.root, '--git-dir', store.location.gitDir, 'pack-refs', '--all')
    expect(await store.resolveRef('refs/aas/snapshots/p')).toBe(c)
    expect(await store.listRefs('refs/aas/snapshots/')).toEqual([{ ref: 'refs/aas/snapshots/p', oid: c }])
    await store.deleteRef('refs/aas/snapshots/p', c)
    expect(await store.listRefs('refs/aas/snapshots/')).toEqual([])
  })

  it('when one file changed since the last snapshot then a repeat hashes only that file', async () => {
    v = await makeVault(null)
    await writeTricky(v.root)
    for (const p of ['alice/memory/feedback_debt.md', 'alice/empty.md', 'alice/blob.bin', 'alice/tools/run.sh']) await utimes(path.join(v.root, p), OLD, OLD)
    const store = await openStore({ agentsRoot: v.root, backend })
    const first = await store.writeVaultTree()
    await writeFile(path.join(v.root, 'alice/blob.bin'), Buffer.from('XYZ')) // same as before? no: new bytes
    await utimes(path.join(v.root, 'alice/blob.bin'), OLD, OLD) // a stale mtime must not hide the change (ctime moved)
    const second = await store.writeVaultTree()
    expect(second.tree).not.toBe(first.tree)
    const back = await readBack(store, second.tree)
    expect(back['alice/blob.bin']!.bytes.toString()).toBe('XYZ')
    // the old-mtime files were not read again; only the changed and the recent ones
    expect(second.bytesHashed).toBeLessThan(first.bytesHashed)
    const third = await store.writeVaultTree()
    expect(third.tree).toBe(second.tree)
  })

  it('when files are edited through writeTreeWithChanges then diffTrees reports exactly those', async () => {
    v = await makeVault(null)
    await writeTricky(v.root)
    const store = await openStore({ agentsRoot: v.root, backend })
    const { tree } = await store.writeVaultTree()
    const next = await store.writeTreeWithChanges(tree, [
      { path: 'alice/empty.md', mode: '100755', content: Buffer.from('now full') },
      { path: 'alice/blob.bin', delete: true },
      { path: 'bob/memory/new.md', mode: '100644', content: Buffer.from('new') },
    ])
    const diff = await store.diffTrees(tree, next)
    expect(diff.map((d) => [d.path, d.status])).toEqual([
      ['alice/blob.bin', 'deleted'],
      ['alice/empty.md', 'modified'],
      ['bob/memory/new.md', 'added'],
    ])
    expect(await store.writeTreeWithChanges(EMPTY_TREE, [])).toBe(EMPTY_TREE)
  })

  it('when a commit is written with changes in one pass then it equals the tree edit plus writeCommit, with or without the base listing', async () => {
    v = await makeVault(null)
    await writeTricky(v.root)
    const store = await openStore({ agentsRoot: v.root, backend })
    const snap = await store.writeVaultCommit({ commit: async () => ({ parents: [], message: 'base\n', timestamp: 1_700_000_000 }) })
    const changes = [
      { path: 'alice/empty.md', mode: '100755' as const, content: Buffer.from('now full') },
      { path: 'alice/blob.bin', delete: true as const },
      { path: 'bob/memory/new.md', mode: '100644' as const, content: Buffer.from('new') },
      { path: 'zed dir/with "quotes"\tand tab.md', mode: '100644' as const, content: Buffer.from('quoted path') },
    ]
    const meta = { parents: [snap.commit], message: 'changed\n', timestamp: 1_700_000_100 }
    const expectedTree = await store.writeTreeWithChanges(snap.tree, changes)
    const expected = await store.writeCommit({ ...meta, tree: expectedTree })
    const listed = await store.writeCommitWithChanges({ tree: snap.tree }, changes, meta)
    const known = await store.writeCommitWithChanges({ tree: snap.tree, entries: snap.entries, trees: snap.trees }, changes, meta)
    // The same from a stream still being produced, a base given as a promise and the
    // commit's fields asked for only at the end.
    let asked = 0
    let settle!: (b: BaseTree) => void
    const later = new Promise<BaseTree>((resolve) => (settle = resolve))
    async function* trickle(): AsyncGenerator<FileChange> {
      for (const c of changes) {
        await new Promise((resolve) => setTimeout(resolve, 5))
        yield c
      }
      settle({ tree: snap.tree, entries: snap.entries, trees: snap.trees })
    }
    const streamed = await store.writeCommitWithChanges(later, trickle(), () => (asked++, meta))
    expect(listed).toEqual({ tree: expectedTree, commit: expected })
    expect(known).toEqual({ tree: expectedTree, commit: expected })
    expect(streamed).toEqual({ tree: expectedTree, commit: expected })
    expect(asked).toBe(1)
    // A stream that fails writes no commit.
    async function* broken(): AsyncGenerator<FileChange> {
      yield changes[0] as FileChange
      throw new Error('the chain failed')
    }
    await expect(store.writeCommitWithChanges({ tree: snap.tree }, broken(), meta)).rejects.toThrow()
    expect((await store.readCommit(expected)).parents).toEqual([snap.commit])
    const after = new Map((await store.listTree(expected)).map((e) => [e.path, e]))
    expect(after.has('alice/blob.bin')).toBe(false)
    expect((await store.readBlob(after.get('zed dir/with "quotes"\tand tab.md')!.oid)).toString()).toBe('quoted path')
    expect((await store.readBlob(after.get('alice/empty.md')!.oid)).toString()).toBe('now full')
  })

  it('when a result starts being written while the first snapshot creates the store then the store is created once and nothing of it is snapshotted', async () => {
    v = await makeVault('vault-v1')
    const store = await openStore({ agentsRoot: v.root, backend })
    // Two creations at once must be one.
    const inner = store as unknown as { makeWritable(): Promise<void> }
    const make = inner.makeWritable.bind(store)
    let running = 0
    let most = 0
    inner.makeWritable = () => {
      most = Math.max(most, ++running)
      return make().finally(() => running--)
    }
    const [, snap] = await Promise.all([
      store.writeBlob(Buffer.from('racing\n')),
      store.writeVaultCommit({ commit: async () => ({ parents: [], message: 'first\n', timestamp: 1_700_000_000 }) }),
    ])
    expect(most).toBe(1)
    expect(snap.entries.filter((e) => e.path.startsWith('_migrations/aas.git'))).toEqual([])
    expect((await readdir(path.join(v.root, '_migrations'))).filter((n) => n.startsWith('aas.git'))).toEqual(['aas.git'])
  })

  it('when the vault is a sub-folder of a repository then trees are rooted at the vault', async () => {
    v = await makeVault('vault-v1', { git: true, subdir: 'notes/agents' })
    const store = await openStore({ agentsRoot: v.root, backend })
    expect(store.location).toMatchObject({ kind: 'repo', prefix: 'notes/agents' })
    const { tree } = await store.writeVaultTree()
    const paths = (await store.listTree(tree)).map((e) => e.path)
    expect(paths.length).toBeGreaterThan(0)
    expect(paths.every((p) => !p.startsWith('notes/'))).toBe(true)
    // the same blob as git recorded below the sub-folder, at the vault-relative path
    const note = 'scout/memory/feedback_citation_style.md'
    const entry = (await store.listTree(tree)).find((e) => e.path === note)
    expect(entry?.oid).toBe(git(v.dir, 'rev-parse', `HEAD:notes/agents/${note}`).trim())
    expect(paths).not.toContain('_dashboard/index.html')
  })
})

describe('store backends agree', () => {
  it('when both backends snapshot the same files then the tree ids are identical and each reads the other', async () => {
    const v = await makeVault(null)
    try {
      await writeTricky(v.root)
      const cli = await openStore({ agentsRoot: v.root, backend: 'cli' })
      const js = await openStore({ agentsRoot: v.root, backend: 'js' })
      await rm(path.join(cli.location.stateDir), { recursive: true, force: true })
      const a = await js.writeVaultTree()
      await rm(path.join(cli.location.stateDir, STAT_CACHE_FILE), { force: true })
      const b = await cli.writeVaultTree()
      expect(b.tree).toBe(a.tree)
      const commit = await js.writeCommit({ tree: a.tree, parents: [], message: 'm', timestamp: 5 })
      expect(await cli.writeCommit({ tree: a.tree, parents: [], message: 'm', timestamp: 5 })).toBe(commit)
      expect((await lstat(path.join(v.root, '_migrations/aas.git/HEAD'))).isFile()).toBe(true)
      expect(await readlink(path.join(v.root, 'alice/outside'))).toBe('/etc/passwd')
    } finally {
      await v.cleanup()
    }
  })
})

const BIG = 40 * 1024 * 1024
const BIG_PATH = 'alice/raw/recording.bin'
const NOTE = '---\nschema_version: 1\n---\nnote\n'

// A vault with one 40 MB file of random bytes under <agent>/raw/ and a note.
async function writeBig(root: string): Promise<Buffer> {
  const bytes = randomBytes(BIG)
  await mkdir(path.join(root, 'alice/raw'), { recursive: true })
  await writeFile(path.join(root, BIG_PATH), bytes)
  await mkdir(path.join(root, 'alice/memory'), { recursive: true })
  await writeFile(path.join(root, 'alice/memory/note.md'), NOTE)
  return bytes
}

// Debris a failed write could leave in a store: temp objects and packs, crash reports.
async function storeDebris(gitDir: string): Promise<string[]> {
  const found: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      if (d.isDirectory()) await walk(path.join(dir, d.name))
      else if (/^(tmp_|fast_import_crash_)|\.tmp$/.test(d.name)) found.push(path.relative(gitDir, path.join(dir, d.name)))
    }
  }
  await walk(gitDir)
  return found
}

describe.each<BackendName>(['cli', 'js'])('big files stream through the store (%s)', (backend) => {
  let v: TempVault
  afterEach(async () => v?.cleanup())

  it("when a 40 MB file is snapshotted then it streams in and out byte-identically, with git's blob id", async () => {
    expect(BIG).toBeGreaterThan(BIG_BLOB_BYTES)
    v = await makeVault(null)
    const bytes = await writeBig(v.root)
    const store = await openStore({ agentsRoot: v.root, backend })
    const res = await store.writeVaultTree()
    const entries = await store.listTree(res.tree)
    const big = entries.find((e) => e.path === BIG_PATH)!
    const note = entries.find((e) => e.path === 'alice/memory/note.md')!
    expect(big.oid).toBe(git(v.root, 'hash-object', '--no-filters', path.join(v.root, BIG_PATH)).trim())
    expect(res.blobSizes.get(big.oid)).toBe(BIG)
    expect(res.bytesHashed).toBeGreaterThanOrEqual(BIG)
    expect(await store.blobSizes([big.oid, note.oid, big.oid])).toEqual(
      new Map([
        [big.oid, BIG],
        [note.oid, NOTE.length],
      ]),
    )

    // to a new path: created exclusively, 0600, every byte
    const out = path.join(v.dir, 'out.bin')
    expect(await store.readBlobToFile(big.oid, out)).toBe(BIG)
    expect((await readFile(out)).equals(bytes)).toBe(true)
    expect((await stat(out)).mode & 0o777).toBe(0o600)
    // to a caller's descriptor, from its position, announcing the size before the bytes
    const viaFd = path.join(v.dir, 'fd.bin')
    const fd = openSync(viaFd, 'w')
    const seen: number[] = []
    try {
      writeSync(fd, 'X')
      const n = await store.readBlobToFile(big.oid, fd, { onSize: (size) => seen.push(-size), onData: (chunk) => seen.push(chunk.length) })
      expect(n).toBe(BIG)
    } finally {
      closeSync(fd)
    }
    expect(seen[0]).toBe(-BIG)
    expect(seen.slice(1).reduce((a, b) => a + b, 0)).toBe(BIG)
    const back = await readFile(viaFd)
    expect(back.length).toBe(BIG + 1)
    expect(back.subarray(1).equals(bytes)).toBe(true)
    await rm(viaFd)
    // never over an existing file
    await writeFile(viaFd, 'keep')
    await expect(store.readBlobToFile(big.oid, viaFd)).rejects.toMatchObject({ code: 'IO_FAILED', message: expect.stringContaining(viaFd) })
    expect(await readFile(viaFd, 'utf8')).toBe('keep')

    // the buffered reads agree; a big Buffer written directly gets the same id
    const all: Buffer[] = []
    for await (const { content } of store.readBlobs([note.oid, big.oid, note.oid])) all.push(content)
    expect(all.map((b) => b.length)).toEqual([NOTE.length, BIG, NOTE.length])
    expect(all[1]!.equals(bytes)).toBe(true)
    expect((await store.readBlob(big.oid)).equals(bytes)).toBe(true)
    async function* one(): AsyncGenerator<BlobInput> {
      yield bytes
    }
    expect(await store.writeBlobs(one())).toEqual([big.oid])
    git(v.root, '--git-dir', store.location.gitDir, 'fsck', '--strict', '--no-dangling')
    expect(await storeDebris(store.location.gitDir)).toEqual([])
  }, 120_000)

  it('when a big file changes size while it is streamed then the write fails naming it and leaves no debris', async () => {
    v = await makeVault(null)
    const bytes = await writeBig(v.root)
    const store = await openStore({ agentsRoot: v.root, backend })
    const file = path.join(v.root, BIG_PATH)
    const small = Buffer.from('a small blob first, so the pass has written something\n')
    // The file is cut short or grows while the store reads it (the change is made once
    // the store has taken the reference, before it can have read 40 MB).
    const during = (change: () => Promise<void>) =>
      async function* (): AsyncGenerator<BlobInput> {
        yield small
        setTimeout(() => void change(), 0)
        yield { path: file, size: BIG }
      }
    // After each failed pass git finds the store sound: a fast-import that ended inside
    // the cut-short blob's data could leave a pack its index disagrees with.
    const fsck = () => git(v.root, '--git-dir', store.location.gitDir, 'fsck', '--strict', '--no-dangling')
    await expect(store.writeBlobs(during(() => truncate(file, 1000))())).rejects.toMatchObject({
      code: 'CONCURRENT_CHANGE',
      message: expect.stringContaining(file),
    })
    fsck()
    await writeFile(file, bytes)
    await expect(store.writeBlobs(during(() => appendFile(file, 'more'))())).rejects.toMatchObject({
      code: 'CONCURRENT_CHANGE',
      message: expect.stringContaining(file),
    })
    fsck()
    await writeFile(file, bytes)
    // or it changed between the scan and the read
    for (const size of [BIG - 1, BIG + 1]) {
      async function* stale(): AsyncGenerator<BlobInput> {
        yield { path: file, size }
      }
      await expect(store.writeBlobs(stale())).rejects.toMatchObject({ code: 'CONCURRENT_CHANGE', message: expect.stringContaining(file), data: { path: file } })
    }
    async function* gone(): AsyncGenerator<BlobInput> {
      yield { path: `${file}.missing`, size: BIG }
    }
    await expect(store.writeBlobs(gone())).rejects.toMatchObject({ code: 'CONCURRENT_CHANGE', message: expect.stringContaining(`${file}.missing`) })
    expect(await storeDebris(store.location.gitDir)).toEqual([])
    // the store is sound and the next snapshot records the file
    const res = await store.writeVaultTree()
    const big = (await store.listTree(res.tree)).find((e) => e.path === BIG_PATH)!
    expect(await store.readBlobToFile(big.oid, path.join(v.dir, 'again.bin'))).toBe(BIG)
    expect((await readFile(path.join(v.dir, 'again.bin'))).equals(bytes)).toBe(true)
    fsck()
  }, 120_000)

  it('when a blob is missing or not a blob then streaming it out and sizing it fail as STORE_CORRUPT and create nothing', async () => {
    v = await makeVault(null)
    await writeTricky(v.root)
    const store = await openStore({ agentsRoot: v.root, backend })
    const { tree } = await store.writeVaultTree()
    const missing = 'f'.repeat(40)
    const out = path.join(v.dir, 'never.bin')
    await expect(store.readBlobToFile(missing, out)).rejects.toMatchObject({ code: 'STORE_CORRUPT', message: expect.stringContaining(missing) })
    await expect(store.readBlobToFile(tree, out)).rejects.toMatchObject({ code: 'STORE_CORRUPT', message: expect.stringContaining('tree') })
    await expect(lstat(out)).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(store.blobSizes([missing])).rejects.toMatchObject({ code: 'STORE_CORRUPT' })
    await expect(store.blobSizes([tree])).rejects.toMatchObject({ code: 'STORE_CORRUPT' })
    await expect(store.readBlobToFile('not-an-oid', out)).rejects.toMatchObject({ code: 'REF_INVALID' })
    expect(await store.blobSizes([])).toEqual(new Map())
    // an empty blob streams as zero bytes
    const empty = (await store.listTree(tree)).find((e) => e.path === 'alice/empty.md')!
    expect(await store.readBlobToFile(empty.oid, out)).toBe(0)
    expect((await readFile(out)).length).toBe(0)
  })
})

describe('big files: backends agree', () => {
  it("when both backends store the same 40 MB file then the blob id is the same and each streams the other's object out, packed or loose", async () => {
    const v = await makeVault(null)
    try {
      const bytes = await writeBig(v.root)
      const cli = await openStore({ agentsRoot: v.root, backend: 'cli' })
      const js = await openStore({ agentsRoot: v.root, backend: 'js' })
      const a = await js.writeVaultTree()
      await rm(path.join(cli.location.stateDir, STAT_CACHE_FILE), { force: true })
      await rm(path.join(cli.location.gitDir, 'objects'), { recursive: true, force: true })
      await mkdir(path.join(cli.location.gitDir, 'objects'))
      const b = await cli.writeVaultTree()
      expect(b.tree).toBe(a.tree)
      const oid = (await js.listTree(a.tree)).find((e) => e.path === BIG_PATH)!.oid
      // js reads the object the git binary wrote, then a packed copy of it
      expect(await js.readBlobToFile(oid, path.join(v.dir, 'js-loose.bin'))).toBe(BIG)
      // reachable from a ref, so that the repack keeps it (it drops unreachable packed objects)
      const commit = await cli.writeCommit({ tree: b.tree, parents: [], message: 'big\n', timestamp: 1_700_000_000 })
      await cli.updateRef('refs/aas/test/big', commit, null)
      git(v.root, '--git-dir', cli.location.gitDir, 'repack', '-a', '-d', '-q')
      expect(await js.blobSizes([oid])).toEqual(new Map([[oid, BIG]]))
      expect(await js.readBlobToFile(oid, path.join(v.dir, 'js-packed.bin'))).toBe(BIG)
      expect(await cli.readBlobToFile(oid, path.join(v.dir, 'cli-packed.bin'))).toBe(BIG)
      for (const f of ['js-loose.bin', 'js-packed.bin', 'cli-packed.bin']) expect((await readFile(path.join(v.dir, f))).equals(bytes), f).toBe(true)
    } finally {
      await v.cleanup()
    }
  }, 120_000)
})
