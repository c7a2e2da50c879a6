import type { FrontmatterValue } from './frontmatter-values.js'

// Front matter simple enough to be read without the full YAML parser (docs/how-it-works.md,
// "Reading front matter fast"): top-level `key: value` lines (plain keys), values that are
// plain one-line scalars, quoted strings without escapes, flow lists of such scalars or
// literal and folded block scalars (`|`, `>-`...), block lists of such scalars under an
// empty value, comments and blank lines. Such text always parses, to a mapping. Anything
// else (an indented mapping, a multi-line plain or quoted scalar, anchors, aliases, tags,
// escapes, tabs, a duplicate key, a control character...) is not simple: the caller
// parses fully, so the result, and every error message, is the full parser's.
//
// Its callers: the quick reading of a unit's version (./unit-reading.ts, no YAML library
// loaded) and the fast load of every value (./frontmatter-fast.ts), which asks more: no
// scalar whose type two YAML readers could resolve differently; the edit's locator
// (./frontmatter-locate.ts) and the values typed for the Python bridge
// (../migrations/python-typed.ts, PyYAML's types), on sources the fast load accepts. The
// differential tests (test/vault/quick-reading.test.ts, test/vault/fast-load.test.ts,
// test/migrations/python-typed.test.ts) hold them to the full parser and to PyYAML.

