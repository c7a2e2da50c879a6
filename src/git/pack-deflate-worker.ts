import { parentPort, workerData } from 'node:worker_threads'
import { hashObject } from './git-objects.js'
import { PackReader, packEntry } from './pack-read.js'

// The js store's deflating thread (pack-deflater.ts): for each blob of a batch, its id
// and, unless the store's packs (listed when the thread starts) or an earlier blob of
// this thread already hold it, its pack entry (header and zlib stream, compression
// level 1) with the entry's CRC-32, as the pack's index records it.

export interface DeflateWorkerData {
  packDir: string
}

export interface DeflateRequest {
  id: number
  bytes: ArrayBuffer // the blobs, one after another (and unused room after them)
  lengths: number[]
  spare: ArrayBuffer[] // entry buffers of earlier replies, to be filled again
}

export interface DeflateReply {
  id: number
  bytes: ArrayBuffer // the request's, given back
  oids: string[]
  entries: ArrayBuffer // the entries written, one after another, in its first entriesLength bytes
  entriesLength: number
  sizes: number[] // each blob's entry length; 0: not written (the store holds it)
  crcs: number[]
  error?: string
}

const BLOB_TYPE = 3
// The least an entry buffer is made: most batches' entries fit in it.
const ENTRY_BYTES = 1 << 20

// A spare buffer of at least `least` bytes, or a new one.
function takeSpare(spares: ArrayBuffer[], least: number): ArrayBuffer {
  const k = spares.findIndex((b) => b.byteLength >= least)
  return k >= 0 ? (spares.splice(k, 1)[0] as ArrayBuffer) : new ArrayBuffer(least)
}

const port = parentPort
if (port) {
  const { packDir } = workerData as DeflateWorkerData
  const packs = new PackReader(packDir)
  packs.refresh()
  const seen = new Set<string>()
  const spares: ArrayBuffer[] = []
  port.on('message', ({ id, bytes, lengths, spare }: DeflateRequest) => {
    spares.push(...spare)
    try {
      const all = Buffer.from(bytes)
      const oids: string[] = []
      const sizes: number[] = []
      const crcs: number[] = []
      // Each entry is copied out as soon as it is made, so that a batch's entries are not
      // all alive at once (the young generation is small: see pack-deflater.ts).
      let entries = takeSpare(spares, ENTRY_BYTES)
      let out = Buffer.from(entries)
      let off = 0
      let at = 0
      for (const length of lengths) {
        const content = all.subarray(at, at + length)
        at += length
        const oid = hashObject('blob', content)
        oids.push(oid)
        if (seen.has(oid) || packs.inListedPack(oid)) {
          sizes.push(0)
          crcs.push(0)
          continue
        }
        seen.add(oid)
        const { head, body, crc } = packEntry(BLOB_TYPE, content)
        const size = head.length + body.length
        if (off + size > out.length) {
          entries = new ArrayBuffer(Math.max(2 * out.length, off + size))
          const bigger = Buffer.from(entries)
          out.copy(bigger, 0, 0, off)
          out = bigger
        }
        off += head.copy(out, off)
        off += body.copy(out, off)
        sizes.push(size)
        crcs.push(crc)
      }
      const reply: DeflateReply = { id, bytes, oids, entries, entriesLength: off, sizes, crcs }
      port.postMessage(reply, [bytes, entries])
    } catch (err) {
      const reply: DeflateReply = {
        id,
        bytes,
        oids: [],
        entries: new ArrayBuffer(0),
        entriesLength: 0,
        sizes: [],
        crcs: [],
        error: (err as Error).message,
      }
      port.postMessage(reply, [bytes])
    }
  })
}
