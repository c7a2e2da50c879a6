import { BIG_BLOB_BYTES, type Store } from '../git/store.js'
import type { BlobContent } from './claim-write.js'

// Where a write phase gets each new blob's bytes.
export type BlobSource = (oid: string) => Promise<BlobContent>

// A source that reads ahead: close() stops its read (a write phase that ended early
// leaves it part-way); closing one read to its end, or never asked, costs nothing.
export interface PrefetchingBlobSource extends BlobSource {
  close(): Promise<void>
}

// A write phase asks for its new blobs one at a time, in journal order. They are read
// from the store in that order by one `readBlobs` call (for the cli backend one
// `cat-file --batch`, not one per batch: a rollback of 10,000 files wrote as fast as
// git could start and deliver each batch, and waited for it at each of five), from the
// moment the source is made, while the journal is written and then the files: at most
// PREFETCH_BLOBS blobs and PREFETCH_BYTES bytes read and not yet asked for (a blob
// larger than that alone). The byte bound matters to a rollback that puts back
// thousands of big attachments: a count alone would hold all of them at once. Blobs
// above BIG_BLOB_BYTES are left out and streamed by the write. The same bytes at
// several paths are read once and kept for the next path when it comes within
// PREFETCH_BLOBS positions (and the bounds allow); a blob asked for again after it
// went, or out of order, is read on its own.
export const PREFETCH_BLOBS = 2000
export const PREFETCH_BYTES = 64 * 1024 * 1024

export function prefetchingBlobSource(
  store: Store,
  oidsInOrder: readonly string[],
  { blobs: maxBlobs = PREFETCH_BLOBS, bytes: maxBytes = PREFETCH_BYTES }: { blobs?: number; bytes?: number } = {},
): PrefetchingBlobSource {
  const positions = new Map<string, number[]>()
  oidsInOrder.forEach((oid, i) => {
    const at = positions.get(oid)
    if (at) at.push(i)
    else positions.set(oid, [i])
  })
  const ready = new Map<string, Buffer>() // read, not yet asked for; or kept for a next path
  const kept = new Set<string>() // of `ready`: asked for once already, kept for a next path
  let readyBytes = 0
  const coming = new Set<string>() // the read will still deliver these
  let served = -1 // the position of the last blob handed out
  let closed = false
  let failure: unknown = null // the read's, once it failed
  let pumping: Promise<void> = Promise.resolve()
  let wakePump: (() => void) | null = null
  const waiting = new Set<() => void>() // requests waiting for the read

  const full = (): boolean => ready.size > 0 && (ready.size >= maxBlobs || readyBytes >= maxBytes)
  const wakeRead = (): void => {
    const wake = wakePump
    wakePump = null
    wake?.()
  }
  const drop = (oid: string): void => {
    const b = ready.get(oid)
    if (!b) return
    ready.delete(oid)
    kept.delete(oid)
    readyBytes -= b.length
    wakeRead()
  }
  const notify = (): void => {
    for (const w of waiting) w()
    waiting.clear()
  }

  // The small blobs, each once, in the order of their first path.
  const pump = async (known: Map<string, number>): Promise<void> => {
    const order: string[] = []
    for (const oid of positions.keys()) if ((known.get(oid) ?? 0) <= BIG_BLOB_BYTES) order.push(oid)
    if (order.length === 0) return
    for (const oid of order) coming.add(oid)
    try {
      for await (const { oid, content } of store.readBlobs(order)) {
        coming.delete(oid)
        ready.set(oid, content)
        readyBytes += content.length
        notify()
        while (!closed && full()) await new Promise<void>((resolve) => (wakePump = resolve))
        if (closed) break
      }
    } catch (err) {
      failure = err // what the read did not deliver fails with it when asked for
    } finally {
      // Read to its end or stopped: nothing more will come. After a failure, what did
      // not come stays `coming`, so that its requests fail with it.
      if (failure === null || closed) coming.clear()
      notify()
    }
  }

  const sizes = positions.size > 0 ? store.blobSizes([...positions.keys()]) : Promise.resolve(new Map<string, number>())
  sizes.then(
    (known) => {
      if (!closed) pumping = pump(known)
    },
    () => undefined, // the first request reports it
  )

  const source = async (oid: string): Promise<BlobContent> => {
    const size = (await sizes).get(oid)
    if (size !== undefined && size > BIG_BLOB_BYTES) return { stream: true, oid, size }
    const at = positions.get(oid)?.find((i) => i > served)
    for (;;) {
      const hit = ready.get(oid)
      if (hit) {
        if (at !== undefined) served = at
        // Kept for its next path when that comes soon; else it goes.
        const next = positions.get(oid)?.find((i) => i > served)
        if (next !== undefined && next - served <= maxBlobs && readyBytes <= maxBytes) kept.add(oid)
        else drop(oid)
        return hit
      }
      if (!coming.has(oid) || closed) break
      if (failure !== null) throw failure
      // The read waits for room that only blobs kept for a next path hold: they go.
      if (full()) for (const k of [...kept]) drop(k)
      if (full()) break // the read is ahead on blobs asked for out of order
      await new Promise<void>((resolve) => waiting.add(resolve))
    }
    return store.readBlob(oid)
  }

  return Object.assign(source, {
    close: async (): Promise<void> => {
      closed = true
      wakeRead()
      await sizes.catch(() => undefined)
      await pumping
      ready.clear()
      kept.clear()
      readyBytes = 0
    },
  })
}