// Characters outside YAML's printable set (and the ones some readers take for line
// breaks or a BOM), tabs, and a carriage return not followed by a line feed.
const UNSURE_CHAR = /[^\n\r\x20-\x7e\u00a0-\u2027\u202a-\ufefe\uff00-\ufffd\ud800-\udfff]|\r(?!\n)/
const KEY_LINE = /^([A-Za-z_][A-Za-z0-9_-]{0,127}):(?:$| +(.*)$)/
const RESERVED_KEY = /^(?:null|Null|NULL|true|True|TRUE|false|False|FALSE|__proto__)$/
const SEQ_ITEM = /^( *)- +(.*)$/
const COMMENT_OR_BLANK = /^ *(?:#.*)?$/
const DECIMAL = /^(?:0|[1-9][0-9]{0,8})$/
// A plain scalar may not start with an indicator (or a space).
const PLAIN_START = /^[^-?:,[\]{}#&*!|>'"%@` ]/
const DOUBLE_QUOTED = /^"[^"\\]*"/
const SINGLE_QUOTED = /^'(?:[^']|'')*'/
const REST_OF_LINE = /^(?: +#.*| *)$/
// A block scalar's header without an indentation indicator: `|`, `>-`, `|+ # comment`.
const BLOCK_HEADER = /^[|>][-+]?(?: +#.*| *)$/
// Plain text that some YAML reader could take for a number (with underscores, a base
// prefix, an exponent, infinity or NaN): only plain decimals of a few digits are left to
// a fast load, where every reader agrees on the value.
const NUMBER_LIKE = /^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9_]*)?$|^[-+]?0[xXoObB]|^[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)$/
const PLAIN_NUMBER = /^(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?$/

// text: the scalar as written (a plain scalar without its comment, a quoted one with its
// quotes); items: a flow list's items as written.
type SimpleValue =
  | { kind: 'plain'; text: string }
  | { kind: 'string'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'block'; folded: boolean }
  | { kind: 'empty' }

interface SimpleScanOptions {
  // The fast load's stricter rules: plain scalars that look like numbers are plain
  // decimals, a folded block scalar's lines are all equally indented, and no line of a
  // block scalar is spaces only.
  forLoading?: boolean
}

// schema_version of simple front matter: a number, null (absent or not an integer), or
// undefined when the source is not simple enough to be sure.
export function simpleVersion(source: string): number | null | undefined {
  return scanSimple(source, {})?.version
}

// Whether the fast load may read this source (see SimpleScanOptions.forLoading). The
// last source found loadable is remembered: a step reads a unit's values, then edits
// them, and each asks this of the same text (a pure function of the text, so the memo
// cannot be stale).
export function isLoadableSimply(source: string): boolean {
  if (source === lastLoadable) return true
  const loadable = scanSimple(source, { forLoading: true }) !== undefined
  if (loadable) lastLoadable = source
  return loadable
}

let lastLoadable: string | null = null

// What loadSimple returns for a loadable source whose values it does not build: one with
// a block scalar (`|`, `>`), or a plain scalar its reader cannot be sure of. Its values
// are left to a YAML reader.
export const NOT_BUILT = Symbol('not built')

// A reader's value of a plain scalar (its text already passed plainAgreed); undefined
// when it cannot be sure (loadSimple then returns NOT_BUILT).
export type PlainReader<T> = (text: string) => T | undefined

// The values a source the fast load may read (isLoadableSimply), built by the scan
// itself: quoted scalars are strings, an empty value is null (or the block list that
// follows), plain scalars are what `plain` makes of them; by default as a YAML 1.2
// core-schema reader reads them: `null`, `Null`, `NULL` and `~` are null, `true`/`false`
// (and their capitalised forms) booleans, plain decimals numbers, every other scalar a
// string. null when the source is not loadable simply; NOT_BUILT when it is but a value
// is not built here. test/vault/fast-load.test.ts holds the core values to the full
// parser, test/migrations/python-typed.test.ts the Python ones to PyYAML.
export function loadSimple(source: string): Record<string, FrontmatterValue> | null | typeof NOT_BUILT
export function loadSimple<T>(source: string, plain: PlainReader<T>): Record<string, SimpleBuilt<T>> | null | typeof NOT_BUILT
export function loadSimple(source: string, plain: PlainReader<unknown> = corePlain): Record<string, unknown> | null | typeof NOT_BUILT {
  const values: Record<string, unknown> = {}
  const scan = scanSimple(source, { forLoading: true }, { values, plain })
  if (scan === undefined) return null
  lastLoadable = source
  return scan.built ? values : NOT_BUILT
}

// A value loadSimple builds with a reader of plain scalars into T.
export type SimpleBuilt<T> = T | string | null | Array<T | string>

// A plain scalar's value in the core schema (its text already passed plainAgreed).
function corePlain(text: string): string | number | boolean | null {
  switch (text) {
    case 'null':
    case 'Null':
    case 'NULL':
    case '~':
      return null
    case 'true':
    case 'True':
    case 'TRUE':
      return true
    case 'false':
    case 'False':
    case 'FALSE':
      return false
  }
  return PLAIN_NUMBER.test(text) ? Number(text) : text
}

// A scalar as written (quoted without escapes, or plain): its value, undefined when the
// reader of plain scalars cannot be sure.
function scalarValue(text: string, plain: PlainReader<unknown>): unknown {
  const first = text.charCodeAt(0)
  if (first === 34 /* " */) return text.slice(1, -1)
  if (first === 39 /* ' */) return text.slice(1, -1).replaceAll("''", "'")
  return plain(text)
}

// A key's or list item's value (an empty one is null: a block list that follows
// replaces it); undefined when it is not built (a block scalar, an unsure scalar).
function builtValue(v: SimpleValue, plain: PlainReader<unknown>): unknown {
  if (v.kind === 'plain' || v.kind === 'string') return scalarValue(v.text, plain)
  if (v.kind === 'empty') return null
  if (v.kind === 'block') return undefined
  const items: unknown[] = []
  for (const item of v.items) {
    const value = scalarValue(item, plain)
    if (value === undefined) return undefined
    items.push(value)
  }
  return items
}

interface Builder {
  values: Record<string, unknown>
  plain: PlainReader<unknown>
}

// build: when given, each key's value is set in its values as the scan goes, until one
// is not built (see loadSimple); `built` says whether all were.
function scanSimple(source: string, { forLoading = false }: SimpleScanOptions, build?: Builder): { version: number | null; built: boolean } | undefined {
  if (UNSURE_CHAR.test(source)) return undefined
  const lines = source.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  const keys = new Set<string>()
  let version: number | null = null
  // After a key with an empty value: where its block list's items start (-1: none yet).
  let listIndent: number | null = null
  // Within a block scalar: the indentation of its content (-1: no content line yet).
  let blockIndent: number | null = null
  let folded = false
  let building = build !== undefined // every value so far was built
  let listKey = '' // the key a block list's items belong to
  for (const raw of lines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (blockIndent !== null) {
      const indent = line.length - line.trimStart().length
      if (line.trim() === '') {
        // A leading empty line with spaces could be more indented than the content (an error).
        if ((blockIndent === -1 || forLoading) && line.length > 0) return undefined
        continue
      }
      if (indent > 0) {
        if (blockIndent === -1) blockIndent = indent
        else if (indent < blockIndent || (forLoading && folded && indent !== blockIndent)) return undefined
        continue
      }
      blockIndent = null // a line at column 0 ends the scalar
    }
    if (COMMENT_OR_BLANK.test(line)) continue
    const item = SEQ_ITEM.exec(line)
    if (item) {
      const indent = (item[1] as string).length
      if (listIndent === null || (listIndent >= 0 && indent !== listIndent)) return undefined
      const value = simpleValue(item[2] as string, false, forLoading)
      if (value === null || value.kind === 'empty') return undefined
      listIndent = indent
      if (building) {
        const { values, plain } = build as Builder
        const item = builtValue(value, plain)
        const list = values[listKey]
        if (item === undefined) building = false
        else if (Array.isArray(list)) list.push(item)
        else values[listKey] = [item]
      }
      continue
    }
    const m = KEY_LINE.exec(line)
    if (!m) return undefined
    const key = m[1] as string
    if (RESERVED_KEY.test(key) || keys.has(key)) return undefined
    keys.add(key)
    const value = simpleValue(m[2] ?? '', true, forLoading)
    if (value === null) return undefined
    listIndent = value.kind === 'empty' ? -1 : null
    blockIndent = value.kind === 'block' ? -1 : null
    folded = value.kind === 'block' && value.folded
    if (building) {
      const built = builtValue(value, (build as Builder).plain)
      if (built === undefined) building = false
      else (build as Builder).values[key] = built
      listKey = key
    }
    if (key !== 'schema_version') continue
    if (value.kind === 'plain') {
      if (!DECIMAL.test(value.text)) return undefined
      version = Number(value.text)
    }
  }
  return { version, built: building }
}

// A value after `key: ` (or a list item after `- `), or null when it is not simple.
function simpleValue(rest: string, allowList: boolean, forLoading: boolean): SimpleValue | null {
  // `key:`, `key:   ` and `key: # a comment` have no value on the line.
  if (rest.trim() === '' || rest.startsWith('#')) return { kind: 'empty' }
  const first = rest[0]
  if (first === '"' || first === "'") {
    const q = (first === '"' ? DOUBLE_QUOTED : SINGLE_QUOTED).exec(rest)
    return q && REST_OF_LINE.test(rest.slice(q[0].length)) ? { kind: 'string', text: q[0] } : null
  }
  if (first === '[') {
    const items = allowList ? simpleFlowList(rest, forLoading) : null
    return items ? { kind: 'list', items } : null
  }
  if (first === '|' || first === '>') return allowList && BLOCK_HEADER.test(rest) ? { kind: 'block', folded: first === '>' } : null
  if (!PLAIN_START.test(rest)) return null
  const hash = rest.indexOf(' #')
  const text = (hash < 0 ? rest : rest.slice(0, hash)).trimEnd()
  if (text.includes(': ') || text.endsWith(':')) return null
  if (forLoading && !plainAgreed(text)) return null
  return { kind: 'plain', text }
}

// A plain scalar every YAML 1.2 core-schema reader resolves alike.
function plainAgreed(text: string): boolean {
  return !NUMBER_LIKE.test(text) || PLAIN_NUMBER.test(text)
}

// `[a, 'b', "c"]` on one line (then spaces or a comment): items plain (without flow
// indicators, `#`, `:` or quotes) or quoted without escapes; no empty item. Its items as
// written, or null when it is not such a list.
function simpleFlowList(rest: string, forLoading: boolean): string[] | null {
  const items: string[] = []
  let i = 1
  const skipSpaces = (): void => {
    while (rest[i] === ' ') i++
  }
  const closed = (): string[] | null => (REST_OF_LINE.test(rest.slice(i + 1)) ? items : null)
  skipSpaces()
  if (rest[i] === ']') return closed()
  for (;;) {
    const c = rest[i]
    if (c === '"' || c === "'") {
      const q = (c === '"' ? DOUBLE_QUOTED : SINGLE_QUOTED).exec(rest.slice(i))
      if (!q) return null
      items.push(q[0])
      i += q[0].length
    } else {
      const start = i
      while (i < rest.length && !',[]{}#:\'"'.includes(rest[i] as string)) i++
      const item = rest.slice(start, i).trimEnd()
      if (item === '' || !PLAIN_START.test(item) || (forLoading && !plainAgreed(item))) return null
      items.push(item)
    }
    skipSpaces()
    if (rest[i] === ']') return closed()
    if (rest[i] !== ',') return null
    i++
    skipSpaces()
  }
}
