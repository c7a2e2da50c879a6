import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { FileMode, ScopeEntry } from '../vault/walk.js'
import { decodeRowFile, encodeRowFile } from './row-file.js'

// The store's memory of what it hashed last time, so a repeat snapshot reads only
// files whose stat changed. Kept under <gitDir>/aas/, shared by both backends (same ids).

// Version 3, binary (see encode below). Versions 1 and 2 were JSON in LEGACY_STAT_CACHE_FILE
// and are still read when no version 3 file exists.
export const STAT_CACHE_FILE = 'stat-cache.bin'
export const LEGACY_STAT_CACHE_FILE = 'stat-cache.json'
// Files modified this close to (or after) the start of a scan may change again within
// the clock's granularity without a visible stat change: never trust them next time.
const RACY_MS = 2000

// Whether a file with this mtime may still change without a visible stat change, seen
// from a scan that started at scanStartedMs: its bytes read now prove nothing later.
export function isRacy(mtimeMs: number, scanStartedMs: number): boolean {
  return !(mtimeMs < scanStartedMs - RACY_MS)
}

type Row = [path: string, mode: FileMode, size: number, mtimeMs: number, ctimeMs: number, ino: number, oid: string, trusted: 0 | 1]

const MODE_CODE: Record<FileMode, number> = { '100644': 0x66, '100755': 0x78, '120000': 0x6c } // 'f', 'x', 'l'
const CODE_MODE: Record<number, FileMode> = { 0x66: '100644', 0x78: '100755', 0x6c: '120000' }
const TRUSTED = 0x31 // '1'

// In memory: column per field (paths: the files of tree, with the stat they had when
// hashed), its trees as a set, and each path's position in the columns. The numbers
// sit in one Float64Array (sizes, mtimes, ctimes, inos: n each), the ids as raw bytes:
// loading a cache of 10,000 files allocates a few arrays, not objects per file.
export interface StatCache {
  tree: string | null
  trees: Set<string>
  paths: string[]
  index: Map<string, number>
  modes: Uint8Array // MODE_CODE per file
  nums: Float64Array // [sizes | mtimes | ctimes | inos]
  oids: Buffer // 20 bytes per file
  trusted: Uint8Array // TRUSTED or not, per file
}

export function emptyStatCache(): StatCache {
  return {
    tree: null,
    trees: new Set(),
    paths: [],
    index: new Map(),
    modes: new Uint8Array(0),
    nums: new Float64Array(0),
    oids: Buffer.alloc(0),
    trusted: new Uint8Array(0),
  }
}

export function cacheOid(cache: StatCache, i: number): string {
  return cache.oids.toString('hex', i * 20, i * 20 + 20)
}

export function cacheMode(cache: StatCache, i: number): FileMode | undefined {
  return CODE_MODE[cache.modes[i] ?? 0]
}

function indexOf(paths: string[]): Map<string, number> {
  const index = new Map<string, number>()
  for (let i = 0; i < paths.length; i++) index.set(paths[i] as string, i)
  return index
}

interface JsonV2 {
  version: 2
  tree: string | null
  trees: string[]
  paths: string[]
  modes: string
  sizes: number[]
  mtimes: number[]
  ctimes: number[]
  inos: number[]
  oids: string
  trusted: string
}

function fromColumns(d: Omit<JsonV2, 'version'>): StatCache | null {
  const n = Array.isArray(d.paths) ? d.paths.length : -1
  const ok =
    n >= 0 &&
    [d.sizes, d.mtimes, d.ctimes, d.inos].every((a) => Array.isArray(a) && a.length === n) &&
    typeof d.modes === 'string' &&
    d.modes.length === n &&
    typeof d.trusted === 'string' &&
    d.trusted.length === n &&
    typeof d.oids === 'string' &&
    d.oids.length === n * 40 &&
    /^[0-9a-f]*$/.test(d.oids)
  if (!ok) return null
  const nums = new Float64Array(4 * n)
  nums.set(d.sizes, 0)
  nums.set(d.mtimes, n)
  nums.set(d.ctimes, 2 * n)
  nums.set(d.inos, 3 * n)
  return {
    tree: d.tree,
    trees: new Set(d.trees),
    paths: d.paths,
    index: indexOf(d.paths),
    modes: Buffer.from(d.modes, 'latin1'),
    nums,
    oids: Buffer.from(d.oids, 'hex'),
    trusted: Buffer.from(d.trusted, 'latin1'),
  }
}

