import { createHash } from 'node:crypto'

// The file layout the store's two caches share (the stat cache, the --status reading
// cache): rows of a path, number columns, a blob id and byte columns, little-endian:
//   magic (8 bytes) | u32 n | u32 metaLen | u32 pathsLen | u32 0
//   meta (JSON) | paths (UTF-8, each ended by NUL) | zero padding to 8
//   f64 × numCols·n (a column after another) | blob ids (20n bytes) | byteCols × n bytes
//   SHA-1 of everything before (20 bytes)
// A file that is cut short, damaged, of another magic or of another shape reads as null.

const HEAD = 24

export interface RowFile {
  meta: unknown
  paths: string[]
  nums: Float64Array // column c of row i at c·n + i
  oids: Buffer // 20 bytes per row
  bytes: Buffer[] // one per byte column, n bytes each
}

export interface RowWriter {
  num(col: number, row: number, value: number): void
  oid(row: number, hex: string): void
  byte(col: number, row: number, value: number): void
}

export function encodeRowFile(magic: Buffer, meta: unknown, paths: readonly string[], numCols: number, byteCols: number, fill: (w: RowWriter) => void): Buffer {
  const n = paths.length
  const metaBytes = Buffer.from(JSON.stringify(meta))
  let pathsLen = 0
  for (const p of paths) pathsLen += Buffer.byteLength(p) + 1
  const at = layout(n, metaBytes.length, pathsLen, numCols, byteCols)
  const buf = Buffer.alloc(at.total)
  magic.copy(buf, 0)
  buf.writeUInt32LE(n, 8)
  buf.writeUInt32LE(metaBytes.length, 12)
  buf.writeUInt32LE(pathsLen, 16)
  metaBytes.copy(buf, HEAD)
  let off = HEAD + metaBytes.length
  for (const p of paths) {
    off += buf.write(p, off, 'utf8')
    buf[off++] = 0
  }
  fill(writerOf(buf, n, at))
  return seal(buf)
}

// A copy of a row file that decodeRowFile accepts, with the rows `fill` writes rewritten
// (it must write every column of each row it writes) and its hash made anew: the file
// encodeRowFile would make with the same meta and paths, without writing again the rows
// that did not change.
export function patchRowFile(file: Buffer, numCols: number, byteCols: number, fill: (w: RowWriter) => void): Buffer {
  const buf = Buffer.from(file)
  const n = buf.readUInt32LE(8)
  fill(writerOf(buf, n, layout(n, buf.readUInt32LE(12), buf.readUInt32LE(16), numCols, byteCols)))
  return seal(buf)
}

interface Layout {
  numsAt: number
  oidsAt: number
  bytesAt: number
  total: number
}

function layout(n: number, metaLen: number, pathsLen: number, numCols: number, byteCols: number): Layout {
  const off = HEAD + metaLen + pathsLen
  const numsAt = off + ((8 - (off % 8)) % 8)
  const oidsAt = numsAt + 8 * numCols * n
  const bytesAt = oidsAt + 20 * n
  return { numsAt, oidsAt, bytesAt, total: bytesAt + byteCols * n + 20 }
}

function writerOf(buf: Buffer, n: number, { numsAt, oidsAt, bytesAt }: Layout): RowWriter {
  return {
    num: (col, row, value) => buf.writeDoubleLE(value, numsAt + 8 * (col * n + row)),
    oid: (row, hex) => {
      if (buf.write(hex, oidsAt + 20 * row, 20, 'hex') !== 20) throw new Error(`not an object id: ${hex}`)
    },
    byte: (col, row, value) => {
      buf[bytesAt + col * n + row] = value
    },
  }
}

// The SHA-1 of everything before the last 20 bytes, written there.
function seal(buf: Buffer): Buffer {
  createHash('sha1')
    .update(buf.subarray(0, buf.length - 20))
    .digest()
    .copy(buf, buf.length - 20)
  return buf
}

export function decodeRowFile(buf: Buffer, magic: Buffer, numCols: number, byteCols: number): RowFile | null {
  if (buf.length < HEAD + 20 || !buf.subarray(0, 8).equals(magic)) return null
  const body = buf.subarray(0, buf.length - 20)
  if (
    !createHash('sha1')
      .update(body)
      .digest()
      .equals(buf.subarray(buf.length - 20))
  )
    return null
  const n = buf.readUInt32LE(8)
  const metaLen = buf.readUInt32LE(12)
  const pathsLen = buf.readUInt32LE(16)
  let off = HEAD
  let meta: unknown
  try {
    meta = JSON.parse(buf.toString('utf8', off, off + metaLen))
  } catch {
    return null
  }
  off += metaLen
  const paths = n === 0 ? [] : buf.toString('utf8', off, off + pathsLen - 1).split('\0')
  off += pathsLen
  off += (8 - (off % 8)) % 8
  if (paths.length !== n || body.length !== off + 8 * numCols * n + 20 * n + byteCols * n) return null
  // The numbers are copied out (8-byte aligned), so the columns never depend on how
  // the file's buffer happens to be aligned.
  const nums = new Float64Array(numCols * n)
  new Uint8Array(nums.buffer).set(buf.subarray(off, off + 8 * numCols * n))
  off += 8 * numCols * n
  const oids = buf.subarray(off, off + 20 * n)
  off += 20 * n
  const bytes = Array.from({ length: byteCols }, (_, c) => buf.subarray(off + c * n, off + (c + 1) * n))
  return { meta, paths, nums, oids, bytes }
}
