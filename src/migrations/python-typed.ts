import { COMMENT_OR_BLANK, DOUBLE_QUOTED, isLoadableSimply, KEY_LINE, SEQ_ITEM, SINGLE_QUOTED } from '../vault/simple-frontmatter.js'

// Front matter handed to the Python bridge already typed, so that the interpreter does
// not parse it (docs/how-it-works.md, "Reading front matter fast"): PyYAML's parse was
// most of a .py step's cost. The values must be exactly what PyYAML's safe loader would
// give a script (YAML 1.1: `yes` is True, `2026-01-15` a datetime.date), so only front
// matter whose every value is sure is typed here; for any other the bridge gets the YAML
// text and PyYAML decides, as before. test/migrations/python-typed.test.ts holds every
// typed value to PyYAML's on a corpus, every fixture, edge cases and random mutations.
//
// What is typed: front matter the fast load reads (src/vault/simple-frontmatter.ts:
// one-line `key: value` lines with plain keys, block or flow lists of one-line scalars,
// comments), without block scalars, whose keys PyYAML reads as strings and whose plain
// scalars are one of: words PyYAML reads as a bool or null, plain decimal integers
// within 2^53, valid YYYY-MM-DD dates, or text no PyYAML resolver claims (its first
// character starts none of them: PyYAML picks resolvers by the first character).

// A value as sent: JSON, with a date tagged as the bridge's protocol tags it.
export type PythonTypedValue = string | number | boolean | null | { $date: string } | PythonTypedValue[]

// The front matter's keys and values in order (pairs: JSON objects do not promise an
// order the bridge could rely on), or null when PyYAML must parse it.
export function pythonTypedMeta(source: string): Array<[string, PythonTypedValue]> | null {
  if (!isLoadableSimply(source) || LONE_SURROGATE.test(source)) return null
  const out: Array<[string, PythonTypedValue]> = []
  let list: PythonTypedValue[] | null = null // the block list of the last key with an empty value
  for (const raw of source.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (COMMENT_OR_BLANK.test(line)) continue
    const item = SEQ_ITEM.exec(line)
    if (item) {
      const value = scalar(item[2] as string)
      if (list === null || value === undefined) return null
      list.push(value)
      continue
    }
    const m = KEY_LINE.exec(line)
    if (!m) return null
    endList(out, list)
    list = null
    const key = m[1] as string
    if (pythonWord(key) !== undefined) return null // `on:`, `no:`: PyYAML's key is a bool or None
    const rest = m[2] ?? ''
    if (rest.trim() === '' || rest.startsWith('#')) {
      // Null, unless block list items follow (then the list is its value: endList).
      list = []
      out.push([key, null])
      continue
    }
    const value = rest.startsWith('[') ? flowList(rest) : scalar(rest)
    if (value === undefined) return null
    out.push([key, value])
  }
  endList(out, list)
  return out
}

// The items under the last key with an empty value become its value.
function endList(out: Array<[string, PythonTypedValue]>, list: PythonTypedValue[] | null): void {
  const last = out[out.length - 1]
  if (last && list !== null && list.length > 0) last[1] = list
}

// Half of a UTF-16 pair (a script's text can hold one; a file read cannot): PyYAML refuses it.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

// PyYAML's bool and null words (its Resolver, YAML 1.1): undefined for any other text.
const PY_TRUE = new Set(['yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON'])
const PY_FALSE = new Set(['no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF'])
const PY_NULL = new Set(['~', 'null', 'Null', 'NULL'])

function pythonWord(text: string): boolean | null | undefined {
  if (PY_TRUE.has(text)) return true
  if (PY_FALSE.has(text)) return false
  if (PY_NULL.has(text)) return null
  return undefined
}

// First characters of PyYAML's number, timestamp, merge and value resolvers: text that
// starts with one is typed here only when it is a plain decimal or a date.
const NUMBERISH_START = /^[-+0-9.<=~]/
const DECIMAL = /^[-+]?(?:0|[1-9][0-9]*)$/
const DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/

// A plain scalar's value as PyYAML types it, or undefined when this cannot be sure.
function plain(text: string): PythonTypedValue | undefined {
  const word = pythonWord(text)
  if (word !== undefined) return word
  if (!NUMBERISH_START.test(text)) return text
  if (DECIMAL.test(text)) {
    const n = Number(text)
    return Number.isSafeInteger(n) ? n : undefined
  }
  const date = DATE.exec(text)
  if (date && isDate(Number(date[1]), Number(date[2]), Number(date[3]))) return { $date: text }
  return undefined
}

// What datetime.date accepts (PyYAML raises on the others).
function isDate(year: number, month: number, day: number): boolean {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] as number
  return day <= days
}

// A one-line scalar after `key: ` or `- `, with its trailing comment; undefined when not sure
// (a block scalar, say). The fast load's scan has already checked its syntax.
function scalar(rest: string): PythonTypedValue | undefined {
  const first = rest[0]
  if (first === '"' || first === "'") return quoted(rest)
  if (first === '|' || first === '>' || first === '[') return undefined
  const hash = rest.indexOf(' #')
  return plain((hash < 0 ? rest : rest.slice(0, hash)).trimEnd())
}

// A quoted scalar at the start of `rest` (no escapes in a double-quoted one: the scan
// refuses them), or undefined.
function quoted(rest: string): string | undefined {
  const q = (rest[0] === '"' ? DOUBLE_QUOTED : SINGLE_QUOTED).exec(rest)
  return q ? unquote(q[0]) : undefined
}

function unquote(text: string): string {
  const inner = text.slice(1, -1)
  return text[0] === "'" ? inner.replace(/''/g, "'") : inner
}

// `[a, 'b', "c"]` (the scan has checked it: items plain without flow indicators, `#` or
// `:`, or quoted without escapes).
function flowList(rest: string): PythonTypedValue[] | undefined {
  const close = closingBracket(rest)
  if (close < 0) return undefined
  const inner = rest.slice(1, close).trim()
  if (inner === '') return []
  const items: PythonTypedValue[] = []
  let i = 0
  while (i < inner.length) {
    let value: PythonTypedValue | undefined
    const c = inner[i]
    if (c === '"' || c === "'") {
      const q = (c === '"' ? DOUBLE_QUOTED : SINGLE_QUOTED).exec(inner.slice(i))
      if (!q) return undefined
      value = unquote(q[0])
      i += q[0].length
    } else {
      let end = inner.indexOf(',', i)
      if (end < 0) end = inner.length
      value = plain(inner.slice(i, end).trim())
      i = end
    }
    if (value === undefined) return undefined
    items.push(value)
    while (inner[i] === ' ') i++
    if (i < inner.length && inner[i] !== ',') return undefined
    i++
    while (inner[i] === ' ') i++
  }
  return items
}

// Where a flow list's `]` is: outside quotes.
function closingBracket(rest: string): number {
  let quote: string | null = null
  for (let i = 1; i < rest.length; i++) {
    const c = rest[i]
    if (quote !== null) {
      if (c === quote) quote = null
    } else if (c === '"' || c === "'") quote = c
    else if (c === ']') return i
  }
  return -1
}

// AAS_FAST_YAML=0 (the fast reader's way out) also sends every text to PyYAML, read once.
const TYPED = process.env.AAS_FAST_YAML !== '0'

// A unit's front matter as the bridge gets it: typed when sure, else its YAML text.
export function bridgeFrontmatter(fm: string): { fm: string } | { meta: Array<[string, PythonTypedValue]> } {
  const meta = fm === '' || !TYPED ? null : pythonTypedMeta(fm)
  return meta === null ? { fm } : { meta }
}
