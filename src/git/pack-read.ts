import * as fs from 'node:fs'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import { deflateObject, inflateObject } from './object-zlib.js'

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
// The bytes a pack reads at once around objects read close together, and how many such
// windows it keeps (see PackIndex.bytes).
const WINDOW_BYTES = 1 << 20
const WINDOWS = 2
const OFS_DELTA = 6
const REF_DELTA = 7

// A pack entry of `content` as written (gitformat-pack): its header (the type code and
// the size in 4 + 7·k bits), its zlib stream (level 1, as git is told to pack here) and
// the CRC-32 of both, as the index records it.
export function packEntry(typeCode: number, content: Buffer): { head: Buffer; body: Buffer; crc: number } {
  const bytes: number[] = []
  let rest = Math.floor(content.length / 16)
  let byte = (typeCode << 4) | (content.length & 0x0f)
  while (rest > 0) {
    bytes.push(byte | 0x80)
    byte = rest & 0x7f
    rest = Math.floor(rest / 128)
  }
  bytes.push(byte)
  const head = Buffer.from(bytes)
  const body = deflateObject(content)
  return { head, body, crc: crc32(body, crc32(head)) }
}

export interface PackedObject {
  type: 'commit' | 'tree' | 'blob' | 'tag'
  content: Buffer
}

// buf[0, len) are the pack's bytes from offset `at`; used: when it last served a read.
interface PackWindow {
  buf: Buffer
  at: number
  len: number
  used: number
}

class PackIndex {
  readonly n: number
  private readonly idx: Buffer
  private readonly crcsAt: number
  private readonly offsetsAt: number
  private readonly bigAt: number
  private ends: { starts: Float64Array; ends: Float64Array; packEnd: number } | null = null
  private fd: number | null = null
  // Bytes read ahead (see bytes()).
  private windows: PackWindow[] = []
  private clock = 0
  private lastMiss = Number.NEGATIVE_INFINITY

