import { parse } from 'yaml'
import { splitUnitText } from '../vault/frontmatter-split.js'

// Change patterns (docs/how-it-works.md, "Change patterns"): the changed units of a run
// grouped by what changed in them, so that a 10,000-unit diff reads as a few lines. Each
// unit's signature comes from its old and new text alone: the front matter is cut into
// its top-level keys as text, and only a key whose lines differ is parsed (memoised, as
// most units share those lines), so a signature costs a few string compares.

export type KeyChangeKind = 'added' | 'removed' | 'changed'

// One front matter key of a pattern. `from`/`to` are the values as shown, or null when
// not shown: long, absent (added/removed), or different from unit to unit of the group.
export interface KeyChange {
  key: string
  change: KeyChangeKind
  from: string | null
  to: string | null
}

export interface ChangePattern {
  label: string // e.g. "schema_version: 1 → 2, + provenance: v1_migrated"
  units: number
  keys: KeyChange[]
  body: boolean // the body changed
  onlyTheseLines: boolean // nothing changed but those keys' lines (and the body, when `body`)
  unexplained: string | null // why front matter edits do not explain the diff; such a group holds one unit
  examples: string[] // up to EXAMPLES paths, or every path of a group of at most OUTLIER_UNITS
  paths: string[] // every unit of the group, sorted
}

// A group of at most this many units lists every path (an outlier).
export const OUTLIER_UNITS = 5
export const EXAMPLES = 3
// A value is shown when its text is at most this long (and on one line).
const SHORT_VALUE = 40
// A group splits by at most this many values of a key (see splitByValues).
const VARIANTS = 5
const MEMO_LIMIT = 20_000

// Marks a value that is not shown (too long) in a unit's signature.
const LONG = '\u0000long'

interface UnitSignature {
  path: string
  struct: string // keys with their kind, body, onlyTheseLines; or the path, when unexplained
  keys: Array<{ key: string; change: KeyChangeKind }>
  values: Array<[string | null, string | null]> // per key: from, to (LONG when too long; null when absent)
  body: boolean
  only: boolean
  unexplained: string | null
}

interface Segments {
  keys: Map<string, string> // key → its lines
  order: string[]
  filler: string // column-0 comments and blank lines, joined
}

// Top-level entries of a front matter source, as text. Null when a line at column 0 is
// neither a key, a comment, a blank line nor a list item (a complex `?` key, say).
function segmentsOf(source: string): Segments | null {
  const keys = new Map<string, string>()
  const order: string[] = []
  const filler: string[] = []
  let current: string | null = null
  let start = 0
  let lines = ''
  const flush = (): void => {
    if (current !== null) keys.set(current, lines)
    current = null
    lines = ''
  }
  while (start < source.length) {
    let end = source.indexOf('\n', start)
    end = end === -1 ? source.length : end + 1
    const line = source.slice(start, end)
    start = end
    const c = line.charAt(0)
    if (c === ' ' || c === '\t' || (c === '-' && /^-(?:[ \t]|\r?\n|$)/.test(line))) {
      if (current === null) return null
      lines += line
      continue
    }
    if (c === '#' || c === '\n' || c === '\r' || c === '') {
      filler.push(line)
      continue
    }
    const key = keyOf(line)
    if (key === null || keys.has(key)) return null
    flush()
    current = key
    order.push(key)
    lines = line
  }
  flush()
  return { keys, order, filler: filler.join('') }
}

const PLAIN_KEY = /^([^\s#'"?{[\]},&*!|>%@`-][^\r\n]*?|-[^\s][^\r\n]*?)[ \t]*:(?:[ \t]|\r?\n|$)/
const QUOTED_KEY = /^("(?:[^"\\\r\n]|\\.)*"|'(?:[^'\r\n]|'')*')[ \t]*:(?:[ \t]|\r?\n|$)/

function keyOf(line: string): string | null {
  // The common case without a regex: `key: value` or `key:` with a plain key.
  const colon = line.indexOf(':')
  const after = line.charCodeAt(colon + 1)
  if (colon > 0 && (after === 32 || after === 10 || after === 9 || after === 13 || Number.isNaN(after)) && /^[a-zA-Z0-9_][\w.-]*$/.test(line.slice(0, colon)))
    return line.slice(0, colon)
  const plain = PLAIN_KEY.exec(line)
  if (plain) return plain[1] as string
  const quoted = QUOTED_KEY.exec(line)
  if (!quoted) return null
  const k = parseMemo(`${quoted[1]}: 0\n`)
  return k.ok ? (Object.keys(k.value as object)[0] ?? null) : null
}

const memo = new Map<string, { ok: true; value: unknown } | { ok: false }>()

function parseMemo(text: string): { ok: true; value: unknown } | { ok: false } {
  let got = memo.get(text)
  if (got) return got
  try {
    got = { ok: true, value: parse(text, { version: '1.2', uniqueKeys: true, logLevel: 'silent' }) as unknown }
  } catch {
    got = { ok: false }
  }
  if (memo.size >= MEMO_LIMIT) memo.clear()
  memo.set(text, got)
  return got
}

// A key's value from its lines, or not ok when they do not parse on their own.
function keyValue(key: string, lines: string): { ok: true; value: unknown } | { ok: false } {
  const parsed = parseMemo(lines)
  if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null) return { ok: false }
  return { ok: true, value: (parsed.value as Record<string, unknown>)[key] }
}

