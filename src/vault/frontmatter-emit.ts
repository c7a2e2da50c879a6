import {
  Document,
  Pair,
  Scalar,
  YAMLMap,
  YAMLSeq,
  isScalar,
  parse,
  visit,
  type DocumentOptions,
  type Node,
  type ScalarTag,
  type SchemaOptions,
  type ToStringOptions,
} from 'yaml'
import { PlainScalar, type FrontmatterValue } from './frontmatter-values.js'

// Serialises the values a migration writes, in the file's own style (indent
// step, sequence indentation, flow padding), never folding long lines, and
// quoting any string that YAML 1.2 or 1.1 readers would take for something else.

export interface EmitStyle {
  indent: number
  indentSeq: boolean
  flowPadding: boolean
}

export type ScalarStyle = 'PLAIN' | 'QUOTE_SINGLE' | 'QUOTE_DOUBLE' | 'BLOCK_LITERAL' | 'BLOCK_FOLDED'

export interface NodeHints {
  flow?: boolean // emit collections in flow style ([a, b])
  scalarType?: ScalarStyle // keep the style the old value had
}

export const DEFAULT_STYLE: EmitStyle = { indent: 2, indentSeq: true, flowPadding: false }

const DATE = /^\d{4}-\d\d-\d\d$/
const NEEDS_DOUBLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/
const SILENT = { logLevel: 'silent' } as const
// A PlainScalar is written as its text, with no tag and no quotes.
const PLAIN_TAG: ScalarTag = {
  tag: 'tag:aas-migrate.invalid,2026:plain',
  default: true,
  identify: (v: unknown) => v instanceof PlainScalar,
  resolve: (s: string) => s,
  stringify: (item) => (item.value as PlainScalar).text,
}
const DOC_OPTIONS: DocumentOptions & SchemaOptions = { version: '1.2', customTags: [PLAIN_TAG] }
const plainCache = new Map<string, boolean>()

// Whether `s` written without quotes reads back as the same string under YAML
// 1.2 (this tool) and 1.1 (the Python runner: `yes`, `2026-01-01`, `0755`).
export function plainReadsBack(s: string): boolean {
  const cached = plainCache.get(s)
  if (cached !== undefined) return cached
  let ok = false
  if (s !== '' && s === s.trim() && !/[\n\r\t]/.test(s) && !NEEDS_DOUBLE.test(s)) {
    try {
      ok = parse(s, { version: '1.2', ...SILENT }) === s && parse(s, { version: '1.1', ...SILENT }) === s
    } catch {
      ok = false
    }
  }
  if (plainCache.size > 10_000) plainCache.clear()
  plainCache.set(s, ok)
  return ok
}

// A one-line replacement for an edited scalar, keeping the old quoting style
// where it can represent the new value. `oldSource` is the old scalar's text.
export function emitInlineScalar(value: string | number | boolean | null | PlainScalar, oldType: ScalarStyle | undefined, oldSource: string): string {
  if (value === null) return 'null'
  if (value instanceof PlainScalar) return value.text
  if (typeof value === 'boolean') return String(value)
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < 1e21 ? String(value) : toYaml(new Document(value), DEFAULT_STYLE).trimEnd()
  if (value.includes('\n') || NEEDS_DOUBLE.test(value) || oldType === 'QUOTE_DOUBLE') return JSON.stringify(value)
  if (oldType === 'QUOTE_SINGLE') return singleQuoted(value)
  // A plain date stays plain when it replaces a plain date: that is the vault's own style.
  if (plainReadsBack(value) || (oldType === 'PLAIN' && DATE.test(value) && DATE.test(oldSource))) return value
  return singleQuoted(value)
}

function singleQuoted(s: string): string {
  return `'${s.replace(/'/g, "''")}'`
}

