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
// Two callers: the quick reading of a unit's version (./unit-reading.ts, no YAML library
// loaded) and the fast load of every value (./frontmatter-fast.ts), which asks more: no
// scalar whose type two YAML readers could resolve differently. The differential tests
// (test/vault/quick-reading.test.ts, test/vault/fast-load.test.ts) hold both to the full
// parser.

// The line and scalar patterns are shared with ../migrations/python-typed.ts, which types
// the values of a source this scan accepted.

// Characters outside YAML's printable set (and the ones some readers take for line
// breaks or a BOM), tabs, and a carriage return not followed by a line feed.
const UNSURE_CHAR = /[^\n\r\x20-\x7e\u00a0-\u2027\u202a-\ufefe\uff00-\ufffd\ud800-\udfff]|\r(?!\n)/
export const KEY_LINE = /^([A-Za-z_][A-Za-z0-9_-]{0,127}):(?:$| +(.*)$)/
const RESERVED_KEY = /^(?:null|Null|NULL|true|True|TRUE|false|False|FALSE|__proto__)$/
export const SEQ_ITEM = /^( *)- +(.*)$/
export const COMMENT_OR_BLANK = /^ *(?:#.*)?$/
const DECIMAL = /^(?:0|[1-9][0-9]{0,8})$/
// A plain scalar may not start with an indicator (or a space).
const PLAIN_START = /^[^-?:,[\]{}#&*!|>'"%@` ]/
export const DOUBLE_QUOTED = /^"[^"\\]*"/
export const SINGLE_QUOTED = /^'(?:[^']|'')*'/
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

export interface SimpleScanOptions {
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

// Whether the fast load may read this source (see SimpleScanOptions.forLoading).
export function isLoadableSimply(source: string): boolean {
  return scanSimple(source, { forLoading: true }) !== undefined
}

// What loadSimple returns for a loadable source that holds a block scalar (`|`, `>`):
// its values are left to a YAML reader.
export const HAS_BLOCK_SCALAR = Symbol('block scalar')

// The values of a source the fast load may read (isLoadableSimply), built by the scan
// itself as a YAML 1.2 core-schema reader reads them: `null`, `Null`, `NULL` and `~` are
// null, `true`/`false` (and their capitalised forms) booleans, plain decimals numbers,
// every other scalar a string. null when the source is not loadable simply;
// HAS_BLOCK_SCALAR when it is but holds a block scalar. test/vault/fast-load.test.ts holds
// it to the full parser.
export function loadSimple(source: string): Record<string, FrontmatterValue> | null | typeof HAS_BLOCK_SCALAR {
  const values: Record<string, FrontmatterValue> = {}
  const scan = scanSimple(source, { forLoading: true }, values)
  if (scan === undefined) return null
  return scan.block ? HAS_BLOCK_SCALAR : values
}

// A plain scalar's value in the core schema (its text already passed plainAgreed).
function corePlain(text: string): FrontmatterValue {
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

// A scalar as written (quoted without escapes, or plain): its value.
function scalarValue(text: string): FrontmatterValue {
  const first = text.charCodeAt(0)
  if (first === 34 /* " */) return text.slice(1, -1)
  if (first === 39 /* ' */) return text.slice(1, -1).replaceAll("''", "'")
  return corePlain(text)
}

function builtValue(v: SimpleValue): FrontmatterValue {
  if (v.kind === 'list') return v.items.map(scalarValue)
  if (v.kind === 'plain' || v.kind === 'string') return scalarValue(v.text)
  return null // empty (a block list that follows replaces it); block: not built
}

// values: when given, each key's value is set in it as the scan goes (see loadSimple).
function scanSimple(
  source: string,
  { forLoading = false }: SimpleScanOptions,
  values?: Record<string, FrontmatterValue>,
): { version: number | null; block: boolean } | undefined {
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
  let block = false // a block scalar was seen
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
      if (values) {
        const list = values[listKey]
        if (Array.isArray(list)) list.push(builtValue(value))
        else values[listKey] = [builtValue(value)]
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
    if (value.kind === 'block') block = true
    if (values) {
      values[key] = builtValue(value)
      listKey = key
    }
    if (key !== 'schema_version') continue
    if (value.kind === 'plain') {
      if (!DECIMAL.test(value.text)) return undefined
      version = Number(value.text)
    }
  }
  return { version, block }
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
