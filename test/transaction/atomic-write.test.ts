import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  findTempFiles,
  fsyncAll,
  isTempFileName,
  placeNewSync,
  prepareTempSync,
  removeFile,
  removeTempFiles,
  replaceWithSymlink,
  tempNameFor,
  writeFileAtomic,
} from '../../src/transaction/atomic-write.js'
import { AasError } from '../../src/errors.js'

async function caught(p: Promise<unknown>): Promise<AasError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  )
  if (!(err instanceof AasError)) throw new Error(`expected an AasError, got ${String(err)}`)
  return err
}

describe('atomic writes', () => {
  let base: string
  let root: string
  let outside: string
  beforeEach(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'aas-atomic-'))
    root = path.join(base, 'vault')
    outside = path.join(base, 'outside')
    await mkdir(path.join(root, 'alice', 'memory'), { recursive: true })
    await mkdir(outside)
  })
  afterEach(async () => {
    await rm(base, { recursive: true, force: true })
  })

  it('when a file or a prepared temp is placed with permission bits then it gets those bits instead of its mode, and no temp remains', async () => {
    const dir = path.join(root, 'alice', 'memory')
    const placed = placeNewSync(
      path.join(dir, 'shared.md'),
      { kind: 'file', content: Buffer.from('shared\n'), mode: '100644', perm: 0o664 },
      { within: root, runId: 'r1' },
    )
    expect(placed.placed).toBe(true)
    const t = prepareTempSync(path.join(dir, 'big.md'), { within: root, runId: 'r1' })
    await writeFile(t.temp, 'big\n', { mode: 0o644 })
    expect(placeNewSync(path.join(dir, 'big.md'), { kind: 'prepared', temp: t.temp, perm: 0o600 }, { within: root, runId: 'r1' }).placed).toBe(true)
    const plain = placeNewSync(path.join(dir, 'plain.md'), { kind: 'file', content: Buffer.from('plain\n'), mode: '100644' }, { within: root, runId: 'r1' })
    expect(plain.placed).toBe(true)
    const bits = async (name: string): Promise<number> => (await stat(path.join(dir, name))).mode & 0o777
    expect([await bits('shared.md'), await bits('big.md'), await bits('plain.md')]).toEqual([0o664, 0o600, 0o644])
    expect(await readFile(path.join(dir, 'big.md'), 'utf8')).toBe('big\n')
    expect((await readdir(dir)).sort()).toEqual(['big.md', 'plain.md', 'shared.md'])
  })

  it('when writing a file then the bytes land with the requested mode, whatever the umask, and no temp remains', async () => {
    const file = path.join(root, 'alice', 'memory', 'note.md')
    await writeFile(file, 'old\n', { mode: 0o600 })
    const content = Buffer.from('---\r\nschema_version: 2\r\n---\r\n\u00e9\n')
    await writeFileAtomic(file, content, { mode: 0o644, within: root, runId: 'run1' })
    expect(await readFile(file)).toEqual(content)
    expect((await stat(file)).mode & 0o777).toBe(0o644)
    await writeFileAtomic(file, Buffer.from('x'), { mode: '100755', within: root })
    expect((await stat(file)).mode & 0o777).toBe(0o755)
    // Not subject to the umask (022 strips group write from an open(2) mode).
    await writeFileAtomic(file, Buffer.from('y'), { mode: 0o664, within: root })
    expect((await stat(file)).mode & 0o777).toBe(0o664)
    expect(await readdir(path.join(root, 'alice', 'memory'))).toEqual(['note.md'])
  })

  it('when parent directories are missing then they are created and reported', async () => {
    const file = path.join(root, 'bob', 'wiki', 'deep', 'page.md')
    const result = await writeFileAtomic(file, Buffer.from('p\n'), { within: root })
    expect(await readFile(file, 'utf8')).toBe('p\n')
    expect(result.createdDirs).toEqual([path.join(root, 'bob'), path.join(root, 'bob', 'wiki'), path.join(root, 'bob', 'wiki', 'deep')])
  })

  it('when a parent directory is a symlink then refuses with PATH_UNSAFE and writes nothing through it', async () => {
    await symlink(outside, path.join(root, 'alice', 'wiki'))
    const err = await caught(writeFileAtomic(path.join(root, 'alice', 'wiki', 'x.md'), Buffer.from('x'), { within: root }))
    expect(err.code).toBe('PATH_UNSAFE')
    expect(err.data.symlink).toBe(path.join(root, 'alice', 'wiki'))
    expect(await readdir(outside)).toEqual([])
    const err2 = await caught(replaceWithSymlink(path.join(root, 'alice', 'wiki', 'l'), 'target', { within: root }))
    expect(err2.code).toBe('PATH_UNSAFE')
    await writeFile(path.join(outside, 'keep.md'), 'keep')
    const err3 = await caught(removeFile(path.join(root, 'alice', 'wiki', 'keep.md'), { within: root }))
    expect(err3.code).toBe('PATH_UNSAFE')
    expect(await readFile(path.join(outside, 'keep.md'), 'utf8')).toBe('keep')
  })

  it('when no boundary is given then a symlinked ancestor anywhere is refused', async () => {
    await symlink(root, path.join(base, 'link-to-vault'))
    const err = await caught(writeFileAtomic(path.join(base, 'link-to-vault', 'a.md'), Buffer.from('x')))
    expect(err.code).toBe('PATH_UNSAFE')
    expect(await readdir(root)).toEqual(['alice'])
  })

  it('when the path leaves the boundary through .. then refuses with PATH_UNSAFE', async () => {
    const err = await caught(writeFileAtomic(path.join(root, '..', 'outside', 'x.md'), Buffer.from('x'), { within: root }))
    expect(err.code).toBe('PATH_UNSAFE')
    expect(await readdir(outside)).toEqual([])
  })

  it('when the target itself is a symlink then it is replaced by a file, and the link target is untouched', async () => {
    await writeFile(path.join(outside, 'secret.md'), 'secret\n')
    const link = path.join(root, 'alice', 'memory', 'note.md')
    await symlink(path.join(outside, 'secret.md'), link)
    await writeFileAtomic(link, Buffer.from('mine\n'), { within: root })
    expect((await lstat(link)).isFile()).toBe(true)
    expect(await readFile(link, 'utf8')).toBe('mine\n')
    expect(await readFile(path.join(outside, 'secret.md'), 'utf8')).toBe('secret\n')
  })

  it('when replacing with a symlink then the link holds the exact target bytes and is not resolved', async () => {
    const file = path.join(root, 'alice', 'memory', 'l.md')
    await writeFile(file, 'was a file\n')
    await replaceWithSymlink(file, Buffer.from('../../nowhere/\u00fc.md'), { within: root, runId: 'r' })
    expect((await lstat(file)).isSymbolicLink()).toBe(true)
    expect(await readlink(file)).toBe('../../nowhere/\u00fc.md')
    await replaceWithSymlink(file, 'other', { within: root })
    expect(await readlink(file)).toBe('other')
    expect((await readdir(path.join(root, 'alice', 'memory'))).sort()).toEqual(['l.md'])
  })

  it('when removing then a missing file is not an error and emptied dirs are pruned up to the boundary', async () => {
    const file = path.join(root, 'alice', 'memory', 'only.md')
    await writeFile(file, 'x')
    expect(await removeFile(file, { within: root, pruneEmptyDirs: true })).toEqual({
      removed: true,
      prunedDirs: [path.join(root, 'alice', 'memory'), path.join(root, 'alice')],
    })
    expect(await readdir(root)).toEqual([])
    expect(await removeFile(file, { within: root })).toEqual({ removed: false, prunedDirs: [] })
  })

  it('when removing a symlink then the link goes and its target stays', async () => {
    await writeFile(path.join(outside, 't.md'), 't')
    const link = path.join(root, 'alice', 'memory', 'l.md')
    await symlink(path.join(outside, 't.md'), link)
    expect((await removeFile(link, { within: root })).removed).toBe(true)
    expect(await readFile(path.join(outside, 't.md'), 'utf8')).toBe('t')
  })

  it('when a directory stands where a file is expected then removeFile refuses with IO_FAILED', async () => {
    const err = await caught(removeFile(path.join(root, 'alice', 'memory'), { within: root }))
    expect(err.code).toBe('IO_FAILED')
    expect((await stat(path.join(root, 'alice', 'memory'))).isDirectory()).toBe(true)
  })

  it('when a temp file of the same run is left over then the next write replaces it', async () => {
    const file = path.join(root, 'alice', 'memory', 'n.md')
    await writeFile(path.join(root, 'alice', 'memory', tempNameFor('n.md', 'run7')), 'stale temp')
    await writeFileAtomic(file, Buffer.from('new'), { within: root, runId: 'run7' })
    expect(await readdir(path.join(root, 'alice', 'memory'))).toEqual(['n.md'])
  })

  it('when temp files are left by a crash then findTempFiles lists them and removeTempFiles removes only them', async () => {
    const mem = path.join(root, 'alice', 'memory')
    await writeFile(path.join(mem, 'keep.md'), 'k')
    await writeFile(path.join(mem, '.keep.md.aas-tmp-run1'), 't')
    await symlink('x', path.join(mem, '.l.md.aas-tmp-run1'))
    await writeFile(path.join(mem, 'aas-tmp-lookalike.md'), 'k')
    await mkdir(path.join(root, '.git'))
    await writeFile(path.join(root, '.git', '.x.aas-tmp-1'), 'not ours to clean')
    await symlink(outside, path.join(root, 'linked'))
    await writeFile(path.join(outside, '.y.aas-tmp-1'), 'outside')
    expect(await findTempFiles(root)).toEqual([path.join(mem, '.keep.md.aas-tmp-run1'), path.join(mem, '.l.md.aas-tmp-run1')])
    expect(await removeTempFiles(root)).toHaveLength(2)
    expect((await readdir(mem)).sort()).toEqual(['aas-tmp-lookalike.md', 'keep.md'])
    expect(await readdir(outside)).toEqual(['.y.aas-tmp-1'])
    expect(await findTempFiles(root)).toEqual([])
  })

  it('when a file name is very long then its temp name still fits in 255 bytes and is recognised', () => {
    const name = '\u00e9'.repeat(120) + '.md'
    const temp = tempNameFor(name, 'run1')
    expect(Buffer.byteLength(temp)).toBeLessThanOrEqual(255)
    expect(isTempFileName(temp)).toBe(true)
    expect(isTempFileName(tempNameFor('a.md', 'weird id/with spaces'))).toBe(true)
    expect(isTempFileName('note.md')).toBe(false)
  })

  it('when syncing a batch then files, symlinks and directories are accepted', async () => {
    const a = path.join(root, 'alice', 'memory', 'a.md')
    const l = path.join(root, 'alice', 'memory', 'l')
    await writeFileAtomic(a, Buffer.from('a'), { within: root, fsync: false })
    await replaceWithSymlink(l, 'a.md', { within: root })
    await fsyncAll({ files: [a, l, a], dirs: [path.join(root, 'alice', 'memory'), root] })
    const err = await caught(fsyncAll({ files: [path.join(root, 'missing.md')] }))
    expect(err.code).toBe('IO_FAILED')
  })

  it('when a directory of the batch was removed since (pruned) then the sync skips it, per path and per file system', async () => {
    const gone = path.join(root, 'alice', 'gone')
    const a = path.join(root, 'alice', 'memory', 'a.md')
    await writeFileAtomic(a, Buffer.from('a'), { within: root, fsync: false })
    await fsyncAll({ files: [a], dirs: [gone, path.join(root, 'alice')] })
    await fsyncAll({ files: [a], dirs: [gone, path.join(root, 'alice')] }, { syncfsAbove: 0 })
  })

  // syncfs never opens the files, so a path that is gone tells the two ways apart: per
  // path, its fsync fails.
  it('when the machine holds much more unwritten data than the batch is worth then the paths are fsynced one by one, else one syncfs', async () => {
    const a = path.join(root, 'alice', 'memory', 'a.md')
    await writeFileAtomic(a, Buffer.from('a'), { within: root, fsync: false })
    const files = [a, path.join(root, 'alice', 'memory', 'missing.md')]
    await fsyncAll({ files }, { syncfsAbove: 0, dirtyKb: () => 0 })
    await fsyncAll({ files }, { syncfsAbove: 0, dirtyKb: () => 359 }) // two paths: under 2 x 180 kB
    const err = await caught(fsyncAll({ files }, { syncfsAbove: 0, dirtyKb: () => 360 }))
    expect(err.code).toBe('IO_FAILED')
    expect(err.message).toContain('missing.md')
  })
})