// A value as shown: scalars as written, lists in flow style; LONG when too long to show.
export function showValue(value: unknown): string {
  const text = flow(value)
  return text.length > SHORT_VALUE || /[\r\n]/.test(text) ? LONG : text
}

function flow(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'string') return value === '' ? "''" : value
  if (Array.isArray(value)) return `[${value.map(flow).join(', ')}]`
  if (typeof value === 'object')
    return `{${Object.entries(value as object)
      .map(([k, v]) => `${k}: ${flow(v)}`)
      .join(', ')}}`
  return String(value)
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

// What changed between a unit's old and new text.
export function unitSignature(path: string, before: string, after: string): UnitSignature {
  const unexplained = (reason: string): UnitSignature => ({ path, struct: `!${path}`, keys: [], values: [], body: false, only: false, unexplained: reason })
  const a = splitUnitText(before)
  const b = splitUnitText(after)
  if (a.kind === 'unclosed' || b.kind === 'unclosed') return unexplained('front matter not closed by a --- line')
  const body = a.parts.body !== b.parts.body
  let only = a.parts.bom === b.parts.bom
  if (a.kind === 'frontmatter' && b.kind === 'frontmatter') only &&= a.parts.open === b.parts.open && a.parts.close.trimEnd() === b.parts.close.trimEnd()
  const sa = segmentsOf(a.parts.source)
  const sb = segmentsOf(b.parts.source)
  if (!sa || !sb) return unexplained('front matter layout not analysed (a complex key)')
  if (sa.filler !== sb.filler) only = false
  const keys: UnitSignature['keys'] = []
  const values: UnitSignature['values'] = []
  const kept: string[] = []
  for (const key of sa.order) {
    const old = sa.keys.get(key) as string
    const now = sb.keys.get(key)
    if (now === undefined) {
      const v = keyValue(key, old)
      keys.push({ key, change: 'removed' })
      values.push([v.ok ? showValue(v.value) : LONG, null])
      continue
    }
    if (old === now) {
      kept.push(key)
      continue
    }
    const [va, vb] = [keyValue(key, old), keyValue(key, now)]
    if (va.ok && vb.ok && same(va.value, vb.value)) {
      only = false // the same value, other lines
      kept.push(key)
      continue
    }
    keys.push({ key, change: 'changed' })
    values.push([va.ok ? showValue(va.value) : LONG, vb.ok ? showValue(vb.value) : LONG])
  }
  for (const key of sb.order) {
    if (sa.keys.has(key)) continue
    const v = keyValue(key, sb.keys.get(key) as string)
    keys.push({ key, change: 'added' })
    values.push([null, v.ok ? showValue(v.value) : LONG])
  }
  const keptSet = new Set(kept)
  if (kept.join('\n') !== sb.order.filter((k) => keptSet.has(k)).join('\n')) only = false // reordered
  if (keys.length === 0 && !body)
    return unexplained(a.parts.bom === b.parts.bom ? 'front matter lines changed, no value did' : 'byte order mark added or removed')
  const struct = `${keys.map((k) => `${k.change[0]}${k.key}`).join('\u0001')}\u0002${body ? 'b' : ''}${only ? 'o' : ''}`
  return { path, struct, keys, values, body, only, unexplained: null }
}

// A unit as the collector keeps it: its path and its values, encoded in one string shared
// by every unit with the same values (100,000 changed units then cost a few MB).
interface KeptUnit {
  path: string
  values: string
}

