import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { FileMode, ScopeEntry } from '../vault/walk.js'

// The store's memory of what it hashed last time, so a repeat snapshot reads only
// files whose stat changed. Kept under <gitDir>/aas/, shared by both backends (same ids).

export const STAT_CACHE_FILE = 'stat-cache.json'
// Files modified this close to (or after) the start of a scan may change again within
// the clock's granularity without a visible stat change: never trust them next time.
const RACY_MS = 2000

// Whether a file with this mtime may still change without a visible stat change, seen
// from a scan that started at scanStartedMs: its bytes read now prove nothing later.
export function isRacy(mtimeMs: number, scanStartedMs: number): boolean {
  return !(mtimeMs < scanStartedMs - RACY_MS)
}

type Row = [path: string, mode: FileMode, size: number, mtimeMs: number, ctimeMs: number, ino: number, oid: string, trusted: 0 | 1]

const MODE_CODE: Record<FileMode, string> = { '100644': 'f', '100755': 'x', '120000': 'l' }
const CODE_MODE: Record<string, FileMode> = { f: '100644', x: '100755', l: '120000' }

// The cache file (version 2) is columnar: a list of paths, one list per number, the
// ids as one hex string and modes and trust as one character each. Parsing and writing
// it allocate a few arrays instead of an array per file (version 1 is still read).
interface CacheFileV2 {
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

// In memory: the file's columns (paths: the files of tree, with the stat they had when
// hashed), its trees as a set, and each path's position in the columns.
export interface StatCache extends Omit<CacheFileV2, 'version' | 'trees'> {
  trees: Set<string>
  index: Map<string, number>
}

export function emptyStatCache(): StatCache {
  return { tree: null, trees: new Set(), paths: [], index: new Map(), modes: '', sizes: [], mtimes: [], ctimes: [], inos: [], oids: '', trusted: '' }
}

export function cacheOid(cache: StatCache, i: number): string {
  return cache.oids.slice(i * 40, i * 40 + 40)
}

export function cacheMode(cache: StatCache, i: number): FileMode | undefined {
  return CODE_MODE[cache.modes[i] ?? '']
}

function fromV2(d: CacheFileV2): StatCache | null {
  const n = d.paths.length
  const ok =
    Array.isArray(d.paths) &&
    [d.sizes, d.mtimes, d.ctimes, d.inos].every((a) => Array.isArray(a) && a.length === n) &&
    typeof d.modes === 'string' && d.modes.length === n &&
    typeof d.trusted === 'string' && d.trusted.length === n &&
    typeof d.oids === 'string' && d.oids.length === n * 40
  if (!ok) return null
  const index = new Map<string, number>()
  d.paths.forEach((p, i) => index.set(p, i))
  return { tree: d.tree, trees: new Set(d.trees), paths: d.paths, index, modes: d.modes, sizes: d.sizes, mtimes: d.mtimes, ctimes: d.ctimes, inos: d.inos, oids: d.oids, trusted: d.trusted }
}

function fromV1(rows: Row[], tree: string | null, trees: string[]): StatCache {
  return fromV2({
    version: 2,
    tree,
    trees,
    paths: rows.map((r) => r[0]),
    modes: rows.map((r) => MODE_CODE[r[1]]).join(''),
    sizes: rows.map((r) => r[2]),
    mtimes: rows.map((r) => r[3]),
    ctimes: rows.map((r) => r[4]),
    inos: rows.map((r) => r[5]),
    oids: rows.map((r) => r[6]).join(''),
    trusted: rows.map((r) => (r[7] === 1 ? '1' : '0')).join(''),
  }) as StatCache
}

export async function loadStatCache(stateDir: string): Promise<StatCache> {
  let text: string
  try {
    text = await readFile(path.join(stateDir, STAT_CACHE_FILE), 'utf8')
  } catch {
    return emptyStatCache()
  }
  try {
    const data = JSON.parse(text) as { version: number; tree: string | null; trees: string[]; rows?: Row[] }
    if (data.version === 2) return fromV2(data as unknown as CacheFileV2) ?? emptyStatCache()
    if (data.version !== 1 || !Array.isArray(data.rows)) return emptyStatCache()
    return fromV1(data.rows, data.tree, data.trees)
  } catch {
    return emptyStatCache() // a damaged cache only costs a full re-hash
  }
}

// The oid recorded for an entry, when its stat proves the bytes are unchanged.
export function cachedOid(cache: StatCache, e: ScopeEntry): string | null {
  const i = cache.index.get(e.path)
  if (i === undefined || cache.trusted[i] !== '1') return null
  if (cache.modes[i] !== MODE_CODE[e.mode] || cache.sizes[i] !== e.size || cache.mtimes[i] !== e.mtimeMs || cache.ctimes[i] !== e.ctimeMs || cache.inos[i] !== e.ino) return null
  return cacheOid(cache, i)
}

export async function saveStatCache(
  stateDir: string,
  { tree, trees, entries, scanStartedMs }: { tree: string; trees: Iterable<string>; entries: Array<{ e: ScopeEntry; oid: string }>; scanStartedMs: number },
): Promise<void> {
  const data: CacheFileV2 = {
    version: 2,
    tree,
    trees: [...trees],
    paths: entries.map(({ e }) => e.path),
    modes: entries.map(({ e }) => MODE_CODE[e.mode]).join(''),
    sizes: entries.map(({ e }) => e.size),
    mtimes: entries.map(({ e }) => e.mtimeMs),
    ctimes: entries.map(({ e }) => e.ctimeMs),
    inos: entries.map(({ e }) => e.ino),
    oids: entries.map(({ oid }) => oid).join(''),
    trusted: entries.map(({ e }) => (isRacy(e.mtimeMs, scanStartedMs) ? '0' : '1')).join(''),
  }
  await mkdir(stateDir, { recursive: true })
  const file = path.join(stateDir, STAT_CACHE_FILE)
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, JSON.stringify(data))
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
