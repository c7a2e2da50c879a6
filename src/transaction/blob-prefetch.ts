import { AasError } from '../errors.js'
import { BIG_BLOB_BYTES, type Store } from '../git/store.js'
import type { BlobContent } from './claim-write.js'

// Where a write phase gets each new blob's bytes.
export type BlobSource = (oid: string) => Promise<BlobContent>

// A write phase asks for its new blobs one at a time, in journal order. They are read
// from the store a batch at a time (one `cat-file --batch` per batch rather than one
// git call per file), and one batch is held at a time: at most PREFETCH_BLOBS blobs
// and PREFETCH_BYTES bytes (a blob larger than that is a batch of its own). The byte
// bound matters to a rollback that puts back thousands of big attachments: a count
// alone would hold all of them at once. Blobs above BIG_BLOB_BYTES are left out of
// the batches and streamed by the write. A blob asked for again after its batch is
// gone (the same bytes at two paths far apart) is read on its own.
export const PREFETCH_BLOBS = 2000
export const PREFETCH_BYTES = 64 * 1024 * 1024

interface Batch {
  to: number // the position in the order after the batch's last blob
  blobs: Map<string, Buffer>
}

export function prefetchingBlobSource(
  store: Store,
  oidsInOrder: readonly string[],
  { blobs: maxBlobs = PREFETCH_BLOBS, bytes: maxBytes = PREFETCH_BYTES }: { blobs?: number; bytes?: number } = {},
): BlobSource {
  const positions = new Map<string, number[]>()
  oidsInOrder.forEach((oid, i) => {
    const at = positions.get(oid)
    if (at) at.push(i)
    else positions.set(oid, [i])
  })
  let sizes: Map<string, number> | null = null
  let batch: Batch = { to: 0, blobs: new Map() }

  // The batch that starts at position `from` replaces the one held.
  const read = async (from: number, known: Map<string, number>): Promise<void> => {
    const wanted = new Set<string>()
    let bytes = 0
    let to = from
    for (; to < oidsInOrder.length && wanted.size < maxBlobs; to++) {
      const oid = oidsInOrder[to] as string
      const size = known.get(oid) ?? 0
      if (wanted.has(oid) || size > BIG_BLOB_BYTES) continue
      if (wanted.size > 0 && bytes + size > maxBytes) break
      wanted.add(oid)
      bytes += size
    }
    batch = { to, blobs: new Map() } // the previous batch goes before this one is read
    for await (const { oid, content } of store.readBlobs([...wanted])) batch.blobs.set(oid, content)
  }

  return async (oid) => {
    const hit = batch.blobs.get(oid)
    if (hit) return hit
    sizes ??= positions.size > 0 ? await store.blobSizes([...positions.keys()]) : new Map<string, number>()
    const size = sizes.get(oid)
    if (size !== undefined && size > BIG_BLOB_BYTES) return { stream: true, oid, size }
    // Its first position not yet read: the batch that starts there; else it is read alone.
    const from = positions.get(oid)?.find((i) => i >= batch.to)
    if (from === undefined) return store.readBlob(oid)
    await read(from, sizes)
    const got = batch.blobs.get(oid)
    if (!got)
      throw new AasError('STORE_CORRUPT', `Object ${oid} is missing from the store.`, {
        hint: 'Run `aas-migrate --doctor`; the store may be damaged.',
        data: { oid },
      })
    return got
  }
}
