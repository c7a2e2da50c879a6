import { isUtf8 } from 'node:buffer'
import { createHash } from 'node:crypto'
import path from 'node:path'
import type { FrontmatterParseError, ParsedUnitResult } from './frontmatter.js'
import { splitUnitText } from './frontmatter-split.js'
import { simpleVersion } from './simple-frontmatter.js'
import { unitTypeOf, type UnitType } from './rules.js'
import { readRegularFileSync, scanVault, type ScanOptions, type ScopeEntry, type VaultScan } from './walk.js'

// A unit's reading (its version, or why it has none) and the inventory built from the
// readings (docs/how-it-works.md, "Units and versions"). This module does not load the
// YAML parser: most front matter is simple enough for quickReading below to decide,
// and the parser (./frontmatter.js) is imported only when a unit needs it.

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

// The version of the rules that turn a unit's bytes into its reading: a cache of readings
// written under other rules is not used (src/git/reading-cache.ts). Bump it with any
// change to what a unit reads as (the parser's rules or its messages included).
export const READING_RULES_VERSION = 1

export type UnitReading = { kind: 'versioned'; version: number } | { kind: 'unversioned' } | { kind: 'unreadable'; error: FrontmatterParseError }

export interface InventoryResult {
  scan: VaultScan
  inventory: Inventory
  // With keepContent: each unit read, by path, with its git blob id, so a caller that
  // snapshots next can reuse bytes and readings of units that did not change meanwhile.
  contents?: Map<string, UnitContent>
  // With a cache: how many units were read from disk (the others were known by their stat).
  read?: number
}

export interface UnitContent {
  oid: string // git blob id of bytes
  bytes: Buffer
  reading: UnitReading
}

// What takeInventory asks of a cache of readings (src/git/reading-cache.ts keeps one in
// the store): the reading of a file whose stat proves its bytes are those read last
// time, the reading of bytes by their blob id, and what was read this time.
export interface ReadingCache {
  byStat(entry: ScopeEntry): UnitReading | null
  byOid(oid: string): UnitReading | null
  record(entry: ScopeEntry, oid: string, reading: UnitReading): void
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

// The reading of a full parse.
export function readingOfParsed(parsed: ParsedUnitResult): UnitReading {
  if (!parsed.ok) return { kind: 'unreadable', error: parsed.error }
  const version = unitVersionOf(parsed.unit.peekFrontmatter())
  return version === null ? { kind: 'unversioned' } : { kind: 'versioned', version }
}

// The quick reading of a decoded unit text, or null when only the full parser can tell.
//
// It decides only front matter made of the simplest YAML: top-level `key: value` lines
// (plain keys), values that are plain one-line scalars, quoted strings without escapes,
// flow lists of such scalars or literal and folded block scalars (`|`, `>-`...), block
// lists of such scalars under an empty value, comments and blank lines. Such text always
// parses, to a mapping whose schema_version is the value of that line. Anything else (an
// indented mapping, a multi-line plain or quoted scalar, anchors, aliases, tags, escapes,
// tabs, a duplicate key, a schema_version that is not a plain decimal, a control
// character...) returns null: the caller parses fully, so the
// result, and every error message, is the full parser's. test/vault/quick-reading.test.ts
// checks that both agree on a corpus and on every fixture.
export function quickReading(text: string): UnitReading | null {
  const split = splitUnitText(text)
  if (split.kind === 'none') return { kind: 'unversioned' }
  if (split.kind === 'unclosed') return null
  const version = simpleVersion(split.parts.source)
  if (version === undefined) return null
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

type ParseUnitText = (text: string) => ParsedUnitResult

export interface InventoryOptions extends Omit<ScanOptions, 'statFile'> {
  onProgress?: (done: number) => void
  keepContent?: boolean
  cache?: ReadingCache
  // false: units are not lstat-ed by the walk (their stat fields stay NaN): for a caller
  // that needs no stat (no cache, no content kept), it saves one system call per unit.
  statUnits?: boolean
}

// Read every unit once and build the inventory (docs/how-it-works.md, "Units and
// versions"). Reads are synchronous: small files from the page cache, where a
// thread-pool round trip per call cost more than the read itself. With a cache, a unit
// whose stat proves it unchanged is not read, and one whose bytes were seen before is
// not parsed. (`concurrency` is accepted for compatibility and unused.)
export async function takeInventory(
  root: string,
  { onProgress, keepContent = false, cache, statUnits = true }: InventoryOptions = {},
): Promise<InventoryResult> {
  const scan = await scanVault(root, statUnits ? {} : { statFile: (rel) => unitTypeOf(rel) === null })
  const contents = keepContent ? new Map<string, UnitContent>() : undefined
  let parse: ParseUnitText | null = null
  let read = 0
  // One unit's bytes at a time (unless kept): the inventory of a large vault stays small.
  const readings: Array<{ entry: ScopeEntry; reading: UnitReading }> = []
  for (const [i, entry] of scan.units.entries()) {
    if (onProgress && (i + 1) % 1000 === 0) onProgress(i + 1)
    const known = !keepContent && cache ? cache.byStat(entry) : null
    if (known) {
      readings.push({ entry, reading: known })
      continue
    }
    read++
    const r = readUnit(root, entry, { hash: keepContent || cache !== undefined })
    if (!r.ok) {
      readings.push({ entry, reading: r.reading })
      continue
    }
    let reading = cache?.byOid(r.oid) ?? null
    if (!reading) {
      const decoded = decodeUnit(r.bytes)
      reading = decoded.ok ? quickReading(decoded.text) : { kind: 'unreadable', error: decoded.error }
      if (!reading && decoded.ok) {
        parse ??= (await import('./frontmatter.js')).parseUnitText
        reading = readingOfParsed(parse(decoded.text))
      }
    }
    cache?.record(entry, r.oid, reading as UnitReading)
    contents?.set(entry.path, { oid: r.oid, bytes: r.bytes, reading: reading as UnitReading })
    readings.push({ entry, reading: reading as UnitReading })
  }
  return { scan, inventory: summarize(readings), ...(contents ? { contents } : {}), ...(cache ? { read } : {}) }
}

export type UnitRead = { ok: true; bytes: Buffer; oid: string } | { ok: false; reading: Extract<UnitReading, { kind: 'unreadable' }> }

// One unit's bytes and blob id (hash: false leaves the id empty), not parsed (a file that
// cannot be read is unreadable).
export function readUnit(root: string, entry: Pick<ScopeEntry, 'path'>, { hash = true }: { hash?: boolean } = {}): UnitRead {
  try {
    const bytes = readRegularFileSync(path.join(root, entry.path))
    return { ok: true, bytes, oid: hash ? blobOid(bytes) : '' }
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    return { ok: false, reading: { kind: 'unreadable', error: { message: `cannot read file: ${e.code ?? e.message}`, line: 0, column: 0 } } }
  }
}

// git's blob id of bytes (sha1 of `blob <len>\0<bytes>`).
function blobOid(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex')
}
