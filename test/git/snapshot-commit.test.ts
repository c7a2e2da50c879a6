import { createHash } from 'node:crypto'
import { chmod, lstat, lutimes, mkdir, readdir, readFile, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { takeSnapshot } from '../../src/snapshots/take.js'
import { buildSortedTrees } from '../../src/git/base-store.js'
import { fastImportPath } from '../../src/git/cli-store.js'
import { buildTrees } from '../../src/git/git-objects.js'
import { openStore } from '../../src/git/open-store.js'
import { LEGACY_STAT_CACHE_FILE, loadStatCache, STAT_CACHE_FILE } from '../../src/git/stat-cache.js'
import type { BackendName, BlobInput, PreReadFile, Store, TreeEntry } from '../../src/git/store.js'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'

const OLD = new Date('2024-01-01T00:00:00Z')
const NOW = new Date('2026-08-12T14:30:00Z')

const blobId = (b: Buffer): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex')

// Files whose names fast-import must receive quoted, plus the ordinary kinds.
const FILES: Record<string, string> = {
  'alice/memory/plain.md': 'plain\n',
  'alice/memory/name with spaces.md': 'spaces\n',
  'alice/memory/"quoted".md': 'quote\n',
  'alice/memory/back\\slash.md': 'backslash\n',
  'alice/memory/tab\there.md': 'tab\n',
  'alice/wiki/new\nline.md': 'newline\n',
  'alice/wiki/ünïcödé.md': 'unicode\n',
  'alice/wiki/sub/deep.md': 'deep\n',
  'bob/memory/b.md': 'bob\n',
}

async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [p, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, p)), { recursive: true })
    await writeFile(path.join(root, p), text)
    await utimes(path.join(root, p), OLD, OLD)
  }
}

async function readBack(store: Store, tree: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const e of await store.listTree(tree)) out[`${e.mode} ${e.path}`] = (await store.readBlob(e.oid)).toString('utf8')
  return out
}

// The tree of the same files hashed from scratch (no stat cache, no previous tree).
async function freshTree(store: Store): Promise<string> {
  await rm(path.join(store.location.stateDir, STAT_CACHE_FILE), { force: true })
  await rm(path.join(store.location.stateDir, LEGACY_STAT_CACHE_FILE), { force: true })
  return (await store.writeVaultTree()).tree
}

