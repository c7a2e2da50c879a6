import { loadSimple, NOT_BUILT } from '../vault/simple-frontmatter.js'

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
  if (LONE_SURROGATE.test(source)) return null
  const values = loadSimple(source, plain)
  if (values === null || values === NOT_BUILT) return null
  const out = Object.entries(values) // in the source's order: no key is an integer (KEY_LINE)
  for (const [key] of out) if (pythonWord(key) !== undefined) return null // `on:`, `no:`: PyYAML's key is a bool or None
  return out
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

// AAS_FAST_YAML=0 (the fast reader's way out) also sends every text to PyYAML, read once.
const TYPED = process.env.AAS_FAST_YAML !== '0'

// A unit's front matter as the bridge gets it: typed when sure, else its YAML text.
export function bridgeFrontmatter(fm: string): { fm: string } | { meta: Array<[string, PythonTypedValue]> } {
  const meta = fm === '' || !TYPED ? null : pythonTypedMeta(fm)
  return meta === null ? { fm } : { meta }
}