// A yaml node for a new value, with strings quoted where a plain form would be misread.
export function createValueNode(value: FrontmatterValue, hints: NodeHints = {}): Node {
  const doc = new Document(null, DOC_OPTIONS)
  const node = doc.createNode(value, { flow: hints.flow ?? false }) as Node
  visit(node, {
    Scalar(_key, scalar) {
      const v = scalar.value
      if (typeof v !== 'string' || v.includes('\n')) return
      if (NEEDS_DOUBLE.test(v)) scalar.type = 'QUOTE_DOUBLE'
      else if (!plainReadsBack(v)) scalar.type = 'QUOTE_SINGLE'
    },
  })
  const keep = hints.scalarType
  if (isScalar(node) && typeof node.value === 'string' && keep && keep !== 'PLAIN' && node.type !== 'QUOTE_DOUBLE') node.type = keep
  return node
}

// `key: value` lines for a pair; continuation lines are relative to the key's column.
export function emitPair(keySource: string, value: FrontmatterValue, hints: NodeHints, style: EmitStyle): string {
  const map = new YAMLMap()
  map.items.push(new Pair(new Scalar('x'), createValueNode(value, hints)))
  const text = toYaml(docOf(map), style, hints)
  return keySource + text.slice(1)
}

// A sequence item without its `- `; continuation lines are relative to the dash's column + 2.
export function emitItem(value: FrontmatterValue, hints: NodeHints, style: EmitStyle): string {
  const seq = new YAMLSeq()
  seq.items.push(createValueNode(value, hints))
  return toYaml(docOf(seq), style, hints).slice(2)
}

// A flow collection on one line, e.g. `[debt, strategy]`.
export function emitFlow(value: FrontmatterValue, style: EmitStyle): string {
  return toYaml(docOf(createValueNode(value, { flow: true })), style).trimEnd()
}

// A whole front matter block for a unit that had none (or when editing in place is impossible).
export function emitMapping(meta: Record<string, FrontmatterValue>, style: EmitStyle): string {
  if (Object.keys(meta).length === 0) return ''
  return emitSimpleMapping(meta) ?? emitMappingByDocument(meta, style)
}

// The same text through a yaml document, for any values.
export function emitMappingByDocument(meta: Record<string, FrontmatterValue>, style: EmitStyle): string {
  return toYaml(docOf(createValueNode(meta)), style)
}

// Keys and strings of a few safe characters: written plain by yaml whenever they read back
// as the same string (plainReadsBack), and never folded (lineWidth 0).
const SIMPLE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/
const SIMPLE_STRING = /^[A-Za-z0-9_](?:[A-Za-z0-9_ ./-]*[A-Za-z0-9_./-])?$/

// `key: value` lines of a mapping whose keys and values are all one-line scalars written
// plain, as emitMappingByDocument writes them, without building a document per call (a
// key a migration adds cost more to emit than the rest of its edit); null for anything
// else. test/vault/frontmatter-emit.test.ts holds the two to the same text.
export function emitSimpleMapping(meta: Record<string, FrontmatterValue>): string | null {
  let out = ''
  for (const [key, value] of Object.entries(meta)) {
    if (!SIMPLE_KEY.test(key) || !plainReadsBack(key)) return null
    let text: string
    if (value === null) text = 'null'
    else if (typeof value === 'boolean') text = String(value)
    else if (typeof value === 'number') {
      if (!Number.isSafeInteger(value) || Object.is(value, -0)) return null
      text = String(value)
    } else if (typeof value === 'string') {
      if (!SIMPLE_STRING.test(value) || !plainReadsBack(value)) return null
      text = value
    } else return null
    out += `${key}: ${text}\n`
  }
  return out
}

function docOf(node: Node): Document {
  const doc = new Document(null, DOC_OPTIONS)
  doc.contents = node as never
  return doc
}

function toYaml(doc: Document, style: EmitStyle, hints: NodeHints = {}): string {
  const options: ToStringOptions = {
    indent: style.indent,
    indentSeq: style.indentSeq,
    flowCollectionPadding: style.flowPadding,
    // Folded scalars keep folding at the usual width; nothing else is ever folded.
    lineWidth: hints.scalarType === 'BLOCK_FOLDED' ? 80 : 0,
    minContentWidth: 0,
    singleQuote: true,
  }
  return doc.toString(options)
}
