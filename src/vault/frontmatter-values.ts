import { AasError } from '../errors.js'

// Plain values a front matter can hold: what readFrontmatter() returns and what
// writeFrontmatter() accepts.

export type FrontmatterValue = string | number | boolean | null | PlainScalar | FrontmatterValue[] | { [key: string]: FrontmatterValue }

// A scalar written as `text`, unquoted, which this tool reads back as `value`. Only the
// Python bridge makes these: a date or timestamp a .py script set (`2026-01-01` and
// `2026-01-01 10:00:00`, which PyYAML reads as a date and a datetime, stay unquoted as
// PyYAML writes them) or a float as PyYAML writes it (`2.0`, `.nan`). Scripts never
// see one: readFrontmatter() returns `value`.
export class PlainScalar {
  constructor(
    readonly text: string,
    readonly value: string | number,
  ) {}
}

// The values as this tool reads them back: every PlainScalar replaced by its value.
export function readBackValue<T>(value: T): T {
  if (value instanceof PlainScalar) return value.value as T
  if (Array.isArray(value)) return value.map(readBackValue) as T
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, readBackValue(v)])) as T
  return value
}

// Checks a value given to writeFrontmatter() and returns a copy without
// undefined-valued keys (JSON semantics: `meta.x = undefined` removes `x`).
// Anything YAML cannot store as the same plain value on re-read is refused, so
// a script cannot write a Date that would come back as a different string.
export function normaliseMeta(meta: Record<string, unknown>): Record<string, FrontmatterValue> {
  return normaliseObject(meta, [], new Set())
}

function normaliseObject(obj: object, path: string[], seen: Set<object>): Record<string, FrontmatterValue> {
  if (seen.has(obj)) throw invalid(path, 'a value that contains itself (a cycle)', 'Write a tree of plain values, not a structure that refers to itself.')
  seen.add(obj)
  const out: Record<string, FrontmatterValue> = {}
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined) continue
    out[key] = normaliseValue(value, [...path, key], seen)
  }
  seen.delete(obj)
  return out
}

function normaliseValue(value: unknown, path: string[], seen: Set<object>): FrontmatterValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number' || value instanceof PlainScalar) return value
  if (Array.isArray(value)) {
    if (seen.has(value)) throw invalid(path, 'a value that contains itself (a cycle)', 'Write a tree of plain values, not a structure that refers to itself.')
    seen.add(value)
    const out: FrontmatterValue[] = []
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (item === undefined) throw invalid([...path, String(i)], 'undefined in a list', 'Remove the item or write null.')
      out.push(normaliseValue(item, [...path, String(i)], seen))
    }
    seen.delete(value)
    return out
  }
  if (value instanceof Date) {
    throw invalid(path, 'a Date object', "Write dates as 'YYYY-MM-DD' strings, as readFrontmatter() returns them (e.g. date.toISOString().slice(0, 10)).")
  }
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown
    if (proto === Object.prototype || proto === null) return normaliseObject(value, path, seen)
  }
  const kind =
    typeof value === 'object' ? ((Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'object') : typeof value
  throw invalid(path, `a ${kind}`, 'Use only strings, numbers, booleans, null, arrays and plain objects.')
}

function invalid(path: string[], what: string, hint: string): AasError {
  const key = path.length > 0 ? path.join('.') : '(front matter)'
  return new AasError('UNIT_WRITE_INVALID', `writeFrontmatter() got ${what} at ${key}, which front matter cannot store.`, { hint, data: { key } })
}

// Structural equality of plain values; key order of objects does not matter.
export function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof PlainScalar) a = a.value
  if (b instanceof PlainScalar) b = b.value
  if (a === b) return true
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b)
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false
    return true
  }
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  const ob = b as Record<string, unknown>
  const oa = a as Record<string, unknown>
  for (const k of ka) if (!Object.hasOwn(ob, k) || !sameValue(oa[k], ob[k])) return false
  return true
}

export function isPlainObject(v: unknown): v is Record<string, FrontmatterValue> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PlainScalar)
}
