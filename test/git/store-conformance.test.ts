import { chmod, lstat, mkdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { EMPTY_TREE } from '../../src/git/git-objects.js'
import { openStore } from '../../src/git/open-store.js'
import type { BackendName, Store } from '../../src/git/store.js'
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
      await rm(path.join(cli.location.stateDir, 'stat-cache.json'), { force: true })
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
