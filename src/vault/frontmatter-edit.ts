import { isAlias, isCollection, isMap, isScalar, isSeq, type Node, type YAMLMap, type YAMLSeq } from 'yaml'
import {
  DEFAULT_STYLE,
  emitFlow,
  emitInlineScalar,
  emitItem,
  emitMapping,
  emitPair,
  type EmitStyle,
  type NodeHints,
  type ScalarStyle,
} from './frontmatter-emit.js'
import type { Located } from './frontmatter-locate.js'
import { isPlainObject, PlainScalar, sameValue, type FrontmatterValue } from './frontmatter-values.js'

// Turns a change of front matter values into text edits on the original YAML
// source, so that everything the change does not touch keeps its bytes:
// unchanged keys, comments, blank lines, quoting and flow/block layout.

export interface TextEdit {
  start: number
  end: number
  text: string
}

// Edits that turn `source` (parsed as `doc`, whose values are `before`) into a
// front matter whose values are `after`; null when the layout cannot be edited
// in place (the caller then re-emits the whole block). `doc`: the parser's document, or
// the nodes ./frontmatter-locate.ts builds for simple front matter (the same places).
export function planEdits(
  source: string,
  doc: Located,
  before: Record<string, FrontmatterValue>,
  after: Record<string, FrontmatterValue>,
  eol: string,
): TextEdit[] | null {
  const patcher = new Patcher(source, doc, eol)
  const root = doc.contents as Node | null
  if (!root) {
    if (Object.keys(after).length === 0) return []
    return [{ start: source.length, end: source.length, text: patcher.lines(emitMapping(after, patcher.style()), 0, true) }]
  }
  if (isMap(root) && !root.flow) return patcher.blockMap(root, before, after, true)
  return patcher.value(root, before, after)
}

// Applies non-overlapping edits, listed in the order of the text they make; at equal
// starts the wider edit goes first so an insertion lands before the text that follows
// it, and of insertions at one point (an item appended to the last list, then a key
// appended to the mapping) the later one goes first, so they end up in their order.
export function applyEdits(source: string, edits: readonly TextEdit[]): string {
  const sorted = edits.map((e, i) => ({ e, i })).sort((a, b) => b.e.start - a.e.start || b.e.end - a.e.end || b.i - a.i)
  let out = source
  for (const { e } of sorted) out = out.slice(0, e.start) + e.text + out.slice(e.end)
  return out
}

class Patcher {
  #style: EmitStyle | undefined
  constructor(
    private readonly src: string,
    private readonly doc: Located,
    private readonly eol: string,
  ) {}

  style(): EmitStyle {
    this.#style ??= detectStyle(this.src, this.doc)
    return this.#style
  }

  value(node: Node | null | undefined, before: unknown, after: FrontmatterValue): TextEdit[] | null {
    if (sameValue(before, after)) return []
    if (!node || isAlias(node) || !node.range) return null
    if (isScalar(node)) {
      if (after !== null && typeof after === 'object' && !(after instanceof PlainScalar)) return null
      const type = node.type as ScalarStyle | undefined
      if (type === 'BLOCK_LITERAL' || type === 'BLOCK_FOLDED') return null
      const [start, end] = node.range
      const text = emitInlineScalar(after, type, this.src.slice(start, end))
      // `key:` with no value: the new value needs a separating space.
      return [{ start, end, text: start === end ? ` ${text}` : text }]
    }
    if (isCollection(node) && node.flow) {
      if (Array.isArray(after) !== isSeq(node) || after === null || typeof after !== 'object' || after instanceof PlainScalar) return null
      // Padding (`[ a ]`) follows this collection's own source where it shows it.
      const padded = node.items.length > 0 ? this.src[node.range[0] + 1] === ' ' : this.style().flowPadding
      return [{ start: node.range[0], end: node.range[1], text: emitFlow(after, { ...this.style(), flowPadding: padded }) }]
    }
    if (isMap(node) && isPlainObject(after) && isPlainObject(before)) return this.blockMap(node, before, after, false)
    if (isSeq(node) && Array.isArray(after) && Array.isArray(before)) return this.blockSeq(node, before, after)
    return null
  }

  blockMap(node: YAMLMap, before: Record<string, unknown>, after: Record<string, FrontmatterValue>, root: boolean): TextEdit[] | null {
    if (!root && Object.keys(after).length === 0) return null // `key: {}` needs the pair re-emitted
    const edits: TextEdit[] = []
    const seen = new Set<string>()
    let lastEnd = -1
    let keyCol = -1
    for (const pair of node.items) {
      const key = pair.key as Node | null
      if (!isScalar(key) || !key.range) return null
      const name = key.value === null ? '' : String(key.value)
      seen.add(name)
      const valueNode = pair.value as Node | null
      const keyStart = key.range[0]
      const end = this.lineEndAfter(valueNode?.range ? valueNode.range[1] : key.range[2])
      lastEnd = Math.max(lastEnd, end)
      if (keyCol < 0) keyCol = this.col(keyStart)
      if (!Object.hasOwn(after, name)) {
        // A removed key disappears with its lines; comments around it stay.
        if (!this.startsLine(keyStart)) return null
        edits.push({ start: this.lineStart(keyStart), end, text: '' })
        continue
      }
      const next = after[name] as FrontmatterValue
      const inPlace = this.value(valueNode, before[name], next)
      if (inPlace) {
        edits.push(...inPlace)
        continue
      }
      const text = emitPair(this.src.slice(keyStart, key.range[1]), next, hintsOf(valueNode), this.style())
      edits.push({ start: keyStart, end, text: this.lines(text, this.col(keyStart), false) })
    }
    const added = Object.keys(after).filter((k) => !seen.has(k))
    if (added.length > 0) {
      if (lastEnd < 0) return null
      const text = added.map((k) => emitMapping({ [k]: after[k] as FrontmatterValue }, this.style())).join('')
      edits.push({ start: lastEnd, end: lastEnd, text: this.lines(text, keyCol, true) })
    }
    return edits
  }

