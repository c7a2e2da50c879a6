import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeSync } from 'node:fs'
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { hashBlob } from '../../src/transaction/blob-hash.js'
import { BIG_BLOB_BYTES, writeBlobToTemp } from '../../src/transaction/blob-stream.js'
import { openStore } from '../../src/git/open-store.js'
import type { BackendName, ReadBlobToFileOptions, Store } from '../../src/git/store.js'

// writeBlobToTemp: the helper the transaction's write phase calls for a big blob.

const BIG = BIG_BLOB_BYTES + 4321

describe.each<BackendName>(['cli', 'js'])('writeBlobToTemp (%s)', (backend) => {
  let dir: string
  let store: Store
  let big: Buffer
  let bigOid: string
  let smallOid: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aas-blobstream-'))
    const root = path.join(dir, 'vault')
    big = randomBytes(BIG)
    await mkdir(path.join(root, 'alice/raw'), { recursive: true })
    await writeFile(path.join(root, 'alice/raw/big.bin'), big)
    await writeFile(path.join(root, 'alice/small.md'), 'small\n')
    store = await openStore({ agentsRoot: root, backend })
    const { tree } = await store.writeVaultTree()
    const entries = await store.listTree(tree)
    bigOid = entries.find((e) => e.path === 'alice/raw/big.bin')!.oid
    smallOid = entries.find((e) => e.path === 'alice/small.md')!.oid
  })
  afterAll(async () => rm(dir, { recursive: true, force: true }))
  afterEach(async () => {
    for (const name of await readdir(dir)) if (name !== 'vault') await rm(path.join(dir, name), { recursive: true, force: true })
  })

  it('when a big blob is written to a temp file then the bytes, the count and the mode bits are exact', async () => {
    expect(BIG_BLOB_BYTES).toBe(8 * 1024 * 1024)
    expect(bigOid).toBe(hashBlob(big))
    const temp = path.join(dir, '.big.bin.aas-tmp-run1')
    const old = process.umask(0o077) // the mode is exact whatever the umask
    try {
      expect(await writeBlobToTemp(store, bigOid, temp, '100755')).toBe(BIG)
    } finally {
      process.umask(old)
    }
    expect((await readFile(temp)).equals(big)).toBe(true)
    expect((await stat(temp)).mode & 0o7777).toBe(0o755)
    const small = path.join(dir, '.small.md.aas-tmp-run1')
    expect(await writeBlobToTemp(store, smallOid, small, 0o640, { fsync: true, expectedSize: 6 })).toBe(6)
    expect(await readFile(small, 'utf8')).toBe('small\n')
    expect((await stat(small)).mode & 0o7777).toBe(0o640)
  })

  it('when something is already at the temp path then it refuses with IO_FAILED and leaves it alone', async () => {
    const temp = path.join(dir, 'taken')
    await writeFile(temp, 'someone else')
    await expect(writeBlobToTemp(store, bigOid, temp, '100644')).rejects.toMatchObject({
      code: 'IO_FAILED',
      message: expect.stringContaining(temp),
      data: { errno: 'EEXIST' },
    })
    expect(await readFile(temp, 'utf8')).toBe('someone else')
    // a planted symlink is not followed, and its target is not created
    const link = path.join(dir, 'planted')
    await symlink(path.join(dir, 'elsewhere'), link)
    await expect(writeBlobToTemp(store, bigOid, link, '100644')).rejects.toMatchObject({ code: 'IO_FAILED' })
    expect(await readlink(link)).toBe(path.join(dir, 'elsewhere'))
    await expect(lstat(path.join(dir, 'elsewhere'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('when the blob is missing or its size is not the one expected then it fails and no temp file is left', async () => {
    const temp = path.join(dir, 'temp')
    await expect(writeBlobToTemp(store, 'e'.repeat(40), temp, '100644')).rejects.toMatchObject({ code: 'STORE_CORRUPT' })
    await expect(lstat(temp)).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(writeBlobToTemp(store, bigOid, temp, '100644', { expectedSize: BIG - 1 })).rejects.toMatchObject({
      code: 'STORE_CORRUPT',
      data: { oid: bigOid, bytes: BIG },
    })
    await expect(lstat(temp)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})

describe('writeBlobToTemp against a store that returns the wrong bytes', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aas-blobstream-'))
  })
  afterAll(async () => rm(dir, { recursive: true, force: true }))

  const good = Buffer.from('the right bytes\n')
  const oid = hashBlob(good)
  // A store whose readBlobToFile announces `size` and writes `bytes` to the descriptor.
  const lying = (size: number, bytes: Buffer): Store =>
    ({
      location: { gitDir: '/nowhere/store.git' },
      async readBlobToFile(_oid: string, dest: number | string, { onSize, onData }: ReadBlobToFileOptions = {}) {
        onSize?.(size)
        onData?.(bytes)
        writeSync(dest as number, bytes)
        return bytes.length
      },
    }) as unknown as Store

  it.each([
    ['other bytes of the same length', good.length, Buffer.from('the wrong bytes\n')],
    ['fewer bytes than announced', good.length, good.subarray(0, 5)],
    ['more bytes than announced', 5, good],
  ])('when the store delivers %s then STORE_CORRUPT names the blob and the temp file is removed', async (_name, size, bytes) => {
    const temp = path.join(dir, 'temp')
    await expect(writeBlobToTemp(lying(size, bytes), oid, temp, '100644')).rejects.toMatchObject({
      code: 'STORE_CORRUPT',
      message: expect.stringContaining(oid),
    })
    await expect(lstat(temp)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('when the store delivers the right bytes then they are kept', async () => {
    const temp = path.join(dir, 'ok')
    expect(await writeBlobToTemp(lying(good.length, good), oid, temp, '100644')).toBe(good.length)
    expect((await readFile(temp)).equals(good)).toBe(true)
  })
})

describe('writeBlobToTemp on a full file system', () => {
  let mnt: string
  afterAll(async () => {
    spawnSync('umount', [mnt])
    await rm(mnt, { recursive: true, force: true })
  })

  it('when the disk fills up mid-blob then IO_FAILED names the temp file (ENOSPC) and no temp file is left', async () => {
    mnt = await mkdtemp(path.join(tmpdir(), 'aas-blobstream-full-'))
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt])
    expect(m.status, `this test needs a tmpfs mount (root): ${m.stderr}`).toBe(0)
    const dir = await mkdtemp(path.join(tmpdir(), 'aas-blobstream-'))
    try {
      const root = path.join(dir, 'vault')
      await mkdir(path.join(root, 'raw'), { recursive: true })
      await writeFile(path.join(root, 'raw/big.bin'), randomBytes(BIG))
      const store = await openStore({ agentsRoot: root, backend: 'js' })
      const { tree } = await store.writeVaultTree()
      const oid = (await store.listTree(tree))[0]!.oid
      const temp = path.join(mnt, '.big.bin.aas-tmp-run')
      await expect(writeBlobToTemp(store, oid, temp, '100644')).rejects.toMatchObject({
        code: 'IO_FAILED',
        message: expect.stringMatching(new RegExp(`${temp}.*ENOSPC`)),
      })
      expect(await readdir(mnt)).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