function fromJson(text: string): StatCache | null {
  const data = JSON.parse(text) as { version: number; tree: string | null; trees: string[]; rows?: Row[] }
  if (data.version === 2) return fromColumns(data as unknown as JsonV2)
  if (data.version !== 1 || !Array.isArray(data.rows)) return null
  const rows = data.rows
  const code = (m: FileMode): string => String.fromCharCode(MODE_CODE[m] ?? 0)
  return fromColumns({
    tree: data.tree,
    trees: data.trees,
    paths: rows.map((r) => r[0]),
    modes: rows.map((r) => code(r[1])).join(''),
    sizes: rows.map((r) => r[2]),
    mtimes: rows.map((r) => r[3]),
    ctimes: rows.map((r) => r[4]),
    inos: rows.map((r) => r[5]),
    oids: rows.map((r) => r[6]).join(''),
    trusted: rows.map((r) => (r[7] === 1 ? '1' : '0')).join(''),
  })
}

// The version 3 file (the layout of row-file.ts): magic "AASSTAT\x03", meta
// {tree, trees}, number columns sizes, mtimes, ctimes, inos; byte columns modes, trusted.
const MAGIC = Buffer.from('AASSTAT\x03', 'latin1')

function decode(buf: Buffer): StatCache | null {
  const f = decodeRowFile(buf, MAGIC, 4, 2)
  const meta = f?.meta as { tree?: unknown; trees?: unknown } | undefined
  if (!f || !meta || (typeof meta.tree !== 'string' && meta.tree !== null) || !Array.isArray(meta.trees)) return null
  const [modes, trusted] = f.bytes as [Buffer, Buffer]
  return { tree: meta.tree, trees: new Set(meta.trees as string[]), paths: f.paths, index: indexOf(f.paths), modes, nums: f.nums, oids: f.oids, trusted }
}

export async function loadStatCache(stateDir: string): Promise<StatCache> {
  try {
    return decode(await readFile(path.join(stateDir, STAT_CACHE_FILE))) ?? emptyStatCache()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return emptyStatCache() // a damaged cache only costs a full re-hash
  }
  try {
    return fromJson(await readFile(path.join(stateDir, LEGACY_STAT_CACHE_FILE), 'utf8')) ?? emptyStatCache()
  } catch {
    return emptyStatCache()
  }
}

// The oid recorded for an entry, when its stat proves the bytes are unchanged.
// With `racy`, a row hashed within RACY_MS of its mtime counts too: its id is then a
// guess, not a proof (a write in the same clock tick may have kept the stat), for a
// check that is made again on the bytes before anything depends on it.
export function cachedOid(cache: StatCache, e: ScopeEntry, { racy = false }: { racy?: boolean } = {}): string | null {
  const i = cache.index.get(e.path)
  return i === undefined ? null : cachedOidAt(cache, i, e, racy)
}

// cachedOid for the row i already known to be e's path.
export function cachedOidAt(cache: StatCache, i: number, e: Pick<ScopeEntry, 'mode' | 'size' | 'mtimeMs' | 'ctimeMs' | 'ino'>, racy = false): string | null {
  const n = cache.paths.length
  const { nums } = cache
  if ((!racy && cache.trusted[i] !== TRUSTED) || cache.modes[i] !== MODE_CODE[e.mode]) return null
  if (nums[i] !== e.size || nums[n + i] !== e.mtimeMs || nums[2 * n + i] !== e.ctimeMs || nums[3 * n + i] !== e.ino) return null
  return cacheOid(cache, i)
}

function encode(tree: string, trees: Iterable<string>, entries: ArrayLike<{ e: ScopeEntry; oid: string }>, scanStartedMs: number): Buffer {
  const rows = Array.from(entries)
  return encodeRowFile(
    MAGIC,
    { tree, trees: [...trees] },
    rows.map((r) => r.e.path),
    4,
    2,
    (w) =>
      rows.forEach(({ e, oid }, i) => {
        w.num(0, i, e.size)
        w.num(1, i, e.mtimeMs)
        w.num(2, i, e.ctimeMs)
        w.num(3, i, e.ino)
        w.oid(i, oid)
        w.byte(0, i, MODE_CODE[e.mode])
        w.byte(1, i, isRacy(e.mtimeMs, scanStartedMs) ? 0x30 : TRUSTED)
      }),
  )
}

export async function saveStatCache(
  stateDir: string,
  { tree, trees, entries, scanStartedMs }: { tree: string; trees: Iterable<string>; entries: ArrayLike<{ e: ScopeEntry; oid: string }>; scanStartedMs: number },
): Promise<void> {
  const data = encode(tree, trees, entries, scanStartedMs)
  await mkdir(stateDir, { recursive: true })
  const file = path.join(stateDir, STAT_CACHE_FILE)
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, data)
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  // A cache of an earlier version would only be read if this one went missing.
  await rm(path.join(stateDir, LEGACY_STAT_CACHE_FILE), { force: true })
}