describe.each<BackendName>(['cli', 'js'])('snapshot tree and commit written together (%s)', (backend) => {
  let v: TempVault
  afterEach(async () => v?.cleanup())

  it('when paths need quoting then the committed tree holds exactly the files and no temporary ref is left', async () => {
    v = await makeVault(null)
    await writeFiles(v.root, FILES)
    await symlink('../memory/plain.md', path.join(v.root, 'alice/wiki/link.md'))
    const store = await openStore({ agentsRoot: v.root, backend })
    const snap = await takeSnapshot(store, { target: 2, from: 1, runId: 'r1', now: NOW })
    const back = await readBack(store, snap.commit)
    const want: Record<string, string> = {}
    for (const [p, text] of Object.entries(FILES)) want[`100644 ${p}`] = text
    want['120000 alice/wiki/link.md'] = '../memory/plain.md'
    expect(back).toEqual(want)
    expect((await store.readCommit(snap.commit)).tree).toBe(snap.tree)
    const refs = git(v.root, '--git-dir', store.location.gitDir, 'for-each-ref', '--format=%(refname)').trim().split('\n')
    expect(refs).toEqual([`refs/aas/snapshots/${snap.name}`])
    git(v.root, '--git-dir', store.location.gitDir, 'fsck', '--strict', '--no-dangling')
  })

  it('when files are changed, added, deleted, turned into folders and made executable then a repeat commits the tree a full re-hash gives', async () => {
    v = await makeVault(null)
    await writeFiles(v.root, FILES)
    const store = await openStore({ agentsRoot: v.root, backend })
    const a = await takeSnapshot(store, { target: 2, from: 1, runId: 'a', now: NOW })
    await writeFile(path.join(v.root, 'alice/memory/plain.md'), 'plain, edited\n')
    await writeFile(path.join(v.root, 'alice/wiki/new\nline.md'), 'newline, edited\n')
    await unlink(path.join(v.root, 'alice/memory/"quoted".md'))
    await rm(path.join(v.root, 'alice/wiki/sub'), { recursive: true })
    await writeFile(path.join(v.root, 'alice/wiki/sub'), 'now a file\n') // a folder became a file
    await unlink(path.join(v.root, 'bob/memory/b.md'))
    await mkdir(path.join(v.root, 'bob/memory/b.md'))
    await writeFile(path.join(v.root, 'bob/memory/b.md/inner.md'), 'a file became a folder\n')
    await chmod(path.join(v.root, 'alice/memory/name with spaces.md'), 0o755)
    await writeFile(path.join(v.root, 'alice/memory/new "one".md'), 'new\n')
    const b = await takeSnapshot(store, { target: 2, from: 1, runId: 'b', now: NOW })
    expect(b.parent).toBe(a.commit)
    // only the changed files were read (the chmod-ed one too: its ctime moved)
    expect(b.bytesHashed).toBe(
      ['plain, edited\n', 'newline, edited\n', 'now a file\n', 'a file became a folder\n', 'new\n', 'spaces\n'].reduce((n, s) => n + Buffer.byteLength(s), 0),
    )
    const back = await readBack(store, b.commit)
    expect(back['100644 alice/memory/plain.md']).toBe('plain, edited\n')
    expect(back['100644 alice/wiki/new\nline.md']).toBe('newline, edited\n')
    expect(back['100644 alice/wiki/sub']).toBe('now a file\n')
    expect(back['100644 bob/memory/b.md/inner.md']).toBe('a file became a folder\n')
    expect(back['100755 alice/memory/name with spaces.md']).toBe('spaces\n')
    expect(back['100644 alice/memory/new "one".md']).toBe('new\n')
    expect(Object.keys(back).some((k) => k.includes('"quoted"') || k.includes('sub/deep'))).toBe(false)
    expect(await freshTree(store)).toBe(b.tree)
    // the size added is the new bytes only, counted against the parent's tree
    expect(b.bytesAdded).toBe(
      ['plain, edited\n', 'newline, edited\n', 'now a file\n', 'a file became a folder\n', 'new\n'].reduce((n, s) => n + Buffer.byteLength(s), 0),
    )
    git(v.root, '--git-dir', store.location.gitDir, 'fsck', '--strict', '--no-dangling')
  })

  it('when the parent snapshot is not the tree of the stat cache then the size added is counted against the parent', async () => {
    v = await makeVault(null)
    await writeFiles(v.root, FILES)
    const store = await openStore({ agentsRoot: v.root, backend })
    await takeSnapshot(store, { target: 2, from: 1, runId: 'a', now: NOW })
    // a newer snapshot of other content becomes the parent (as an imported one would)
    const other = await store.writeTree([{ path: 'x.md', mode: '100644', oid: await store.writeBlob(Buffer.from('other\n')) }])
    const later = await store.writeCommit({ tree: other, parents: [], message: 'other', timestamp: Math.floor(NOW.getTime() / 1000) + 60 })
    await store.updateRef('refs/aas/snapshots/other', later, null)
    const b = await takeSnapshot(store, { target: 2, from: 1, runId: 'b', now: NOW })
    expect(b.parent).toBe(later)
    expect(b.bytesAdded).toBe(Object.values(FILES).reduce((n, s) => n + Buffer.byteLength(s), 0))
  })

  it.each([1, 2])(
    'when the stat cache was written as JSON (version %i) then a repeat still reads only what changed, and the cache is rewritten in version 3',
    async (version) => {
      v = await makeVault(null)
      await writeFiles(v.root, FILES)
      const store = await openStore({ agentsRoot: v.root, backend })
      await takeSnapshot(store, { target: 2, from: 1, runId: 'a', now: NOW })
      const bin = path.join(store.location.stateDir, STAT_CACHE_FILE)
      const json = path.join(store.location.stateDir, LEGACY_STAT_CACHE_FILE)
      const c = await loadStatCache(store.location.stateDir)
      expect(c.paths.length).toBe(Object.keys(FILES).length)
      const n = c.paths.length
      const col = (k: number) => Array.from(c.nums.subarray(k * n, (k + 1) * n))
      const modes = Buffer.from(c.modes).toString('latin1')
      const trusted = Buffer.from(c.trusted).toString('latin1')
      const oids = c.oids.toString('hex')
      const mode: Record<string, string> = { f: '100644', x: '100755', l: '120000' }
      const data =
        version === 2
          ? { version: 2, tree: c.tree, trees: [...c.trees], paths: c.paths, modes, sizes: col(0), mtimes: col(1), ctimes: col(2), inos: col(3), oids, trusted }
          : {
              version: 1,
              tree: c.tree,
              trees: [...c.trees],
              rows: c.paths.map((p, i) => [
                p,
                mode[modes[i] as string],
                col(0)[i],
                col(1)[i],
                col(2)[i],
                col(3)[i],
                oids.slice(i * 40, i * 40 + 40),
                Number(trusted[i]),
              ]),
            }
      await rm(bin)
      await writeFile(json, JSON.stringify(data))
      await writeFile(path.join(v.root, 'bob/memory/b.md'), 'bob, edited\n')
      const b = await takeSnapshot(store, { target: 2, from: 1, runId: 'b', now: NOW })
      expect(b.bytesHashed).toBe(Buffer.byteLength('bob, edited\n'))
      expect((await readBack(store, b.commit))['100644 bob/memory/b.md']).toBe('bob, edited\n')
      expect((await readdir(store.location.stateDir)).filter((f) => f.startsWith('stat-cache'))).toEqual([STAT_CACHE_FILE])
      expect(await freshTree(store)).toBe(b.tree)
    },
  )

  it('when a cold snapshot takes each file stat from its read then a repeat with nothing changed reads nothing and an executable stays executable', async () => {
    v = await makeVault(null)
    await writeFiles(v.root, FILES)
    await chmod(path.join(v.root, 'bob/memory/b.md'), 0o755)
    await symlink('../memory/plain.md', path.join(v.root, 'alice/wiki/link.md'))
    await lutimes(path.join(v.root, 'alice/wiki/link.md'), OLD, OLD)
    await utimes(path.join(v.root, 'bob/memory/b.md'), OLD, OLD)
    const store = await openStore({ agentsRoot: v.root, backend })
    const a = await takeSnapshot(store, { target: 2, from: 1, runId: 'a', now: NOW })
    expect(a.bytesHashed).toBe(Object.values(FILES).reduce((n, s) => n + Buffer.byteLength(s), 0) + Buffer.byteLength('../memory/plain.md'))
    expect(a.entries.find((e) => e.path === 'bob/memory/b.md')?.mode).toBe('100755')
    const c = await loadStatCache(store.location.stateDir)
    const n = c.paths.length
    const i = c.paths.indexOf('alice/memory/plain.md')
    const st = await lstat(path.join(v.root, 'alice/memory/plain.md'))
    expect([c.nums[i], c.nums[n + i], c.nums[2 * n + i], c.nums[3 * n + i]]).toEqual([st.size, st.mtimeMs, st.ctimeMs, st.ino])
    const b = await takeSnapshot(store, { target: 2, from: 1, runId: 'b', now: NOW })
    expect(b.bytesHashed).toBe(0)
    expect(b.tree).toBe(a.tree)
    expect(await freshTree(store)).toBe(a.tree)
  })

  it('when the stat cache file is damaged or cut short then every file is read again and the tree is the same', async () => {
    v = await makeVault(null)
    await writeFiles(v.root, FILES)
    const store = await openStore({ agentsRoot: v.root, backend })
    const a = await takeSnapshot(store, { target: 2, from: 1, runId: 'a', now: NOW })
    const bin = path.join(store.location.stateDir, STAT_CACHE_FILE)
    const all = Object.values(FILES).reduce((n, s) => n + Buffer.byteLength(s), 0)
    const good = await readFile(bin)
    const flipped = Buffer.from(good)
    const mid = Math.floor(flipped.length / 2)
    flipped.writeUInt8(flipped.readUInt8(mid) ^ 1, mid)
    for (const damaged of [flipped, good.subarray(0, good.length - 7), Buffer.from('not a cache')]) {
      await writeFile(bin, damaged)
      const b = await takeSnapshot(store, { target: 2, from: 1, runId: 'b', now: NOW })
      expect(b.bytesHashed).toBe(all)
      expect(b.tree).toBe(a.tree)
    }
    // and the cache written meanwhile is whole again: nothing is read
    expect((await takeSnapshot(store, { target: 2, from: 1, runId: 'c', now: NOW })).bytesHashed).toBe(0)
  })

  it('when files fill, straddle and exceed the batches blobs are piped in then every blob id is the bytes hashed and git finds the store sound', async () => {
    v = await makeVault(null)
    // Sizes around the pipe batches (a few hundred KiB to 1 MiB), so that files fit what
    // is left of a batch, go to a fresh one, or are read whole; plus empty and tiny files.
    const sizes = [0, 1, 100_000, 100_000, 100_000, 200_000, 262_000, 262_144, 262_145, 300_000, 524_289, 1_048_576, 2_000_000, 5]
    const want = new Map<string, string>()
    for (const [i, size] of sizes.entries()) {
      const bytes = Buffer.alloc(size, `note ${i}\n`)
      const p = `alice/memory/f${String(i).padStart(2, '0')}.md`
      await mkdir(path.dirname(path.join(v.root, p)), { recursive: true })
      await writeFile(path.join(v.root, p), bytes)
      await utimes(path.join(v.root, p), OLD, OLD)
      want.set(p, blobId(bytes))
    }
    const store = await openStore({ agentsRoot: v.root, backend })
    const snap = await takeSnapshot(store, { target: 2, from: 1, runId: 'b', now: NOW })
    const got = new Map((await store.listTree(snap.commit)).map((e) => [e.path, e.oid]))
    expect(got).toEqual(want)
    expect(snap.bytesHashed).toBe(sizes.reduce((a, b) => a + b, 0))
    git(v.root, '--git-dir', store.location.gitDir, 'fsck', '--strict', '--no-dangling')
  })

  it('when the vault is empty then the snapshot is the empty tree', async () => {
    v = await makeVault(null)
    const store = await openStore({ agentsRoot: v.root, backend })
    const snap = await takeSnapshot(store, { target: 2, from: 1, runId: 'e', now: NOW })
    expect(snap.tree).toBe('4b825dc642cb6eb9a060e54bf8d69288fbee4904')
    expect(snap.files).toBe(0)
  })
})

