import { isUtf8 } from 'node:buffer'
import { createHash } from 'node:crypto'
import path from 'node:path'
import type { UnitType } from './rules.js'
import { parseUnitText, type FrontmatterParseError } from './frontmatter.js'
import { readRegularFileSync, scanVault, type ScanOptions, type ScopeEntry, type VaultScan } from './walk.js'

export interface UnreadableUnit {
  unitId: string
  unitType: UnitType
  message: string
  line: number
  column: number
}

export interface VersionCount {
  version: number
  memory: number
  wiki: number
  total: number
}

export interface Inventory {
  units: number
  vaultVersion: number | null // minimum unit version (unversioned units count as 0); null: no readable unit, an empty vault
  versions: VersionCount[] // ascending
  unversioned: Array<{ unitId: string; unitType: UnitType }>
  unreadable: UnreadableUnit[]
}

export interface InventoryResult {
  scan: VaultScan
  inventory: Inventory
  // With keepContent: each unit read, by path, with its git blob id, so a caller that
  // snapshots next can reuse bytes and readings of units that did not change meanwhile.
  contents?: Map<string, UnitContent>
}

export interface UnitContent {
  oid: string // git blob id of bytes
  bytes: Buffer
  reading: UnitReading
}

// The integer schema_version of parsed front matter, or null when it is missing or not an integer.
export function unitVersionOf(meta: Readonly<Record<string, unknown>>): number | null {
  const v = meta.schema_version
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null
}

// Decode a unit's bytes: a file that is not valid UTF-8 is unreadable rather than silently mangled.
export function decodeUnit(bytes: Buffer): { ok: true; text: string } | { ok: false; error: FrontmatterParseError } {
  const text = bytes.toString('utf8')
  if (!isUtf8(bytes)) {
    const bad = text.indexOf('\uFFFD')
    const before = text.slice(0, Math.max(bad, 0))
    const line = before.split('\n').length
    const column = bad - before.lastIndexOf('\n')
    return { ok: false, error: { message: 'file is not valid UTF-8 (or contains binary data)', line, column } }
  }
  if (text.includes('\u0000')) {
    const at = text.indexOf('\u0000')
    const before = text.slice(0, at)
    return {
      ok: false,
      error: { message: 'file contains NUL bytes (binary content with a .md name)', line: before.split('\n').length, column: at - before.lastIndexOf('\n') },
    }
  }
  return { ok: true, text }
}

export type UnitReading = { kind: 'versioned'; version: number } | { kind: 'unversioned' } | { kind: 'unreadable'; error: FrontmatterParseError }

// Classify one unit's content without executing anything.
export function readUnitVersion(bytes: Buffer): UnitReading {
  const decoded = decodeUnit(bytes)
  if (!decoded.ok) return { kind: 'unreadable', error: decoded.error }
  return readingOfText(decoded.text)
}

// The reading of a decoded unit text.
export function readingOfText(text: string): UnitReading {
  const parsed = parseUnitText(text)
  if (!parsed.ok) return { kind: 'unreadable', error: parsed.error }
  const version = unitVersionOf(parsed.unit.peekFrontmatter())
  return version === null ? { kind: 'unversioned' } : { kind: 'versioned', version }
}

export function summarize(readings: ReadonlyArray<{ entry: Pick<ScopeEntry, 'path' | 'unitType'>; reading: UnitReading }>): Inventory {
  const counts = new Map<number, VersionCount>()
  const unversioned: Inventory['unversioned'] = []
  const unreadable: UnreadableUnit[] = []
  for (const { entry, reading } of readings) {
    const unitType = entry.unitType as UnitType
    if (reading.kind === 'unreadable') {
      unreadable.push({ unitId: entry.path, unitType, ...reading.error })
      continue
    }
    const version = reading.kind === 'versioned' ? reading.version : 0
    if (reading.kind === 'unversioned') unversioned.push({ unitId: entry.path, unitType })
    const row = counts.get(version) ?? { version, memory: 0, wiki: 0, total: 0 }
    row[unitType]++
    row.total++
    counts.set(version, row)
  }
  const versions = [...counts.values()].sort((a, b) => a.version - b.version)
  return {
    units: readings.length,
    vaultVersion: versions[0]?.version ?? null,
    versions,
    unversioned,
    unreadable,
  }
}

// Read every unit once and build the inventory (docs/how-it-works.md, "Units and
// versions"). Reads are synchronous: small files from the page cache, where a
// thread-pool round trip per call cost more than the read itself. (`concurrency` is
// accepted for compatibility and unused.)
export async function takeInventory(
  root: string,
  { onProgress, keepContent = false }: ScanOptions & { onProgress?: (done: number) => void; keepContent?: boolean } = {},
): Promise<InventoryResult> {
  const scan = await scanVault(root)
  const contents = keepContent ? new Map<string, UnitContent>() : undefined
  // One unit's bytes at a time (unless kept): the inventory of a large vault stays small.
  const readings = scan.units.map((entry, i) => {
    const read = readUnit(root, entry)
    if (onProgress && (i + 1) % 1000 === 0) onProgress(i + 1)
    if (!read.ok) return { entry, reading: read.reading }
    const reading = readUnitVersion(read.bytes)
    contents?.set(entry.path, { oid: read.oid, bytes: read.bytes, reading })
    return { entry, reading }
  })
  return { scan, inventory: summarize(readings), ...(contents ? { contents } : {}) }
}

// One unit's bytes and blob id, not parsed (a file that cannot be read is unreadable).
export function readUnit(root: string, entry: Pick<ScopeEntry, 'path'>): UnitRead {
  try {
    const bytes = readRegularFileSync(path.join(root, entry.path))
    return { ok: true, bytes, oid: blobOid(bytes) }
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    return { ok: false, reading: { kind: 'unreadable', error: { message: `cannot read file: ${e.code ?? e.message}`, line: 0, column: 0 } } }
  }
}

export type UnitRead = { ok: true; bytes: Buffer; oid: string } | { ok: false; reading: Extract<UnitReading, { kind: 'unreadable' }> }

// git's blob id of bytes (sha1 of `blob <len>\0<bytes>`).
function blobOid(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex')
}