  blockSeq(node: YAMLSeq, before: unknown[], after: FrontmatterValue[]): TextEdit[] | null {
    const items = node.items as Array<Node | null>
    if (after.length === 0 || items.length !== before.length || items.length === 0) return null
    const dashes: number[] = []
    for (const item of items) {
      if (!item?.range) return null
      let p = item.range[0] - 1
      while (p >= 0 && this.src[p] === ' ') p--
      if (this.src[p] !== '-' || !this.startsLine(p)) return null
      dashes.push(p)
    }
    const itemEnd = (i: number): number => this.lineEndAfter(items[i]!.range![1])
    let head = 0
    while (head < before.length && head < after.length && sameValue(before[head], after[head])) head++
    let tail = 0
    while (tail < before.length - head && tail < after.length - head && sameValue(before[before.length - 1 - tail], after[after.length - 1 - tail])) tail++
    const oldCount = before.length - head - tail
    const newItems = after.slice(head, after.length - tail)
    const edits: TextEdit[] = []
    if (oldCount === newItems.length) {
      for (let i = head; i < head + oldCount; i++) {
        const item = items[i]!
        const inPlace = this.value(item, before[i], after[i] as FrontmatterValue)
        if (inPlace) {
          edits.push(...inPlace)
          continue
        }
        const start = item.range![0]
        const text = emitItem(after[i] as FrontmatterValue, hintsOf(item), this.style())
        edits.push({ start, end: itemEnd(i), text: this.lines(text, this.col(start) - 2, false) })
      }
      return edits
    }
    // Items inserted or removed: replace only the lines of the items that differ.
    const dashCol = this.col(dashes[0]!)
    const text = newItems.map((v) => this.lines(`- ${emitItem(v, {}, this.style())}`, dashCol, true)).join('')
    const start = head < items.length ? this.lineStart(dashes[head]!) : itemEnd(items.length - 1)
    const end = oldCount > 0 ? itemEnd(head + oldCount - 1) : start
    edits.push({ start, end, text })
    return edits
  }

  // Indents emitted lines to `col` (the first one too when `first`), in the file's line endings.
  lines(text: string, col: number, first: boolean): string {
    const pad = ' '.repeat(Math.max(0, col))
    const out = text
      .split('\n')
      .map((line, i) => (line === '' || (i === 0 && !first) ? line : pad + line))
      .join('\n')
    return this.eol === '\n' ? out : out.replace(/\n/g, this.eol)
  }

  lineStart(pos: number): number {
    return this.src.lastIndexOf('\n', pos - 1) + 1
  }

  lineEndAfter(pos: number): number {
    if (pos > 0 && this.src[pos - 1] === '\n') return pos
    const i = this.src.indexOf('\n', pos)
    return i < 0 ? this.src.length : i + 1
  }

  col(pos: number): number {
    return pos - this.lineStart(pos)
  }

  startsLine(pos: number): boolean {
    for (let i = this.lineStart(pos); i < pos; i++) if (this.src[i] !== ' ') return false
    return true
  }
}

function hintsOf(node: Node | null | undefined): NodeHints {
  if (isCollection(node)) return { flow: Boolean(node.flow) }
  if (isScalar(node) && (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED')) return { scalarType: node.type }
  return {}
}

// The file's indent step, whether block lists are indented under their key,
// and whether flow collections are padded (`[ a ]`), from the first examples found.
export function detectStyle(src: string, doc: Located): EmitStyle {
  let indent: number | undefined
  let indentSeq: boolean | undefined
  let flowPadding: boolean | undefined
  const colOf = (pos: number): number => pos - (src.lastIndexOf('\n', pos - 1) + 1)
  const walk = (node: unknown, depth: number): void => {
    if (depth > 4 || !isCollection(node)) return
    if (node.flow) {
      if (flowPadding === undefined && node.items.length > 0 && node.range) flowPadding = src[node.range[0] + 1] === ' '
      return
    }
    if (!isMap(node)) {
      for (const item of node.items) walk(item, depth + 1)
      return
    }
    for (const pair of node.items) {
      const key = pair.key as Node | null
      const value = pair.value as Node | null
      if (key?.range && isCollection(value) && !value.flow && value.range && value.items.length > 0) {
        const keyCol = colOf(key.range[0])
        if (isMap(value) && indent === undefined) {
          const first = value.items[0]?.key as Node | null | undefined
          if (first?.range) indent = colOf(first.range[0]) - keyCol
        }
        if (isSeq(value) && indentSeq === undefined) {
          let p = value.range[0]
          while (p > 0 && src[p] !== '-') p--
          indentSeq = colOf(p) > keyCol
          if (indentSeq && indent === undefined) indent = colOf(p) - keyCol
        }
      }
      walk(value, depth + 1)
    }
  }
  walk(doc.contents, 0)
  return {
    indent: indent && indent > 0 ? indent : DEFAULT_STYLE.indent,
    indentSeq: indentSeq ?? DEFAULT_STYLE.indentSeq,
    flowPadding: flowPadding ?? DEFAULT_STYLE.flowPadding,
  }
}