describe('snapshot commits agree across backends', () => {
  it('when both backends snapshot the same files at the same time then the commit ids are identical', async () => {
    const ids: string[] = []
    for (const backend of ['cli', 'js'] as const) {
      const v = await makeVault(null)
      try {
        await writeFiles(v.root, FILES)
        const store = await openStore({ agentsRoot: v.root, backend })
        const a = await takeSnapshot(store, { target: 2, from: 1, runId: 'same', now: NOW, engineVersion: '0.0.0' })
        await writeFile(path.join(v.root, 'alice/memory/plain.md'), 'edited\n')
        await utimes(path.join(v.root, 'alice/memory/plain.md'), OLD, new Date('2024-02-01T00:00:00Z'))
        const b = await takeSnapshot(store, { target: 2, from: 1, runId: 'same', now: NOW, engineVersion: '0.0.0' })
        ids.push(`${a.commit} ${b.commit}`)
      } finally {
        await v.cleanup()
      }
    }
    expect(ids[1]).toBe(ids[0])
  })
})

describe('fastImportPath', () => {
  it.each([
    ['a/b.md', 'a/b.md'],
    ['a/name with spaces.md', 'a/name with spaces.md'],
    ['a/ünï.md', 'a/ünï.md'],
    ['"lead', '"\\"lead"'],
    ['a\\b', '"a\\\\b"'],
    ['new\nline', '"new\\nline"'],
    ['tab\tx', '"tab\\tx"'],
    ['bell\u0007', '"bell\\007"'],
  ])('when the path is %j then fast-import reads %s', (p, q) => {
    expect(fastImportPath(p)).toBe(q)
  })
})

