import { createHash, randomBytes } from 'node:crypto'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ENGINE_VERSION } from '../version.js'
import { READING_RULES_VERSION, type ReadingCache, type UnitReading } from '../vault/unit-reading.js'
import type { ScopeEntry } from '../vault/walk.js'
import { isRacy } from './stat-cache.js'

// What `--status` read last time, kept in the store's state folder, so a repeat reads
// only units whose stat changed: for each unit, the stat it had when read (size, mtime,
// ctime, inode), its blob id and its reading (version, unversioned, or unreadable with
// the parser's message). A file whose stat matches is not read; a file read again whose
// blob id is known is not parsed. A unit modified within RACY_MS of the scan that read it
// (by mtime or ctime) is recorded untrusted: it could change again within the clock's
// granularity and keep its stat, so it is read again next time (git's racily clean
// entries, decided against the scan's start rather than the file's own write).
// A cache that is missing, damaged, cut short or written by another engine or reading
// rules version is ignored and replaced; it is written to a temp file and renamed into
// place, so concurrent writers leave one whole file.

export const READING_CACHE_FILE = 'reading-cache.bin'

// The file, little-endian:
//   magic "AASREAD\x01" | u32 n | u32 metaLen | u32 pathsLen | u32 0
//   meta (JSON {engine, rules, root, errors: [[row, message, line, column], ...]})
//   paths (UTF-8, each ended by NUL) | zero padding to 8
//   f64 × 5n (sizes, mtimes, ctimes, inos, versions) | oids (20n bytes) | kinds (n) | trusted (n)
//   SHA-1 of everything before (20 bytes)
const MAGIC = Buffer.from('AASREAD\x01', 'latin1')
const HEAD = 24
const KIND_CODE = { versioned: 1, unversioned: 2, unreadable: 3 } as const

interface Rows {
  paths: string[]
  nums: Float64Array // [sizes | mtimes | ctimes | inos | versions]
  oids: Buffer // 20 bytes per row
  kinds: Uint8Array
  trusted: Uint8Array
  errors: Map<number, { message: string; line: number; column: number }>
}

interface Meta {
  engine: string
  rules: number
  root: string // agents_root: a store in a git repository may serve several vaults
  errors: Array<[number, string, number, number]>
}

function decode(buf: Buffer, root: string): Rows | null {
  if (buf.length < HEAD + 20 || !buf.subarray(0, 8).equals(MAGIC)) return null
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
  const meta = JSON.parse(buf.toString('utf8', off, off + metaLen)) as Meta
  if (meta.engine !== ENGINE_VERSION || meta.rules !== READING_RULES_VERSION || meta.root !== root || !Array.isArray(meta.errors)) return null
  off += metaLen
  const paths = n === 0 ? [] : buf.toString('utf8', off, off + pathsLen - 1).split('\0')
  off += pathsLen
  off += (8 - (off % 8)) % 8
  if (paths.length !== n || body.length !== off + 40 * n + 20 * n + 2 * n) return null
  // Copied out, so the numbers are aligned whatever the file buffer's alignment.
  const nums = new Float64Array(5 * n)
  new Uint8Array(nums.buffer).set(buf.subarray(off, off + 40 * n))
  off += 40 * n
  const oids = buf.subarray(off, off + 20 * n)
  off += 20 * n
  const kinds = buf.subarray(off, off + n)
  const trusted = buf.subarray(off + n, off + 2 * n)
  const errors = new Map(meta.errors.map(([row, message, line, column]) => [row, { message, line, column }]))
  return { paths, nums, oids, kinds, trusted, errors }
}

function readingAt(rows: Rows, i: number): UnitReading | null {
  const kind = rows.kinds[i]
  if (kind === KIND_CODE.versioned) return { kind: 'versioned', version: rows.nums[4 * rows.paths.length + i] as number }
  if (kind === KIND_CODE.unversioned) return { kind: 'unversioned' }
  const error = rows.errors.get(i)
  return kind === KIND_CODE.unreadable && error ? { kind: 'unreadable', error: { ...error } } : null
}

interface NextRow {
  e: ScopeEntry
  oid: string
  reading: UnitReading
  trusted: boolean
}

// The cache of one --status run: the rows read from the file, and the rows of this
// scan (hits and fresh reads) that save() writes.
export class StatusReadingCache implements ReadingCache {
  readonly #old: Rows | null
  readonly #index = new Map<string, number>()
  readonly #scanStartedMs: number
  readonly #next: NextRow[] = []
  #byOid: Map<string, UnitReading> | null = null
  #hits = 0

  constructor(old: Rows | null, scanStartedMs: number) {
    this.#old = old
    this.#scanStartedMs = scanStartedMs
    if (old) for (let i = 0; i < old.paths.length; i++) this.#index.set(old.paths[i] as string, i)
  }

  // Whether the file held a usable cache.
  get loaded(): boolean {
    return this.#old !== null
  }

