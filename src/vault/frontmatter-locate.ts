import { Pair, Scalar, YAMLMap, YAMLSeq, type Node } from 'yaml'
import { isLoadableSimply } from './simple-frontmatter.js'

// Where each key and value of simple front matter is, without the YAML parser
// (docs/how-it-works.md, "Reading front matter fast"). An edit (./frontmatter-edit.ts)
// needs the place of every top-level key, of its value, and of a block list's items, as
// the `yaml` library's nodes give them: this builds those nodes, with the same ranges,
// from the lines of a source that ./simple-frontmatter.ts calls loadable. The nodes carry
// places and styles only, not values (the values come from the fast load).
// test/vault/fast-load.test.ts compares every range with the parser's.

export interface Located {
  contents: Node | null
}

interface Line {
  start: number // offset of the line's first character
  text: string // without its line break
  next: number // offset after its line break (the next line's start)
}

function linesOf(source: string): Line[] {
  const out: Line[] = []
  let start = 0
  while (start < source.length) {
    const nl = source.indexOf('\n', start)
    const end = nl < 0 ? source.length : nl
    const text = source.slice(start, end > start && source[end - 1] === '\r' ? end - 1 : end)
    out.push({ start, text, next: nl < 0 ? source.length : nl + 1 })
    start = nl < 0 ? source.length : nl + 1
  }
  return out
}

const KEY = /^([A-Za-z_][A-Za-z0-9_-]*):/
const ITEM = /^( *)- +/
const BLANK_OR_COMMENT = /^ *(?:#.*)?$/

// A node's range: [start, end of the value, end of the node]. Edits use the first two;
// the third is the end of the value's line (as the parser has it for one-line values).
function scalarAt(type: Scalar.Type, start: number, end: number, nodeEnd: number): Scalar {
  const s = new Scalar(null)
  s.type = type
  s.range = [start, end, nodeEnd]
  return s
}

// The scalar starting at `at` in line (a quoted string or a plain scalar up to a comment).
function inlineScalar(line: Line, at: number): Scalar {
  const text = line.text
  const c = text[at]
  if (c === '"' || c === "'") {
    let i = at + 1
    for (;;) {
      const q = text.indexOf(c, i)
      if (c === "'" && text[q + 1] === "'") {
        i = q + 2
        continue
      }
      i = q + 1
      break
    }
    return scalarAt(c === '"' ? 'QUOTE_DOUBLE' : 'QUOTE_SINGLE', line.start + at, line.start + i, line.next)
  }
  const hash = text.indexOf(' #', at)
  const end = (hash < 0 ? text : text.slice(0, hash)).trimEnd().length
  return scalarAt('PLAIN', line.start + at, line.start + end, line.next)
}

// `[a, "b"]`: the list and its items' places.
function flowList(line: Line, at: number): YAMLSeq {
  const text = line.text
  const seq = new YAMLSeq()
  seq.flow = true
  let i = at + 1
  for (;;) {
    while (text[i] === ' ') i++
    if (text[i] === ']') break
    const item = text[i] === '"' || text[i] === "'" ? inlineScalar(line, i) : plainFlowItem(line, i)
    seq.items.push(item)
    i = (item.range as [number, number, number])[1] - line.start
    while (text[i] === ' ') i++
    if (text[i] === ',') i++
  }
  seq.range = [line.start + at, line.start + i + 1, line.next]
  return seq
}

function plainFlowItem(line: Line, at: number): Scalar {
  let i = at
  while (i < line.text.length && !',[]{}#:\'"'.includes(line.text[i] as string)) i++
  const end = at + line.text.slice(at, i).trimEnd().length
  return scalarAt('PLAIN', line.start + at, line.start + end, line.start + end)
}

// The nodes of a loadable source, or null when it is not loadable (parse it fully).
export function locateSimple(source: string): Located | null {
  return isLoadableSimply(source) ? locateLoadable(source) : null
}

// The nodes of a source isLoadableSimply accepts (the fast load read it).
export function locateLoadable(source: string): Located {
  const lines = linesOf(source)
  const map = new YAMLMap()
  let k = 0
  while (k < lines.length) {
    const line = lines[k] as Line
    if (BLANK_OR_COMMENT.test(line.text)) {
      k++
      continue
    }
    const m = KEY.exec(line.text) as RegExpExecArray // loadable: every other line is a key line
    const name = m[1] as string
    const key = new Scalar(name)
    key.type = 'PLAIN'
    key.range = [line.start, line.start + name.length, line.start + name.length]
    let at = name.length + 1
    while (line.text[at] === ' ') at++
    const c = line.text[at]
    k++
    let value: Node
    if (c === '|' || c === '>') {
      // A block scalar: its content lines are the indented (or empty) lines that follow.
      const keep = line.text[at + 1] === '+'
      let end = line.next
      let lastContent = line.next
      while (k < lines.length) {
        const l = lines[k] as Line
        if (l.text.trim() !== '' && l.text[0] !== ' ') break
        if (l.text.trim() !== '') lastContent = l.next
        end = l.next
        k++
      }
      const stop = keep ? end : lastContent
      value = scalarAt(c === '|' ? 'BLOCK_LITERAL' : 'BLOCK_FOLDED', line.start + at, stop, stop)
    } else if (c === '[') {
      value = flowList(line, at)
    } else if (c !== undefined && c !== '#') {
      value = inlineScalar(line, at)
    } else {
      // No value on the line: a block list follows, or the value is empty (null).
      const seq = new YAMLSeq()
      let end = -1
      while (k < lines.length) {
        const l = lines[k] as Line
        const item = ITEM.exec(l.text)
        if (item) {
          seq.items.push(inlineScalar(l, item[0].length))
          if (seq.items.length === 1) seq.range = [l.start + (item[1] as string).length, 0, 0]
          end = l.next
        } else if (!BLANK_OR_COMMENT.test(l.text)) break
        k++
      }
      if (end >= 0) {
        const range = seq.range as [number, number, number]
        seq.range = [range[0], end, end]
        value = seq
      } else value = scalarAt('PLAIN', line.start + at, line.start + at, line.start + at)
    }
    map.items.push(new Pair(key, value))
  }
  map.range = [0, source.length, source.length]
  return { contents: map.items.length > 0 ? map : null }
}