  constructor(
    readonly name: string,
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
    // The first four bytes compared as a number (in JavaScript); the rest only on a tie.
    const head = id.readUInt32BE(0)
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const at = IDS + 20 * mid
      const h = this.idx.readUInt32BE(at)
      const c = h !== head ? (h < head ? -1 : 1) : this.idx.compare(id, 4, 20, at + 4, at + 20)
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
    const { starts, ends } = this.layout()
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

  // Where the objects start, sorted, each one's end, and where the last ends (the pack's
  // trailing checksum starts); made when first needed.
  private layout(): { starts: Float64Array; ends: Float64Array; packEnd: number } {
    if (!this.ends) {
      const starts = new Float64Array(this.n)
      for (let i = 0; i < this.n; i++) starts[i] = this.offset(i)
      starts.sort()
      const ends = new Float64Array(this.n)
      const packEnd = fs.fstatSync(this.open()).size - 20
      for (let i = 0; i < this.n; i++) ends[i] = i + 1 < this.n ? (starts[i + 1] as number) : packEnd
      this.ends = { starts, ends, packEnd }
    }
    return this.ends
  }

  private open(): number {
    this.fd ??= fs.openSync(this.packFile, 'r')
    return this.fd
  }

  // The bytes of the pack from `start`, `len` of them: from a window when one holds
  // them. A snapshot's objects are read mostly near the ones read before (a folder's
  // blobs were written together, though folders may come in another order), so a read
  // that misses within a window's length of the previous miss reads the aligned window
  // around it (one read for a few hundred small objects, not two or three each); a
  // read far from the last (a lone object) reads that object only, into the window
  // used least recently. The bytes returned are the window's: use them before the next
  // read. Pack files never change once named (their name is their checksum).
  private bytes(start: number, len: number): Buffer {
    let w = this.windows.find((w) => start >= w.at && start + len <= w.at + w.len)
    if (!w) {
      w = this.leastRecent()
      const near = Math.abs(start - this.lastMiss) <= WINDOW_BYTES
      this.lastMiss = start
      let at = start
      let want = len
      if (near && len <= WINDOW_BYTES) {
        at = start - (start % WINDOW_BYTES)
        if (start + len > at + WINDOW_BYTES) at = start
        want = Math.min(WINDOW_BYTES, this.layout().packEnd - at)
      }
      // A big object (more than a window) is read into a buffer of its own.
      const buf = want <= w.buf.length ? w.buf : Buffer.allocUnsafe(Math.max(len, WINDOW_BYTES))
      if (buf === w.buf) w.len = 0 // overwritten below: it holds nothing until read
      let got = 0
      while (got < want) {
        const n = fs.readSync(this.open(), buf, got, want - got, at + got)
        if (n === 0) break
        got += n
      }
      if (at + got < start + len) throw new Error(`${this.packFile} ends inside the object at offset ${start}`)
      if (len > WINDOW_BYTES) return buf.subarray(0, len)
      w.buf = buf
      w.at = at
      w.len = got
    }
    w.used = ++this.clock
    return w.buf.subarray(start - w.at, start - w.at + len)
  }

  private leastRecent(): PackWindow {
    if (this.windows.length < WINDOWS) {
      const w: PackWindow = { buf: Buffer.alloc(0), at: 0, len: 0, used: 0 }
      this.windows.push(w)
      return w
    }
    return this.windows.reduce((a, b) => (a.used <= b.used ? a : b))
  }

  // The object's header: type (null for a delta) and size, and where its zlib stream
  // starts. An object of up to a window is read whole (its body is read next, mostly),
  // a bigger one from its first bytes only.
  head(i: number): { type: PackedObject['type'] | null; size: number; bodyAt: number } {
    const start = this.offset(i)
    const len = this.end(start) - start
    const buf = this.bytes(start, len <= WINDOW_BYTES ? len : Math.min(32, len))
    let b = buf[0] as number
    const code = (b >> 4) & 7
    let size = b & 0x0f
    let shift = 4
    let at = 1
    while (b & 0x80) {
      if (at >= buf.length || at >= 32) throw new Error(`the object at offset ${start} of ${this.packFile} has a bad header`)
      b = buf[at++] as number
      size += (b & 0x7f) * 2 ** shift
      shift += 7
    }
    if (code === OFS_DELTA || code === REF_DELTA) return { type: null, size, bodyAt: at }
    const type = TYPES[code]
    if (!type) throw new Error(`the object at offset ${start} of ${this.packFile} has unknown type ${code}`)
    return { type, size, bodyAt: at }
  }

  // The object at position i, whole, checked against the index's CRC-32. The bytes are
  // the window's when they fit in it: inflate them before the next read.
  raw(i: number): Buffer {
    const start = this.offset(i)
    const buf = this.bytes(start, this.end(start) - start)
    if (crc32(buf) !== this.idx.readUInt32BE(this.crcsAt + 4 * i)) throw new Error(`the object at offset ${start} of ${this.packFile} fails its CRC-32 check`)
    return buf
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd)
    this.fd = null
    this.windows = []
  }
}

// The packs of one objects/pack folder, listed when first needed and again when an id
// is in none of them (a pack written since: only new index files are read).
export class PackReader {
  private packs = new Map<string, PackIndex>()
  private lastFound: PackIndex | null = null
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
      this.packs.set(name, new PackIndex(name, path.join(this.packDir, `${name.slice(0, -4)}.pack`), idx))
    }
    this.everListed = true
  }

  // The id in the packs listed so far: the pack of the last one found first (a
  // snapshot's objects are mostly in one pack).
  private lookUp(oid: string): { pack: PackIndex; i: number } | null {
    const id = Buffer.from(oid, 'hex')
    const last = this.lastFound
    if (last && this.packs.get(last.name) === last) {
      const i = last.find(id)
      if (i >= 0) return { pack: last, i }
    }
    for (const pack of this.packs.values()) {
      if (pack === last) continue
      const i = pack.find(id)
      if (i >= 0) {
        this.lastFound = pack
        return { pack, i }
      }
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
      const content = inflateObject(pack.raw(i).subarray(head.bodyAt))
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
    this.lastFound = null
    this.everListed = false
  }
}