  byStat(e: ScopeEntry): UnitReading | null {
    const old = this.#old
    const i = this.#index.get(e.path)
    if (!old || i === undefined || old.trusted[i] !== 1) return null
    const n = old.paths.length
    const { nums } = old
    if (nums[i] !== e.size || nums[n + i] !== e.mtimeMs || nums[2 * n + i] !== e.ctimeMs || nums[3 * n + i] !== e.ino) return null
    const reading = readingAt(old, i)
    if (!reading) return null
    this.#hits++
    this.#next.push({ e, oid: old.oids.toString('hex', 20 * i, 20 * i + 20), reading, trusted: true })
    return reading
  }

  byOid(oid: string): UnitReading | null {
    if (!this.#byOid) {
      this.#byOid = new Map()
      const old = this.#old
      if (old) {
        for (let i = 0; i < old.paths.length; i++) {
          const reading = readingAt(old, i)
          if (reading) this.#byOid.set(old.oids.toString('hex', 20 * i, 20 * i + 20), reading)
        }
      }
      for (const row of this.#next) this.#byOid.set(row.oid, row.reading)
    }
    return this.#byOid.get(oid) ?? null
  }

  record(e: ScopeEntry, oid: string, reading: UnitReading): void {
    this.#next.push({ e, oid, reading, trusted: !isRacy(Math.max(e.mtimeMs, e.ctimeMs), this.#scanStartedMs) })
    this.#byOid?.set(oid, reading)
  }

  // Whether the file would change: a unit was read, or one it held is gone.
  get changed(): boolean {
    return this.#hits !== this.#next.length || this.#hits !== (this.#old?.paths.length ?? -1)
  }

  // Writes the rows of this scan (temp file, then rename), unless nothing changed, into
  // an existing state folder (it never creates one). Returns whether it wrote.
  async save(stateDir: string, root: string): Promise<boolean> {
    if (!this.changed) return false
    const file = path.join(stateDir, READING_CACHE_FILE)
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
    try {
      await writeFile(tmp, encode(this.#next, root))
      await rename(tmp, file)
      return true
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
  }
}

function encode(rows: readonly NextRow[], root: string): Buffer {
  const n = rows.length
  const errors: Meta['errors'] = []
  let pathsLen = 0
  for (const [i, r] of rows.entries()) {
    pathsLen += Buffer.byteLength(r.e.path) + 1
    if (r.reading.kind === 'unreadable') errors.push([i, r.reading.error.message, r.reading.error.line, r.reading.error.column])
  }
  const meta = Buffer.from(JSON.stringify({ engine: ENGINE_VERSION, rules: READING_RULES_VERSION, root, errors } satisfies Meta))
  let off = HEAD + meta.length + pathsLen
  const numsAt = off + ((8 - (off % 8)) % 8)
  const oidsAt = numsAt + 40 * n
  const kindsAt = oidsAt + 20 * n
  const trustedAt = kindsAt + n
  const total = trustedAt + n + 20
  const buf = Buffer.alloc(total)
  MAGIC.copy(buf, 0)
  buf.writeUInt32LE(n, 8)
  buf.writeUInt32LE(meta.length, 12)
  buf.writeUInt32LE(pathsLen, 16)
  meta.copy(buf, HEAD)
  off = HEAD + meta.length
  for (const [i, { e, oid, reading, trusted }] of rows.entries()) {
    off += buf.write(e.path, off, 'utf8')
    buf[off++] = 0
    buf.writeDoubleLE(e.size, numsAt + 8 * i)
    buf.writeDoubleLE(e.mtimeMs, numsAt + 8 * (n + i))
    buf.writeDoubleLE(e.ctimeMs, numsAt + 8 * (2 * n + i))
    buf.writeDoubleLE(e.ino, numsAt + 8 * (3 * n + i))
    if (buf.write(oid, oidsAt + 20 * i, 20, 'hex') !== 20) throw new Error(`not an object id: ${oid}`)
    buf.writeDoubleLE(reading.kind === 'versioned' ? reading.version : 0, numsAt + 8 * (4 * n + i))
    buf[kindsAt + i] = KIND_CODE[reading.kind]
    buf[trustedAt + i] = trusted ? 1 : 0
  }
  createHash('sha1')
    .update(buf.subarray(0, total - 20))
    .digest()
    .copy(buf, total - 20)
  return buf
}

// The cache of a store's state folder for a scan of agents_root root starting now
// (scanStartedMs: taken before the walk's first stat). Anything unusable reads as empty.
export async function loadReadingCache(stateDir: string, root: string, scanStartedMs: number): Promise<StatusReadingCache> {
  let rows: Rows | null = null
  try {
    rows = decode(await readFile(path.join(stateDir, READING_CACHE_FILE)), root)
  } catch {
    rows = null // missing, unreadable or damaged: every unit is read, and the file replaced
  }
  return new StatusReadingCache(rows, scanStartedMs)
}
