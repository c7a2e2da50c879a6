import { parseDocument, isMap, isSeq, type Node } from 'yaml'
import { AasError } from '../errors.js'
import { applyEdits, detectStyle, planEdits } from './frontmatter-edit.js'
import { emitMapping } from './frontmatter-emit.js'
import { fastLoad } from './frontmatter-fast.js'
import { locateLoadable, type Located } from './frontmatter-locate.js'
import { splitUnitText, opensFrontmatter, type UnitTextParts } from './frontmatter-split.js'
import { normaliseMeta, readBackValue, sameValue, type FrontmatterValue } from './frontmatter-values.js'

// Reading and writing a unit's front matter so that a write changes only the
// lines of the keys whose values changed (docs/how-it-works.md, "Front matter and
// minimal diffs"). The YAML source is kept and edited as text; the parsed document
// only locates nodes.
// Rules: YAML 1.2 core schema (dates stay 'YYYY-MM-DD' strings), duplicate keys,
// alias bombs, tabs as indentation and non-mapping front matter are unreadable.

export type { FrontmatterValue } from './frontmatter-values.js'

export type FrontmatterData = Record<string, unknown>

export interface FrontmatterParseError {
  message: string
  line: number // 1-based, in the whole file
  column: number // 1-based
}

export type ParsedUnitResult = { ok: true; unit: UnitText } | { ok: false; error: FrontmatterParseError }

// prettyErrors is off: it costs ~20% of a parse, and line:column is computed from the offset.
const PARSE_OPTIONS = { version: '1.2', uniqueKeys: true, prettyErrors: false, strict: true, logLevel: 'silent' } as const
// Aliases may be used, but a document whose aliases expand past this is refused (billion laughs).
const MAX_ALIAS_COUNT = 100

// doc undefined: not built yet (the values came from the fast load; built from the source
// when an edit needs to locate nodes). null: no front matter, or a deferred edit's state.
interface ParsedSource {
  doc: Located | null | undefined
  meta: Record<string, FrontmatterValue>
}

// A unit's text split into front matter and body, editable in place.
export class UnitText {
  #parts: UnitTextParts
  #hasFrontmatter: boolean
  #parsed: ParsedSource
  readonly #original: string
  readonly #deferReadBack: boolean
  // An in-place edit adopted without its read-back (deferReadBack): the state before
  // it and the values it must read back as, checked by settle().
  #pending: { parts: UnitTextParts; parsed: ParsedSource; hasFrontmatter: boolean; meta: Record<string, FrontmatterValue> } | null = null

  constructor(parts: UnitTextParts, hasFrontmatter: boolean, parsed: ParsedSource, { deferReadBack = false }: { deferReadBack?: boolean } = {}) {
    this.#parts = { ...parts }
    this.#hasFrontmatter = hasFrontmatter
    this.#parsed = parsed
    this.#original = this.toString()
    this.#deferReadBack = deferReadBack
  }

  get hasFrontmatter(): boolean {
    return this.#hasFrontmatter
  }