const NONE = '\u0004'
const encodeValues = (values: UnitSignature['values']): string => values.map(([f, t]) => `${f ?? NONE}\u0001${t ?? NONE}`).join('\u0002')
const decodeValues = (text: string): UnitSignature['values'] =>
  text === '' ? [] : text.split('\u0002').map((pair) => pair.split('\u0001').map((x) => (x === NONE ? null : x)) as [string | null, string | null])

// Collects units' signatures as a run's batches come (in any order), then groups them.
export class PatternCollector {
  private readonly groups = new Map<string, { first: UnitSignature; units: KeptUnit[] }>()
  private readonly interned = new Map<string, string>()

  add(path: string, before: string, after: string): void {
    const sig = unitSignature(path, before, after)
    const encoded = encodeValues(sig.values)
    let values = this.interned.get(encoded)
    if (values === undefined) {
      values = encoded
      this.interned.set(encoded, encoded)
    }
    const group = this.groups.get(sig.struct)
    if (group) group.units.push({ path, values })
    else this.groups.set(sig.struct, { first: sig, units: [{ path, values }] })
  }

  // The patterns, largest first (then by label).
  patterns(): ChangePattern[] {
    const out: ChangePattern[] = []
    const decoded = new Map<string, UnitSignature['values']>()
    const valuesOf = (text: string): UnitSignature['values'] => {
      let v = decoded.get(text)
      if (!v) decoded.set(text, (v = decodeValues(text)))
      return v
    }
    for (const { first, units } of this.groups.values()) out.push(...splitByValues(first, units, valuesOf))
    return out.sort((x, y) => y.units - x.units || (x.label < y.label ? -1 : x.label > y.label ? 1 : 0))
  }
}

// Units of one structure, split by the values that are a pattern: per key, the from (and
// the to) values that at least two units share (the VARIANTS most common), or the one
// value of the whole group. A value of one unit alone is its own, not shown.
function splitByValues(first: UnitSignature, units: readonly KeptUnit[], valuesOf: (text: string) => UnitSignature['values']): ChangePattern[] {
  const shown = first.keys.flatMap((_, i) =>
    [0, 1].map((side) => {
      const counts = new Map<string | null, number>()
      for (const u of units) {
        const v = (valuesOf(u.values)[i] as [string | null, string | null])[side] ?? null
        counts.set(v, (counts.get(v) ?? 0) + 1)
      }
      if (counts.size === 1) return new Set(counts.keys())
      const common = [...counts].filter(([v, n]) => n >= 2 && v !== LONG).sort((x, y) => y[1] - x[1])
      return new Set(common.slice(0, VARIANTS).map(([v]) => v))
    }),
  )
  const parts = new Map<string, KeptUnit[]>()
  for (const u of units) {
    const k = valuesOf(u.values)
      .flatMap((v, i) => v.map((x, side) => (shown[i * 2 + side]?.has(x ?? null) ? (x ?? '') : '\u0003')))
      .join('\u0001')
    const list = parts.get(k)
    if (list) list.push(u)
    else parts.set(k, [u])
  }
  return [...parts.values()].map((group) => {
    const values = valuesOf((group[0] as KeptUnit).values)
    const keys = first.keys.map((k, i) => {
      const [from, to] = values[i] as [string | null, string | null]
      const show = (x: string | null, side: number): string | null => (shown[i * 2 + side]?.has(x) && x !== null && x !== LONG ? x : null)
      return { key: k.key, change: k.change, from: show(from, 0), to: show(to, 1) }
    })
    const paths = group.map((g) => g.path).sort()
    return {
      label: first.unexplained ?? patternLabel(keys, first.body, first.only),
      units: paths.length,
      keys,
      body: first.body,
      onlyTheseLines: first.only,
      unexplained: first.unexplained,
      examples: paths.length <= OUTLIER_UNITS ? paths : paths.slice(0, EXAMPLES),
      paths,
    }
  })
}

// "schema_version: 1 → 2, + provenance: v1_migrated, tags changed, body changed".
export function patternLabel(keys: readonly KeyChange[], body: boolean, only: boolean): string {
  const parts = keys.map((k) => {
    if (k.change === 'added') return k.to === null ? `+ ${k.key}` : `+ ${k.key}: ${k.to}`
    if (k.change === 'removed') return k.from === null ? `- ${k.key}` : `- ${k.key}: ${k.from}`
    if (k.from === null && k.to === null) return `${k.key} changed`
    return `${k.key}: ${k.from ?? '…'} → ${k.to ?? '…'}`
  })
  if (body) parts.push('body changed')
  if (!only) parts.push('other front matter lines too')
  return parts.join(', ')
}
