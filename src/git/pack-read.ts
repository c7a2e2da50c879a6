import * as fs from 'node:fs'
import path from 'node:path'
import { crc32, inflateSync } from 'node:zlib'

// Whole (undeltified) objects read straight from a store's packs, for the js backend.
// isomorphic-git reads a packed object by loading the pack file and inflating with
// pako, a JavaScript zlib: reading back a 10,000-blob snapshot, pako alone took about
// 0.7 s of a 4.6 s rollback. Here the pack index (version 2) is searched for the id, the
// object's bytes are read from the pack (they end where the next object starts) and
// inflated by node:zlib, after their CRC-32 is checked against the index. A delta
// (OFS_DELTA, REF_DELTA: in packs git wrote; this engine's own packs have none) or an
// index of another version: `null`, and the caller reads it through isomorphic-git,
// which resolves deltas.
//
// Layouts: git's Documentation/gitformat-pack.txt. Index v2: "\377tOc", version 2,
// fan-out (256 × u32), ids (20 bytes each, sorted), CRC-32s, 31-bit offsets (the high
// bit set: an index into the 64-bit offsets that follow), the pack's checksum, its own.
// A pack object: a header (type in bits 4–6 of the first byte, size in 4 + 7·k bits),
// then its zlib stream.

const IDX_MAGIC = 0xff744f63
const FANOUT = 8
const IDS = FANOUT + 256 * 4
const TYPES: Record<number, 'commit' | 'tree' | 'blob' | 'tag'> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' }
const OFS_DELTA = 6
const REF_DELTA = 7

export interface PackedObject {
  type: 'commit' | 'tree' | 'blob' | 'tag'
  content: Buffer
}

class PackIndex {
  readonly n: number
  private readonly idx: Buffer
  private readonly crcsAt: number
  private readonly offsetsAt: number
  private readonly bigAt: number
  private ends: { starts: Float64Array; ends: Float64Array } | null = null
  private fd: number | null = null

  constructor(
    readonly packFile: string,
    idx: Buffer,
  ) {
    this.idx = idx
    this.n = idx.readUInt32BE(FANOUT + 255 * 4)
    this.crcsAt = IDS + 20 * this.n
    this.offsetsAt = this.crcsAt + 4 * this.n
    this.bigAt = this.offsetsAt + 4 * this.n
  }

  // The position of the id in the index, or -1.
  find(id: Buffer): number {
    const first = id[0] as number
    let lo = first === 0 ? 0 : this.idx.readUInt32BE(FANOUT + (first - 1) * 4)
    let hi = this.idx.readUInt32BE(FANOUT + first * 4)
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const c = this.idx.compare(id, 0, 20, IDS + 20 * mid, IDS + 20 * mid + 20)
      if (c === 0) return mid
      if (c < 0) lo = mid + 1
      else hi = mid
    }
    return -1
  }

  private offset(i: number): number {
    const o = this.idx.readUInt32BE(this.offsetsAt + 4 * i)
    if (o < 0x80000000) return o
    const at = this.bigAt + 8 * (o & 0x7fffffff)
    return this.idx.readUInt32BE(at) * 2 ** 32 + this.idx.readUInt32BE(at + 4)
  }

  // Where the object at pack offset `start` ends: where the next one starts, or at the
  // pack's trailing checksum.
  private end(start: number): number {
    if (!this.ends) {
      const starts = new Float64Array(this.n)
      for (let i = 0; i < this.n; i++) starts[i] = this.offset(i)
      starts.sort()
      const ends = new Float64Array(this.n)
      const packEnd = fs.fstatSync(this.open()).size - 20
      for (let i = 0; i < this.n; i++) ends[i] = i + 1 < this.n ? (starts[i + 1] as number) : packEnd
      this.ends = { starts, ends }
    }
    const { starts, ends } = this.ends
    let lo = 0
    let hi = this.n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((starts[mid] as number) < start) lo = mid + 1
      else hi = mid
    }
    if (starts[lo] !== start) throw new Error(`no object starts at offset ${start} of ${this.packFile}`)
    return ends[lo] as number
  }

  private open(): number {
    this.fd ??= fs.openSync(this.packFile, 'r')
    return this.fd
  }

  // The object's header: type (null for a delta) and size, and where its zlib stream
  // starts. Read from the first bytes only.
  head(i: number): { type: PackedObject['type'] | null; size: number; bodyAt: number } {
    const start = this.offset(i)
    const buf = Buffer.alloc(Math.min(32, this.end(start) - start))
    fs.readSync(this.open(), buf, 0, buf.length, start)
    let b = buf[0] as number
    const code = (b >> 4) & 7
    let size = b & 0x0f
    let shift = 4
    let at = 1
    while (b & 0x80) {
      if (at >= buf.length) throw new Error(`the object at offset ${start} of ${this.packFile} has a bad header`)
      b = buf[at++] as number
      size += (b & 0x7f) * 2 ** shift
      shift += 7
    }
    if (code === OFS_DELTA || code === REF_DELTA) return { type: null, size, bodyAt: at }
    const type = TYPES[code]
    if (!type) throw new Error(`the object at offset ${start} of ${this.packFile} has unknown type ${code}`)
    return { type, size, bodyAt: at }
  }

  // The object at position i, whole, checked against the index's CRC-32.
  raw(i: number): Buffer {
    const start = this.offset(i)
    const len = this.end(start) - start
    const buf = Buffer.allocUnsafe(len)
    let got = 0
    while (got < len) {
      const n = fs.readSync(this.open(), buf, got, len - got, start + got)
      if (n === 0) throw new Error(`${this.packFile} ends inside the object at offset ${start}`)
      got += n
    }
    if (crc32(buf) !== this.idx.readUInt32BE(this.crcsAt + 4 * i)) throw new Error(`the object at offset ${start} of ${this.packFile} fails its CRC-32 check`)
    return buf
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd)
    this.fd = null
  }
}

