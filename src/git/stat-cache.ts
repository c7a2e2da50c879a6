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

export interface StatCache {
  tree: string | null
  trees: Set<string>
  rows: Map<string, Row>
}

export function emptyStatCache(): StatCache {
  return { tree: null, trees: new Set(), rows: new Map() }
}

export async function loadStatCache(stateDir: string): Promise<StatCache> {
  let text: string
  try {
    text = await readFile(path.join(stateDir, STAT_CACHE_FILE), 'utf8')
  } catch {
    return emptyStatCache()
  }
  try {
    const data = JSON.parse(text) as { version: number; tree: string | null; trees: string[]; rows: Row[] }
    if (data.version !== 1 || !Array.isArray(data.rows)) return emptyStatCache()
    return { tree: data.tree, trees: new Set(data.trees), rows: new Map(data.rows.map((r) => [r[0], r])) }
  } catch {
    return emptyStatCache() // a damaged cache only costs a full re-hash
  }
}

// The oid recorded for an entry, when its stat proves the bytes are unchanged.
export function cachedOid(cache: StatCache, e: ScopeEntry): string | null {
  const r = cache.rows.get(e.path)
  if (!r || r[7] !== 1) return null
  if (r[1] !== e.mode || r[2] !== e.size || r[3] !== e.mtimeMs || r[4] !== e.ctimeMs || r[5] !== e.ino) return null
  return r[6]
}

export async function saveStatCache(
  stateDir: string,
  { tree, trees, entries, scanStartedMs }: { tree: string; trees: Iterable<string>; entries: Array<{ e: ScopeEntry; oid: string }>; scanStartedMs: number },
): Promise<void> {
  const rows: Row[] = entries.map(({ e, oid }) => [
    e.path,
    e.mode,
    e.size,
    e.mtimeMs,
    e.ctimeMs,
    e.ino,
    oid,
    isRacy(e.mtimeMs, scanStartedMs) ? 0 : 1,
  ])
  await mkdir(stateDir, { recursive: true })
  const file = path.join(stateDir, STAT_CACHE_FILE)
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, JSON.stringify({ version: 1, tree, trees: [...trees], rows }))
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