describe.each<BackendName>(['cli', 'js'])('pre-read files (%s)', (backend) => {
  let v: TempVault
  afterEach(async () => v?.cleanup())

  // What the caller read: the bytes it was given (which may differ from the disk, to
  // see which of the two the snapshot recorded) with the file's stat at that time.
  async function preReadOf(root: string, p: string, bytes: Buffer): Promise<PreReadFile> {
    const st = await lstat(path.join(root, p))
    return { bytes, oid: blobId(bytes), size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino }
  }

  it('when a pre-read file is unchanged and old then its bytes are used instead of a second read', async () => {
    v = await makeVault(null)
    await writeFiles(v.root, { 'alice/memory/a.md': 'on disk\n', 'alice/memory/b.md': 'other\n' })
    const store = await openStore({ agentsRoot: v.root, backend })
    // same length as the disk bytes, so only the bytes tell which were recorded
    const pre = new Map([['alice/memory/a.md', await preReadOf(v.root, 'alice/memory/a.md', Buffer.from('pre-read'))]])
    const snap = await takeSnapshot(store, { target: 2, from: 1, runId: 'p', now: NOW, preRead: pre })
    const back = await readBack(store, snap.commit)
    expect(back['100644 alice/memory/a.md']).toBe('pre-read')
    expect(back['100644 alice/memory/b.md']).toBe('other\n')
  })

  it('when a file changed after it was pre-read (another size) then it is read again', async () => {
    v = await makeVault(null)
    await writeFiles(v.root, { 'alice/memory/a.md': 'first\n' })
    const store = await openStore({ agentsRoot: v.root, backend })
    const pre = new Map([['alice/memory/a.md', await preReadOf(v.root, 'alice/memory/a.md', Buffer.from('first\n'))]])
    await writeFile(path.join(v.root, 'alice/memory/a.md'), 'second, longer\n')
    await utimes(path.join(v.root, 'alice/memory/a.md'), OLD, OLD)
    const snap = await takeSnapshot(store, { target: 2, from: 1, runId: 'p', now: NOW, preRead: pre })
    expect((await readBack(store, snap.commit))['100644 alice/memory/a.md']).toBe('second, longer\n')
  })

  it('when a file changed after it was pre-read (same size, another mtime) then it is read again', async () => {
    v = await makeVault(null)
    await writeFiles(v.root, { 'alice/memory/a.md': 'AAAA\n' })
    const store = await openStore({ agentsRoot: v.root, backend })
    const pre = await preReadOf(v.root, 'alice/memory/a.md', Buffer.from('AAAA\n'))
    await writeFile(path.join(v.root, 'alice/memory/a.md'), 'BBBB\n')
    await utimes(path.join(v.root, 'alice/memory/a.md'), OLD, new Date('2024-01-01T00:00:05Z'))
    // the inode and ctime the caller saw, so only size and mtime could tell (size is equal)
    const st = await lstat(path.join(v.root, 'alice/memory/a.md'))
    const snap = await takeSnapshot(store, {
      target: 2,
      from: 1,
      runId: 'p',
      now: NOW,
      preRead: new Map([['alice/memory/a.md', { ...pre, ctimeMs: st.ctimeMs, ino: st.ino }]]),
    })
    expect((await readBack(store, snap.commit))['100644 alice/memory/a.md']).toBe('BBBB\n')
  })

  it('when a pre-read file was modified just before the snapshot then it is read again (racy mtime)', async () => {
    v = await makeVault(null)
    await mkdir(path.join(v.root, 'alice/memory'), { recursive: true })
    await writeFile(path.join(v.root, 'alice/memory/a.md'), 'on disk\n') // mtime: now
    const store = await openStore({ agentsRoot: v.root, backend })
    const pre = new Map([['alice/memory/a.md', await preReadOf(v.root, 'alice/memory/a.md', Buffer.from('pre-read'))]])
    const snap = await takeSnapshot(store, { target: 2, from: 1, runId: 'p', now: NOW, preRead: pre })
    expect((await readBack(store, snap.commit))['100644 alice/memory/a.md']).toBe('on disk\n')
  })

  it('when a pre-read path is a symlink now then the link is recorded, not the bytes', async () => {
    v = await makeVault(null)
    await writeFiles(v.root, { 'alice/memory/target.md': 'target\n' })
    await symlink('target.md', path.join(v.root, 'alice/memory/a.md'))
    await lutimes(path.join(v.root, 'alice/memory/a.md'), OLD, OLD)
    const store = await openStore({ agentsRoot: v.root, backend })
    // the link's own stat and length: only its mode tells it is not a pre-read file
    const pre = new Map([['alice/memory/a.md', await preReadOf(v.root, 'alice/memory/a.md', Buffer.from('pre-read!'))]])
    const snap = await takeSnapshot(store, { target: 2, from: 1, runId: 'p', now: NOW, preRead: pre })
    expect((await readBack(store, snap.commit))['120000 alice/memory/a.md']).toBe('target.md')
    expect(await readFile(path.join(v.root, 'alice/memory/target.md'), 'utf8')).toBe('target\n')
  })
})