  // A deep copy of the front matter, values as written (dates stay strings).
  readFrontmatter(): FrontmatterData {
    return structuredClone(this.#parsed.meta)
  }

  // The front matter itself, not a copy (structuredClone costs more than the parse of a
  // small unit): for the engine's own reads, which must never change it.
  peekFrontmatter(): Readonly<FrontmatterData> {
    return this.#parsed.meta
  }

  // Full replacement: keys absent from `meta` are removed, changed ones edited in
  // place, new ones appended, unchanged ones left byte for byte. Throws
  // UNIT_WRITE_INVALID for values front matter cannot store.
  writeFrontmatter(meta: FrontmatterData): void {
    this.settle()
    const next = normaliseMeta(meta)
    if (sameValue(this.#parsed.meta, next)) return
    const doc = this.#doc()
    const current = this.#parsed.meta
    const parts = this.#parts
    if (!this.#hasFrontmatter || !doc) {
      const source = toEol(emitMapping(next, detectStyleOrDefault(null, '')), parts.eol)
      this.#commit({ ...parts, open: `---${parts.eol}`, source, close: `---${parts.eol}` }, next)
      return
    }
    const edits = planEdits(parts.source, doc, current, next, parts.eol)
    if (edits && this.#deferReadBack) {
      // Read back later, once for all writes of a step (settle), not once per write.
      this.#pending = { parts, parsed: this.#parsed, hasFrontmatter: this.#hasFrontmatter, meta: next }
      this.#parts = { ...parts, source: applyEdits(parts.source, edits) }
      this.#parsed = { doc: null, meta: readBackValue(next) }
      return
    }
    if (edits && this.#commit({ ...parts, source: applyEdits(parts.source, edits) }, next)) return
    this.#reemit(next)
  }

  // Checks a deferred in-place edit: the edited source must parse to exactly the values
  // written; if not, the edit is replaced by a re-emitted block (as writeFrontmatter
  // does without deferral). Throws UNIT_WRITE_INVALID when neither reads back.
  settle(): void {
    const pending = this.#pending
    if (pending === null) return
    this.#pending = null
    const edited = this.#parts
    if (this.#commit(edited, pending.meta)) return
    this.#parts = { ...pending.parts, body: edited.body, close: edited.close }
    this.#parsed = pending.parsed
    this.#hasFrontmatter = pending.hasFrontmatter
    this.#reemit(pending.meta)
  }

  #reemit(next: Record<string, FrontmatterValue>): void {
    const doc = this.#doc()
    const parts = this.#parts
    // The layout could not be edited in place (or the edit did not read back as
    // written, e.g. through an alias): re-emit the block in the file's style.
    const source = toEol(emitMapping(next, detectStyleOrDefault(doc, parts.source)), parts.eol)
    if (this.#commit({ ...parts, source }, next)) return
    throw new AasError('UNIT_WRITE_INVALID', 'writeFrontmatter() produced front matter that does not read back as the values written.', {
      hint: 'Write plain strings, numbers, booleans, null, lists and maps; report this unit if it persists.',
      data: { keys: Object.keys(next) },
    })
  }

  // Whether every front matter write has been read back (see settle()).
  get settled(): boolean {
    return this.#pending === null
  }

  readBody(): string {
    return this.#parts.body
  }

  // The front matter's YAML text as it stands, without the --- lines ('' when there is
  // none): what the Python bridge parses with PyYAML.
  get frontmatterSource(): string {
    return this.#hasFrontmatter ? this.#parts.source : ''
  }

  writeBody(text: string): void {
    const parts = this.#parts
    if (!this.#hasFrontmatter && opensFrontmatter(text)) {
      throw new AasError(
        'UNIT_WRITE_INVALID',
        'writeBody() got a body that starts with a --- line in a unit without front matter; it would be read back as front matter.',
        {
          hint: 'Write front matter with writeFrontmatter(), or start the body with something other than a --- line.',
          data: {},
        },
      )
    }
    // A closing delimiter at the very end of the file needs a line break before a new body.
    const close = this.#hasFrontmatter && text !== '' && !parts.close.endsWith('\n') ? parts.close + parts.eol : parts.close
    this.#parts = { ...parts, close, body: text }
  }

  // Whether toString() differs from the text this unit was parsed from.
  isDirty(): boolean {
    return this.toString() !== this.#original
  }

  // The whole file text (BOM, delimiters, front matter and body).
  toString(): string {
    const p = this.#parts
    return this.#hasFrontmatter ? p.bom + p.open + p.source + p.close + p.body : p.bom + p.body
  }

  // The nodes of the current source, located now if only its values were read (the fast
  // load read it, so it is simple enough to be located from its lines).
  #doc(): Located | null {
    if (this.#parsed.doc !== undefined) return this.#parsed.doc
    const doc = locateLoadable(this.#parts.source)
    this.#parsed = { doc, meta: this.#parsed.meta }
    return doc
  }

  // Adopts a new front matter source if it parses to exactly `expected`.
  #commit(parts: UnitTextParts, expected: Record<string, FrontmatterValue>): boolean {
    const parsed = loadSource(parts.source)
    if (!parsed.ok || !sameValue(parsed.value.meta, expected)) return false
    this.#parts = parts
    this.#parsed = parsed.value
    this.#hasFrontmatter = true
    return true
  }
}

function detectStyleOrDefault(doc: Located | null, source: string): ReturnType<typeof detectStyle> {
  return doc ? detectStyle(source, doc) : { indent: 2, indentSeq: true, flowPadding: false }
}

function toEol(text: string, eol: string): string {
  return eol === '\n' ? text : text.replace(/\n/g, eol)
}

type SourceResult = { ok: true; value: ParsedSource } | { ok: false; error: { message: string; offset: number } }

// AAS_FAST_YAML=0 turns the fast reader off (every source is parsed fully), read once.
const FAST = process.env.AAS_FAST_YAML !== '0'

// The source's values, from the fast load when it can read them (the document is then
// built only if an edit needs it), else from the full parse.
function loadSource(source: string): SourceResult {
  const fast = FAST ? fastLoad(source) : null
  return fast === null ? parseSource(source) : { ok: true, value: { doc: undefined, meta: fast } }
}

function parseSource(source: string): SourceResult {
  const doc = parseDocument(source, PARSE_OPTIONS)
  const first = doc.errors[0]
  if (first) {
    const message = (first.message.split('\n')[0] ?? first.message).replace(/ at line \d+, column \d+:?$/, '')
    return { ok: false, error: { message, offset: first.pos[0] } }
  }
  const root = doc.contents as Node | null
  if (root === null) return { ok: true, value: { doc, meta: {} } }
  if (!isMap(root)) {
    const found = isSeq(root) ? 'a list' : 'a single value'
    return { ok: false, error: { message: `front matter must be a mapping of keys to values, found ${found}`, offset: root.range?.[0] ?? 0 } }
  }
  let meta: unknown
  try {
    meta = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch (err) {
    return { ok: false, error: { message: `front matter cannot be read: ${(err as Error).message}`, offset: root.range?.[0] ?? 0 } }
  }
  return { ok: true, value: { doc, meta: meta as Record<string, FrontmatterValue> } }
}

// The values of a front matter source by the full parse, or null when it does not parse
// (for the differential test of the fast load).
export function fullLoad(source: string): Record<string, FrontmatterValue> | null {
  const parsed = parseSource(source)
  return parsed.ok ? parsed.value.meta : null
}

// Parses a unit's text. Unreadable front matter is reported with the line and
// column in the whole file; it is never rewritten.
// With deferReadBack, writeFrontmatter's read-back check waits for settle() (the
// migration chain settles once per step, so a step's several writes cost one parse).
export function parseUnitText(text: string, { deferReadBack = false }: { deferReadBack?: boolean } = {}): ParsedUnitResult {
  const split = splitUnitText(text)
  const { parts } = split
  const options = { deferReadBack }
  if (split.kind === 'none') return { ok: true, unit: new UnitText(parts, false, { doc: null, meta: {} }, options) }
  if (split.kind === 'unclosed') {
    return { ok: false, error: { message: "front matter opened by '---' on line 1 is not closed by a '---' line", line: 1, column: 1 } }
  }
  const parsed = loadSource(parts.source)
  if (!parsed.ok) {
    const { message, offset } = parsed.error
    const before = parts.source.slice(0, offset)
    const column = offset - before.lastIndexOf('\n')
    return { ok: false, error: { message, line: countLines(before) + 1, column } } // +1: the opening --- line
  }
  return { ok: true, unit: new UnitText(parts, true, parsed.value, options) }
}

// Parses a unit's bytes; bytes that are not valid UTF-8 make the unit unreadable
// (decoding would replace them, and writing back would change the file).
export function parseUnitBytes(buf: Buffer): ParsedUnitResult {
  const text = buf.toString('utf8')
  const back = Buffer.from(text, 'utf8')
  if (!back.equals(buf)) {
    let i = 0
    while (i < buf.length && buf[i] === back[i]) i++
    const head = buf.subarray(0, i)
    const line = head.filter((b) => b === 0x0a).length + 1
    const column = i - head.lastIndexOf(0x0a)
    return { ok: false, error: { message: `the file is not valid UTF-8 (byte 0x${(buf[i] ?? 0).toString(16)} at offset ${i})`, line, column } }
  }
  return parseUnitText(text)
}

function countLines(text: string): number {
  let n = 1
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++
  return n
}
