import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { isAasError } from '../../src/errors.js'
import { openStore } from '../../src/git/open-store.js'
import { BIG_BLOB_BYTES, type BackendName, type Store } from '../../src/git/store.js'
import { prefetchingBlobSource } from '../../src/transaction/blob-prefetch.js'

// prefetchingBlobSource: the new blobs of a write phase, read from a real store by one
// readBlobs call while they are asked for, never more than the bounds ahead.

// The store's reads, counted: each readBlobs call with the blobs it delivered and whether
// it was closed, and each blob read on its own. `failAfter` makes a readBlobs call fail
// after that many blobs.
interface Counted {
  store: Store
  reads: Array<{ oids: string[]; delivered: number; bytes: number; ended: boolean }>
  single: string[]
}
function counting(store: Store, { failAfter }: { failAfter?: number } = {}): Counted {
  const c: Counted = { store: Object.create(store) as Store, reads: [], single: [] }
  c.store.readBlobs = async function* (oids: string[]) {
    const read = { oids, delivered: 0, bytes: 0, ended: false }
    c.reads.push(read)
    try {
      for await (const b of store.readBlobs(oids)) {
        if (read.delivered === failAfter) throw new Error('the read broke off')
        read.delivered++
        read.bytes += b.content.length
        yield b
      }
    } finally {
      read.ended = true
    }
  }
  c.store.readBlob = (oid: string) => {
    c.single.push(oid)
    return store.readBlob(oid)
  }
  return c
}