describe('packs written by the js backend', () => {
  let v: TempVault
  afterEach(async () => v?.cleanup())

  it('when a snapshot has more files than are written loose then they go into one pack git finds sound and the cli backend reads', async () => {
    v = await makeVault(null)
    const files: Record<string, string> = {}
    for (let i = 0; i < 300; i++) files[`agent${i % 3}/memory/note_${i}.md`] = `note ${i}\n${'x'.repeat(i)}\n`
    files['agent0/memory/dup_a.md'] = 'same\n'
    files['agent1/memory/dup_b.md'] = 'same\n'
    await writeFiles(v.root, files)
    const js = await openStore({ agentsRoot: v.root, backend: 'js' })
    const snap = await takeSnapshot(js, { target: 2, from: 1, runId: 'p', now: NOW })
    const packDir = path.join(js.location.gitDir, 'objects', 'pack')
    const names = await readdir(packDir)
    expect(names.filter((n) => n.endsWith('.pack'))).toHaveLength(1)
    expect(names.filter((n) => n.startsWith('tmp_'))).toEqual([])
    git(v.root, '--git-dir', js.location.gitDir, 'fsck', '--strict', '--no-dangling')
    const cli = await openStore({ agentsRoot: v.root, backend: 'cli' })
    const want: Record<string, string> = {}
    for (const [p, text] of Object.entries(files)) want[`100644 ${p}`] = text
    expect(await readBack(cli, snap.commit)).toEqual(want)
    expect(await readBack(js, snap.commit)).toEqual(want)
  })

  it('when a snapshot has more folders than trees written loose then its trees go into a pack, and a later snapshot writes only its new trees', async () => {
    v = await makeVault(null)
    const files: Record<string, string> = {}
    for (let i = 0; i < 120; i++) files[`agent${i}/memory/note.md`] = `note ${i}\n`
    await writeFiles(v.root, files)
    const js = await openStore({ agentsRoot: v.root, backend: 'js' })
    const first = await takeSnapshot(js, { target: 2, from: 1, runId: 'p', now: NOW })
    const packDir = path.join(js.location.gitDir, 'objects', 'pack')
    const packs = async (): Promise<string[]> => (await readdir(packDir)).filter((n) => n.endsWith('.pack')).sort()
    // one pack of blobs, one of trees; no tree is loose
    const afterFirst = await packs()
    expect(afterFirst).toHaveLength(2)
    const loose = git(v.root, '--git-dir', js.location.gitDir, 'count-objects', '-v')
    expect(loose).toMatch(/^count: 1$/m) // the commit
    git(v.root, '--git-dir', js.location.gitDir, 'fsck', '--strict', '--no-dangling')
    const want: Record<string, string> = {}
    for (const [p, text] of Object.entries(files)) want[`100644 ${p}`] = text
    const cli = await openStore({ agentsRoot: v.root, backend: 'cli' })
    expect(await readBack(cli, first.commit)).toEqual(want)

    // one file changed: its three trees (root, agent, memory) are written loose, no pack
    await writeFile(path.join(v.root, 'agent7/memory/note.md'), 'changed\n')
    want['100644 agent7/memory/note.md'] = 'changed\n'
    const second = await takeSnapshot(js, { target: 2, from: 1, runId: 'q', now: new Date(NOW.getTime() + 1000) })
    expect(await packs()).toEqual(afterFirst)
    git(v.root, '--git-dir', js.location.gitDir, 'fsck', '--strict', '--no-dangling')
    expect(await readBack(cli, second.commit)).toEqual(want)
    expect(await readBack(js, second.commit)).toEqual(want)
  })

  it('when a file changes while blobs are being packed then nothing is left behind', async () => {
    v = await makeVault(null)
    const js = await openStore({ agentsRoot: v.root, backend: 'js' })
    const big = path.join(v.root, 'big.bin')
    await writeFile(big, Buffer.alloc(1000, 1))
    async function* src(): AsyncGenerator<BlobInput> {
      for (let i = 0; i < 100; i++) yield Buffer.from(`blob ${i}\n`)
      yield { path: big, size: 999 } // not the size on disk: CONCURRENT_CHANGE
    }
    await expect(js.writeBlobs(src())).rejects.toMatchObject({ code: 'CONCURRENT_CHANGE' })
    const names = await readdir(path.join(js.location.gitDir, 'objects', 'pack')).catch(() => [])
    expect(names).toEqual([])
  })
})

