import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAasError } from '../../src/errors.js'
import { openStore } from '../../src/git/open-store.js'
import { BIG_BLOB_BYTES, type BackendName, type Store } from '../../src/git/store.js'
import { prefetchingBlobSource } from '../../src/transaction/blob-prefetch.js'

// prefetchingBlobSource: the new blobs of a write phase, read from a real store a batch
// at a time, never more than a batch's bounds at once.

// The store's reads, counted: each readBlobs batch with the bytes it returned, and each
// blob read on its own.
function counting(store: Store): { store: Store; batches: Array<{ blobs: number; bytes: number }>; single: string[] } {
  const batches: Array<{ blobs: number; bytes: number }> = []
  const single: string[] = []
  const counted = Object.create(store) as Store
  counted.readBlobs = async function* (oids: string[]) {
    const batch = { blobs: 0, bytes: 0 }
    batches.push(batch)
    for await (const b of store.readBlobs(oids)) {
      batch.blobs++
      batch.bytes += b.content.length
      yield b
    }
  }
  counted.readBlob = (oid: string) => {
    single.push(oid)
    return store.readBlob(oid)
  }
  return { store: counted, batches, single }
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

  it('when asked in order then every blob is exact, batches keep to both bounds and a big blob is left to streaming', async () => {
    const c = counting(store)
    const source = prefetchingBlobSource(c.store, order, { blobs: 16, bytes: 700 * 1024 })
    for (const oid of order) {
      const got = await source(oid)
      if (oid === bigOid) expect(got).toEqual({ stream: true, oid, size: BIG_BLOB_BYTES + 1 })
      else expect(Buffer.isBuffer(got) && got.equals(bytesOf.get(oid) as Buffer)).toBe(true)
    }
    // 60 notes (positions 40-59 repeat the bytes of 0-19, read again in their own batch),
    // then the 300 KiB attachments: at most 16 blobs and 700 KiB a batch.
    expect(c.batches.map((b) => b.blobs)).toEqual([16, 16, 16, 14, 2, 2])
    for (const b of c.batches) expect(b.bytes).toBeLessThanOrEqual(700 * 1024)
    expect(c.batches.at(-1)?.bytes).toBe(600 * 1024)
    expect(c.single).toEqual([])
  })

  it('when one blob is larger than the byte bound then it is a batch of its own', async () => {
    const c = counting(store)
    const source = prefetchingBlobSource(c.store, order.slice(60, 63), { bytes: 100 * 1024 })
    for (const oid of order.slice(60, 63)) expect(((await source(oid)) as Buffer).equals(bytesOf.get(oid) as Buffer)).toBe(true)
    expect(c.batches.map((b) => b.blobs)).toEqual([1, 1, 1])
  })

  it('when a blob is asked for again after its batch is gone then it is read on its own, and the batches go on', async () => {
    const c = counting(store)
    const notes = order.slice(0, 40)
    const source = prefetchingBlobSource(c.store, notes, { blobs: 10 })
    for (const oid of notes.slice(0, 25)) await source(oid)
    expect((await source(notes[3] as string)) as Buffer).toEqual(bytesOf.get(notes[3] as string))
    expect(c.single).toEqual([notes[3]])
    for (const oid of notes.slice(25)) expect((await source(oid)) as Buffer).toEqual(bytesOf.get(oid))
    expect(c.batches.map((b) => b.blobs)).toEqual([10, 10, 10, 10])
  })

  it('when a blob of the order is missing from the store then the request whose batch holds it fails as a damaged store', async () => {
    const absent = 'f'.repeat(40)
    const source = prefetchingBlobSource(store, [order[0] as string, absent])
    const err = await source(order[0] as string).catch((e: unknown) => e)
    expect(isAasError(err) && err.code).toBe('STORE_CORRUPT')
    expect(isAasError(err) && err.message).toContain(absent)
  })
})