describe.each<BackendName>(['cli', 'js'])('prefetchingBlobSource (%s)', (backend) => {
  let dir: string
  let store: Store
  const bytesOf = new Map<string, Buffer>() // by oid
  let order: string[] // the blob ids of the files, in path order, the same bytes at several paths
  let bigOid: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aas-prefetch-'))
    const root = path.join(dir, 'vault')
    await mkdir(path.join(root, 'alice/memory'), { recursive: true })
    await mkdir(path.join(root, 'alice/raw'), { recursive: true })
    const files: Array<[string, Buffer]> = []
    for (let i = 0; i < 60; i++) files.push([`alice/memory/n${String(i).padStart(2, '0')}.md`, Buffer.from(`---\nschema_version: 1\n---\nnote ${i % 40}\n`)])
    for (let i = 0; i < 6; i++) files.push([`alice/raw/att${i}.bin`, randomBytes(300 * 1024)])
    files.push(['alice/raw/huge.bin', randomBytes(BIG_BLOB_BYTES + 1)])
    for (const [rel, bytes] of files) await writeFile(path.join(root, rel), bytes)
    store = await openStore({ agentsRoot: root, backend })
    const { tree } = await store.writeVaultTree()
    const entries = await store.listTree(tree)
    const oidAt = new Map(entries.map((e) => [e.path, e.oid]))
    for (const [rel, bytes] of files) bytesOf.set(oidAt.get(rel) as string, bytes)
    bigOid = oidAt.get('alice/raw/huge.bin') as string
    order = files.map(([rel]) => oidAt.get(rel) as string)
  })
  afterAll(async () => rm(dir, { recursive: true, force: true }))

  const exact = (oid: string, got: unknown): boolean => Buffer.isBuffer(got) && got.equals(bytesOf.get(oid) as Buffer)

  it('when asked in order then every blob is exact, each small one read once by one read, never more than the bounds ahead, and a big blob is left to streaming', async () => {
    const c = counting(store)
    const source = prefetchingBlobSource(c.store, order, { blobs: 16, bytes: 700 * 1024 })
    let handedOut = 0
    let handedBytes = 0
    for (const oid of order) {
      const got = await source(oid)
      if (oid === bigOid) {
        expect(got).toEqual({ stream: true, oid, size: BIG_BLOB_BYTES + 1 })
        continue
      }
      expect(exact(oid, got)).toBe(true)
      const read = c.reads[0] as Counted['reads'][number]
      // read and not yet handed out: within the bounds, plus the blob that crossed one
      expect(read.delivered - handedOut).toBeLessThanOrEqual(16 + 1)
      expect(read.bytes - handedBytes).toBeLessThanOrEqual(700 * 1024 + 300 * 1024)
      if (read.oids.indexOf(oid) >= handedOut) {
        handedOut++
        handedBytes += (got as Buffer).length
      }
    }
    // 60 notes holding 40 distinct texts, then the six attachments: the huge file is not
    // read; the texts of positions 40-59 come again 40 positions on, beyond 16: each is read
    // on its own then
    expect(c.reads).toHaveLength(1)
    expect(c.reads[0]?.oids).toEqual([...new Set(order)].filter((o) => o !== bigOid))
    expect(c.reads[0]?.delivered).toBe(46)
    expect(c.single).toEqual(order.slice(40, 60))
    await source.close()
  })

  it('when the source is made then the read starts before the first request', async () => {
    const c = counting(store)
    const source = prefetchingBlobSource(c.store, order.slice(0, 10))
    await vi.waitFor(() => expect(c.reads[0]?.delivered).toBe(10))
    expect(c.single).toEqual([])
    for (const oid of order.slice(0, 10)) expect(exact(oid, await source(oid))).toBe(true)
    expect(c.reads).toHaveLength(1)
    await source.close()
  })

  it('when the same bytes come again within the bound then they are kept for it, and when further on they are read on their own', async () => {
    // positions 40-59 repeat the texts of 0-19: 40 positions later
    const near = counting(store)
    const keeping = prefetchingBlobSource(near.store, order.slice(0, 60), { blobs: 50 })
    for (const oid of order.slice(0, 60)) expect(exact(oid, await keeping(oid))).toBe(true)
    expect(near.single).toEqual([])
    expect(near.reads[0]?.delivered).toBe(40)
    await keeping.close()

    const far = counting(store)
    const dropping = prefetchingBlobSource(far.store, order.slice(0, 60), { blobs: 10 })
    for (const oid of order.slice(0, 60)) expect(exact(oid, await dropping(oid))).toBe(true)
    expect(far.single).toEqual(order.slice(40, 60))
    expect(far.reads).toHaveLength(1)
    await dropping.close()
  })

  it('when a blob is asked for out of order then it is exact, and the read goes on for the others', async () => {
    const c = counting(store)
    const notes = order.slice(0, 40)
    const source = prefetchingBlobSource(c.store, notes, { blobs: 4 })
    await vi.waitFor(() => expect(c.reads[0]?.delivered).toBeGreaterThanOrEqual(4))
    expect(exact(notes[30] as string, await source(notes[30] as string))).toBe(true) // far ahead of the read
    for (const oid of notes) expect(exact(oid, await source(oid))).toBe(true)
    expect(c.reads).toHaveLength(1)
    await source.close()
  })

  it('when the source is closed part-way then its read is stopped and nothing more is read', async () => {
    const c = counting(store)
    const source = prefetchingBlobSource(c.store, order.slice(0, 40), { blobs: 5 })
    for (const oid of order.slice(0, 3)) await source(oid)
    await source.close()
    const read = c.reads[0] as Counted['reads'][number]
    expect(read.ended).toBe(true)
    expect(read.delivered).toBeLessThan(40)
    // closing again, or one never asked, costs nothing
    await source.close()
    await prefetchingBlobSource(c.store, order.slice(0, 5)).close()
  })

  it('when the read breaks off then what it delivered is handed out and every request after fails with its error', async () => {
    const c = counting(store, { failAfter: 5 })
    const notes = order.slice(0, 12)
    const source = prefetchingBlobSource(c.store, notes)
    for (const oid of notes.slice(0, 5)) expect(exact(oid, await source(oid))).toBe(true)
    for (const oid of notes.slice(5)) await expect(source(oid)).rejects.toThrow('the read broke off')
    expect(c.single).toEqual([])
    await source.close()
  })

  it('when a blob of the order is missing from the store then the first request fails as a damaged store, naming it', async () => {
    const absent = 'f'.repeat(40)
    const source = prefetchingBlobSource(store, [order[0] as string, absent])
    const err = await source(order[0] as string).catch((e: unknown) => e)
    expect(isAasError(err) && err.code).toBe('STORE_CORRUPT')
    expect(isAasError(err) && err.message).toContain(absent)
  })
})
