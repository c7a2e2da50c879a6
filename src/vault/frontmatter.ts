import { parseDocument, isScalar, type Document } from 'yaml'

// PROVISIONAL implementation: the interface is final, the minimal-diff editing
// is not (see the front-matter issue). Other modules depend only on the exports.

export type FrontmatterData = Record<string, unknown>

export interface FrontmatterParseError {
  message: string
  line: number // 1-based, in the whole file
  column: number // 1-based
}

export type ParsedUnitResult = { ok: true; unit: UnitText } | { ok: false; error: FrontmatterParseError }

// A unit's text split into front matter and body, editable in place.
export class UnitText {
  #hasFrontmatter: boolean
  #doc: Document | null
  #fmText: string
  #body: string
  #eol: string
  #bom: string
  #dirty = false

  constructor(parts: { bom: string; eol: string; hasFrontmatter: boolean; fmText: string; doc: Document | null; body: string }) {
    this.#bom = parts.bom
    this.#eol = parts.eol
    this.#hasFrontmatter = parts.hasFrontmatter
    this.#fmText = parts.fmText
    this.#doc = parts.doc
    this.#body = parts.body
  }

  get hasFrontmatter(): boolean {
    return this.#hasFrontmatter
  }

  // A deep copy of the front matter, values as written (dates stay strings).
  readFrontmatter(): FrontmatterData {
    if (!this.#doc) return {}
    const value = this.#doc.toJS({ maxAliasCount: 100 }) as unknown
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as FrontmatterData) : {}
  }

  writeFrontmatter(meta: FrontmatterData): void {
    const doc = this.#doc ?? parseDocument('', { version: '1.2' })
    doc.contents = doc.createNode(meta) as never
    this.#doc = doc
    this.#hasFrontmatter = true
    this.#dirty = true
  }

  readBody(): string {
    return this.#body
  }

  writeBody(text: string): void {
    this.#body = text
  }

  // The whole file text (BOM, delimiters, front matter and body).
  toString(): string {
    if (!this.#hasFrontmatter) return this.#bom + this.#body
    const fm = this.#dirty && this.#doc ? String(this.#doc).replace(/\n/g, this.#eol) : this.#fmText
    return `${this.#bom}---${this.#eol}${fm}---${this.#eol}${this.#body}`
  }
}

export function parseUnitText(text: string): ParsedUnitResult {
  const bom = text.startsWith('\uFEFF') ? '\uFEFF' : ''
  const rest = text.slice(bom.length)
  const eol = rest.includes('\r\n') ? '\r\n' : '\n'
  const open = /^---\r?\n/.exec(rest)
  if (!open) return { ok: true, unit: new UnitText({ bom, eol, hasFrontmatter: false, fmText: '', doc: null, body: rest }) }
  const after = rest.slice(open[0].length)
  const close = /(^|\n)---[ \t]*(\r?\n|$)/.exec(after)
  if (!close) return { ok: false, error: { message: 'front matter is not closed by a --- line', line: 1, column: 1 } }
  const fmText = after.slice(0, close.index + close[1]!.length)
  const body = after.slice(close.index + close[0].length)
  const doc = parseDocument(fmText, { prettyErrors: false, uniqueKeys: true, version: '1.2' })
  const first = doc.errors[0]
  if (first) {
    const pos = first.linePos?.[0]
    return { ok: false, error: { message: first.message.split('\n')[0] ?? first.message, line: (pos?.line ?? 1) + 1, column: pos?.col ?? 1 } }
  }
  void isScalar
  return { ok: true, unit: new UnitText({ bom, eol, hasFrontmatter: true, fmText, doc, body }) }
}
