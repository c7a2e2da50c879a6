// Splits a unit's text into BOM, opening line, front matter source, closing line
// and body, byte for byte: concatenating the parts gives back the input.
//
// gray-matter is not used for this: it caches results by content, strips the line
// break after the closing delimiter and closes on any line that merely starts with
// `---`, so its split is not byte-exact. The delimiter rules below follow it where
// it is exact: `---` must open the file (after an optional BOM) and a line starting
// with `----` does not open front matter; `...` does not close it (YAML's own
// document-end marker stays part of the front matter source).
//
// Delimiter lines are `---` optionally followed by spaces or tabs (an editor's
// trailing whitespace), then a line break; the closing line may also end the file.

export interface UnitTextParts {
  bom: string // '' or '\uFEFF'
  open: string // the opening delimiter line with its line break, '' without front matter
  source: string // front matter YAML source, always ending with a line break unless empty
  close: string // the closing delimiter line with its line break (if any), '' without front matter
  body: string
  eol: '\n' | '\r\n' // the line break new lines are written with
}

export type SplitResult = { kind: 'frontmatter'; parts: UnitTextParts } | { kind: 'none'; parts: UnitTextParts } | { kind: 'unclosed'; parts: UnitTextParts }

const OPEN = /^---[ \t]*(\r?\n)/
const CLOSE = /^---[ \t]*(?:\r?\n|(?![\s\S]))/gm

export function splitUnitText(text: string): SplitResult {
  const bom = text.startsWith('\uFEFF') ? '\uFEFF' : ''
  const rest = bom ? text.slice(1) : text
  const open = OPEN.exec(rest)
  if (!open) return { kind: 'none', parts: { bom, open: '', source: '', close: '', body: rest, eol: eolOf(rest) } }
  const eol = open[1] === '\r\n' ? '\r\n' : '\n'
  const start = open[0].length
  CLOSE.lastIndex = start
  const close = CLOSE.exec(rest)
  if (!close) return { kind: 'unclosed', parts: { bom, open: open[0], source: rest.slice(start), close: '', body: '', eol } }
  return {
    kind: 'frontmatter',
    parts: { bom, open: open[0], source: rest.slice(start, close.index), close: close[0], body: rest.slice(close.index + close[0].length), eol },
  }
}

// Whether a body written into a unit without front matter would be read back as front matter.
export function opensFrontmatter(body: string): boolean {
  return OPEN.test(body)
}

// The line break of the first line that has one; LF when there is none.
export function eolOf(text: string): '\n' | '\r\n' {
  const i = text.indexOf('\n')
  return i > 0 && text[i - 1] === '\r' ? '\r\n' : '\n'
}