// The packs of one objects/pack folder, listed when first needed and again when an id
// is in none of them (a pack written since: only new index files are read).
export class PackReader {
  private packs = new Map<string, PackIndex>()
  private everListed = false

  constructor(private readonly packDir: string) {}

  // Lists the folder (again): only new index files are read, vanished ones forgotten.
  refresh(): void {
    let names: string[] = []
    try {
      names = fs.readdirSync(this.packDir).filter((n) => n.startsWith('pack-') && n.endsWith('.idx'))
    } catch {
      names = [] // no packs yet
    }
    const keep = new Set(names)
    for (const [name, pack] of this.packs) {
      if (keep.has(name)) continue
      pack.close()
      this.packs.delete(name)
    }
    for (const name of names) {
      if (this.packs.has(name)) continue
      let idx: Buffer
      try {
        idx = fs.readFileSync(path.join(this.packDir, name))
      } catch {
        continue // removed since the listing (a repack)
      }
      // Another version (v1 has no magic), or cut short: left to isomorphic-git.
      if (idx.length < IDS + 40 || idx.readUInt32BE(0) !== IDX_MAGIC || idx.readUInt32BE(4) !== 2) continue
      const n = idx.readUInt32BE(FANOUT + 255 * 4)
      if (idx.length < IDS + 28 * n + 40) continue
      this.packs.set(name, new PackIndex(path.join(this.packDir, `${name.slice(0, -4)}.pack`), idx))
    }
    this.everListed = true
  }

  // The id in the packs listed so far.
  private lookUp(oid: string): { pack: PackIndex; i: number } | null {
    const id = Buffer.from(oid, 'hex')
    for (const pack of this.packs.values()) {
      const i = pack.find(id)
      if (i >= 0) return { pack, i }
    }
    return null
  }

  // The id in the packs, listed again on a miss.
  private locate(oid: string): { pack: PackIndex; i: number } | null {
    const first = this.everListed ? this.lookUp(oid) : null
    if (first) return first
    this.refresh()
    return this.lookUp(oid)
  }

  has(oid: string): boolean {
    return this.locate(oid) !== null
  }

  // Whether a pack listed so far holds the id: no new listing on a miss, for a writer
  // asking about every object it writes (it calls refresh() first).
  inListedPack(oid: string): boolean {
    return this.lookUp(oid) !== null
  }

  // A whole object, or null: in no pack, or a delta (for the caller's other path). A
  // damaged object throws. `relist: false`: only the packs listed so far are searched (a
  // caller that looks elsewhere before it asks again with a new listing).
  read(oid: string, { relist = true }: { relist?: boolean } = {}): PackedObject | null {
    return this.retried(oid, relist, (pack, i) => {
      const head = pack.head(i)
      if (!head.type) return null
      const content = inflateSync(pack.raw(i).subarray(head.bodyAt))
      if (content.length !== head.size) throw new Error(`packed object ${oid} inflates to ${content.length} bytes, its header says ${head.size}`)
      return { type: head.type, content }
    })
  }

  // Type and size of a whole packed object from its header, without inflating it; null
  // when it is in no pack or a delta.
  header(oid: string, { relist = true }: { relist?: boolean } = {}): { type: PackedObject['type']; size: number } | null {
    return this.retried(oid, relist, (pack, i) => {
      const { type, size } = pack.head(i)
      return type ? { type, size } : null
    })
  }

  // A pack removed since it was listed (git repacked the store) is listed again once.
  private retried<T>(oid: string, relist: boolean, fn: (pack: PackIndex, i: number) => T | null): T | null {
    for (let attempt = 0; ; attempt++) {
      const at = relist ? this.locate(oid) : this.lookUp(oid)
      if (!at) return null
      try {
        return fn(at.pack, at.i)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw err
        this.close()
      }
    }
  }

  // Closes the open pack files (they are opened again when next needed); the indexes stay.
  release(): void {
    for (const pack of this.packs.values()) pack.close()
  }

  close(): void {
    for (const pack of this.packs.values()) pack.close()
    this.packs.clear()
    this.everListed = false
  }
}
