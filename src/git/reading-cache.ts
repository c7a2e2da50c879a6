import { randomBytes } from 'node:crypto'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ENGINE_VERSION } from '../version.js'
import { READING_RULES_VERSION, type ReadingCache, type UnitReading } from '../vault/unit-reading.js'
import type { ScopeEntry } from '../vault/walk.js'
import { decodeRowFile, encodeRowFile, patchRowFile, type RowWriter } from './row-file.js'
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

// The file (the layout of row-file.ts): magic "AASREAD\x01", meta {engine, rules, root,
// errors: [[row, message, line, column], ...]}, number columns sizes, mtimes, ctimes,
// inos, versions; byte columns kinds, trusted.
const MAGIC = Buffer.from('AASREAD\x01', 'latin1')
const KIND_CODE = { versioned: 1, unversioned: 2, unreadable: 3 } as const

interface Rows {
  paths: string[]
  nums: Float64Array // [sizes | mtimes | ctimes | inos | versions]
  oids: Buffer // 20 bytes per row
  kinds: Uint8Array
  trusted: Uint8Array
  errors: Map<number, { message: string; line: number; column: number }>
  file: Buffer // the file as read
  metaJson: string // its meta as written
}

interface Meta {
  engine: string
  rules: number
  root: string // agents_root: a store in a git repository may serve several vaults
  errors: Array<[number, string, number, number]>
}

function decode(buf: Buffer, root: string): Rows | null {
  const f = decodeRowFile(buf, MAGIC, 5, 2)
  const meta = f?.meta as Partial<Meta> | undefined
  if (!f || !meta || meta.engine !== ENGINE_VERSION || meta.rules !== READING_RULES_VERSION || meta.root !== root || !Array.isArray(meta.errors)) return null
  const [kinds, trusted] = f.bytes as [Buffer, Buffer]
  const errors = new Map(meta.errors.map(([row, message, line, column]) => [row, { message, line, column }]))
  return { paths: f.paths, nums: f.nums, oids: f.oids, kinds, trusted, errors, file: buf, metaJson: JSON.stringify(meta) }
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
  old: number // the same row of the file read (a hit), or -1
}

// The cache of one --status run: the rows read from the file, and the rows of this
// scan (hits and fresh reads) that save() writes.
export class StatusReadingCache implements ReadingCache {
  readonly #old: Rows | null
  readonly #index = new Map<string, number>()
  readonly #scanStartedMs: number
  readonly #next: NextRow[] = []
  #byOid: Map<string, UnitReading> | null = null
  #hex: string | null = null // the old rows' blob ids as one hex string (one conversion, not one per row)
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
    this.#next.push({ e, oid: this.#oldOid(i), reading, trusted: true, old: i })
    return reading
  }

  byOid(oid: string): UnitReading | null {
    if (!this.#byOid) {
      this.#byOid = new Map()
      const old = this.#old
      if (old) {
        for (let i = 0; i < old.paths.length; i++) {
          const reading = readingAt(old, i)
          if (reading) this.#byOid.set(this.#oldOid(i), reading)
        }
      }
      for (const row of this.#next) this.#byOid.set(row.oid, row.reading)
    }
    return this.#byOid.get(oid) ?? null
  }

  #oldOid(i: number): string {
    this.#hex ??= (this.#old as Rows).oids.toString('hex')
    return this.#hex.slice(40 * i, 40 * i + 40)
  }

  record(e: ScopeEntry, oid: string, reading: UnitReading): void {
    this.#next.push({ e, oid, reading, trusted: !isRacy(Math.max(e.mtimeMs, e.ctimeMs), this.#scanStartedMs), old: -1 })
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
      await writeFile(tmp, this.#patched(root) ?? encode(this.#next, root))
      await rename(tmp, file)
      return true
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
  }

  // The file read with only the rows read again rewritten, when this scan has the same
  // paths in the same order and the same meta (most repeats: a few units edited); else
  // null (the file is encoded whole).
  #patched(root: string): Buffer | null {
    const old = this.#old
    const next = this.#next
    if (!old || next.length !== old.paths.length) return null
    const fresh: number[] = []
    for (let k = 0; k < next.length; k++) {
      const row = next[k] as NextRow
      if (row.old === k) continue // a hit: the row as it was
      if (row.old !== -1 || row.e.path !== old.paths[k]) return null
      fresh.push(k)
    }
    if (JSON.stringify(metaOf(next, root)) !== old.metaJson) return null
    return patchRowFile(old.file, 5, 2, (w) => {
      for (const k of fresh) writeRow(w, k, next[k] as NextRow)
    })
  }
}

function metaOf(rows: readonly NextRow[], root: string): Meta {
  const errors: Meta['errors'] = []
  for (const [i, r] of rows.entries())
    if (r.reading.kind === 'unreadable') errors.push([i, r.reading.error.message, r.reading.error.line, r.reading.error.column])
  return { engine: ENGINE_VERSION, rules: READING_RULES_VERSION, root, errors }
}

function writeRow(w: RowWriter, i: number, { e, oid, reading, trusted }: NextRow): void {
  w.num(0, i, e.size)
  w.num(1, i, e.mtimeMs)
  w.num(2, i, e.ctimeMs)
  w.num(3, i, e.ino)
  w.num(4, i, reading.kind === 'versioned' ? reading.version : 0)
  w.oid(i, oid)
  w.byte(0, i, KIND_CODE[reading.kind])
  w.byte(1, i, trusted ? 1 : 0)
}

function encode(rows: readonly NextRow[], root: string): Buffer {
  return encodeRowFile(
    MAGIC,
    metaOf(rows, root),
    rows.map((r) => r.e.path),
    5,
    2,
    (w) => rows.forEach((row, i) => writeRow(w, i, row)),
  )
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