describe('buildSortedTrees', () => {
  const oid = (i: number): string => createHash('sha1').update(String(i)).digest('hex')
  const sorted = (paths: string[]): TreeEntry[] =>
    paths
      .map((p, i) => ({ path: p, mode: (i % 3 === 0 ? '100755' : i % 3 === 1 ? '100644' : '120000') as TreeEntry['mode'], oid: oid(i) }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)))

  it('when paths go in and out of folders in byte order then every tree equals the one buildTrees makes', () => {
    const paths = [
      'a',
      'a!x',
      'a.md',
      'a0/x',
      'b/c/d/e.md',
      'b/c/d.md',
      'b/c.md',
      'b/c/f',
      'b-c/g',
      'b/cc/h',
      'z',
      'y/x/w/v/u.md',
      'y/x/w.md',
      'y/x0.md',
      'ü/ö.md',
      'name with spaces/f.md',
      'tab\there/n\nl.md',
    ]
    for (let k = 0; k < 40; k++) paths.push(`d${k % 7}/sub${k % 3}/f${k}.md`)
    const entries = sorted(paths)
    const got = buildSortedTrees(entries)
    const want = buildTrees(entries)
    expect(got?.root).toBe(want.root)
    expect(got?.trees.map((t) => t.oid).sort()).toEqual(want.trees.map((t) => t.oid).sort())
    for (const t of got?.trees ?? []) expect(want.trees.find((w) => w.oid === t.oid)?.content.equals(t.content)).toBe(true)
  })

  it('when the input is not sorted, has a file and a folder of one name, or unusual paths then it leaves them to buildTrees', () => {
    expect(buildSortedTrees(sorted(['b', 'a']).reverse())).toBeNull()
    expect(buildSortedTrees(sorted(['a', 'a/b']))).toBeNull()
    expect(buildSortedTrees(sorted(['a//b']))).toBeNull()
    expect(buildSortedTrees(sorted(['emoji/\u{1F600}.md']))).toBeNull()
    expect(buildSortedTrees([])?.root).toBe(buildTrees([]).root)
  })
})
