import type { FileMode } from '../vault/walk.js'
import { hashBlob } from '../transaction/blob-hash.js'
import { diffTextLines, isGitSpace, type Hunk, type LineDiff } from './hunks.js'
import { quoteGitPathBytes } from './quote.js'

// The dry-run diff (docs/how-it-works.md, "The dry-run diff"): a git-compatible unified
// diff of a set of file changes that `git apply` accepts in the vault, plus the `--stat`
// summary.

// One changed path. A null content (and mode) means that side is absent: added or deleted.
export interface DiffFile {
  path: string // vault-relative, POSIX separators
  oldMode: FileMode | null
  newMode: FileMode | null
  oldOid: string | null // computed from the content when null and the content is present
  newOid: string | null
  oldContent: Buffer | null // for a symlink: the target bytes
  newContent: Buffer | null
  // This file's part of the diff, rendered already (a dry run's chain renders the units it
  // changes, MigrateOptions.patches): used in place of the contents by a render with the
  // same options.
  patch?: RenderedPatch | null
}

// One file's part of a unified diff: its bytes as a latin1 "binary string" (one char per
// byte), rendered with `color` and 3 lines of context.
export interface RenderedPatch {
  color: boolean
  text: string
}

export interface UnifiedDiffOptions {
  context?: number // lines of context around each change (git's -U)
  color?: boolean // ANSI colors like `git diff --color`
  fullIndex?: boolean // full 40-hex object ids on the index line (git's --full-index)
}

// ANSI codes git uses by default; exported so the CLI renders everything else alike.
export const ansi = {
  reset: '\x1b[m',
  bold: '\x1b[1m',
  red: '\x1b[31m',
  green: '\x1b[32m',
  cyan: '\x1b[36m',
  redBackground: '\x1b[41m',
  paint(code: string, text: string): string {
    return `${code}${text}\x1b[m`
  },
} as const

export const ZERO_OID = '0000000000000000000000000000000000000000'
const ABBREV = 7
const BINARY_PROBE_BYTES = 8000
const EMPTY = Buffer.alloc(0)
const NO_NEWLINE = '\\ No newline at end of file'

// git's rule (buffer_is_binary): a NUL byte in the first 8000 bytes.
export function isBinaryContent(content: Buffer): boolean {
  return content.subarray(0, BINARY_PROBE_BYTES).includes(0)
}

// One side-by-side entry git would print: a type change (file <-> symlink) is printed by
// git as a deletion followed by an addition of the same path.
interface FilePair {
  path: string
  oldMode: FileMode | null
  newMode: FileMode | null
  oldOid: string
  newOid: string
  oldContent: Buffer | null
  newContent: Buffer | null
}

function isTypeChange(a: FileMode, b: FileMode): boolean {
  return (a === '120000') !== (b === '120000')
}

function toPairs(file: DiffFile): FilePair[] {
  const oldContent = file.oldContent
  const newContent = file.newContent
  if (oldContent === null && newContent === null) return []
  const oldMode = oldContent === null ? null : (file.oldMode ?? '100644')
  const newMode = newContent === null ? null : (file.newMode ?? '100644')
  const oldOid = oldContent === null ? ZERO_OID : (file.oldOid ?? hashBlob(oldContent))
  const newOid = newContent === null ? ZERO_OID : (file.newOid ?? hashBlob(newContent))
  if (oldMode !== null && newMode !== null && isTypeChange(oldMode, newMode)) {
    return [
      { path: file.path, oldMode, newMode: null, oldOid, newOid: ZERO_OID, oldContent, newContent: null },
      { path: file.path, oldMode: null, newMode, oldOid: ZERO_OID, newOid, oldContent: null, newContent },
    ]
  }
  if (oldMode === newMode && oldOid === newOid) return []
  return [{ path: file.path, oldMode, newMode, oldOid, newOid, oldContent, newContent }]
}

interface PairDiff {
  binary: boolean
  lines: LineDiff | null // null for binary pairs and for identical content (mode change only)
}

function diffPair(pair: FilePair, context: number): PairDiff {
  const oldBuf = pair.oldContent ?? Buffer.alloc(0)
  const newBuf = pair.newContent ?? Buffer.alloc(0)
  if (isBinaryContent(oldBuf) || isBinaryContent(newBuf)) return { binary: true, lines: null }
  if (pair.oldOid === pair.newOid) return { binary: false, lines: null }
  return { binary: false, lines: diffTextLines(oldBuf.toString('latin1'), newBuf.toString('latin1'), { context }) }
}

function isBlankLine(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (!isGitSpace(text.charCodeAt(i))) return false
  return true
}

// git's ws_check_emit for an added line's content (without '\n') under the default rules
// blank-at-eol and space-before-tab: errors on a red background, the rest in `color`.
function markWhitespace(line: string, color: string): string {
  let trailing = line.length
  while (trailing > 0 && isGitSpace(line.charCodeAt(trailing - 1))) trailing--
  let out = ''
  let written = 0
  for (let i = 0; i < trailing; i++) {
    const c = line[i]
    if (c === ' ') continue
    if (c !== '\t') break
    if (written < i) out += `${ansi.redBackground}${line.slice(written, i)}${ansi.reset}\t`
    else out += line.slice(written, i + 1)
    written = i + 1
  }
  if (trailing - written > 0) out += `${color}${line.slice(written, trailing)}${ansi.reset}`
  if (trailing !== line.length) out += `${ansi.redBackground}${line.slice(trailing)}${ansi.reset}`
  return out
}

// git's count_trailing_blank (diff.c), quirks included: the first line never counts.
function countTrailingBlank(text: string): number {
  let count = 0
  if (text.length === 0) return count
  let ptr = text.length - 1
  if (text[ptr] === '\n') ptr--
  while (ptr > 0) {
    let prevEol = ptr
    while (prevEol >= 0 && text[prevEol] !== '\n') prevEol--
    if (!isBlankLine(text.slice(prevEol + 1, ptr + 1))) break
    count++
    ptr = prevEol - 1
  }
  return count
}

function countLines(text: string): number {
  if (text.length === 0) return 0
  let count = 0
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) count++
  return text.endsWith('\n') ? count : count + 1
}

// Where blank lines added at the end of the file start, as git's check_blank_at_eof
// computes it: [preimage line, postimage line], or null when no blank lines are added there.
function blankAtEof(oldText: string, newText: string): [number, number] | null {
  const oldBlank = countTrailingBlank(oldText)
  const newBlank = countTrailingBlank(newText)
  if (newBlank <= oldBlank) return null
  return [countLines(oldText) - oldBlank + 1, countLines(newText) - newBlank + 1]
}

// Output is assembled as latin1 "binary strings" (one char per byte) and encoded once.
class Out {
  private readonly parts: string[] = []
  constructor(private readonly color: boolean) {}
  meta(line: string): void {
    this.parts.push(this.color ? `${ansi.bold}${line}${ansi.reset}\n` : `${line}\n`)
  }
  // ---/+++ lines: git appends a TAB when the name contains a space (for GNU patch).
  label(prefix: string, name: string): void {
    const tab = name.includes(' ') ? '\t' : ''
    this.parts.push(this.color ? `${ansi.bold}${prefix}${name}${ansi.reset}${tab}\n` : `${prefix}${name}${tab}\n`)
  }
  plain(line: string): void {
    this.parts.push(`${line}\n`)
  }
  hunkHeader(hunk: Hunk): void {
    const range = (start: number, count: number): string => (count === 1 ? `${start}` : `${start},${count}`)
    const head = `@@ -${range(hunk.oldStart, hunk.oldCount)} +${range(hunk.newStart, hunk.newCount)} @@`
    if (!this.color) {
      this.parts.push(hunk.funcName ? `${head} ${hunk.funcName}\n` : `${head}\n`)
    } else {
      const func = hunk.funcName ? ` ${ansi.reset}${hunk.funcName}${ansi.reset}` : ''
      this.parts.push(`${ansi.cyan}${head}${ansi.reset}${func}\n`)
    }
  }
  // Context and removed lines (git's emit_line_0): the reset goes before a trailing '\r'.
  line(op: ' ' | '-', text: string): void {
    if (!this.color) {
      this.parts.push(`${op}${text}\n`)
      return
    }
    const cr = text.endsWith('\r')
    const body = cr ? text.slice(0, -1) : text
    this.parts.push(`${op === '-' ? ansi.red : ''}${op}${body}${ansi.reset}${cr ? '\r' : ''}\n`)
  }
  // Added lines: git highlights whitespace errors of its default core.whitespace rules
  // (blank-at-eol, space-before-tab, blank-at-eof) on the new side.
  added(text: string, blankAtEof: boolean): void {
    if (!this.color) {
      this.parts.push(`+${text}\n`)
      return
    }
    if (blankAtEof) {
      const cr = text.endsWith('\r')
      const body = cr ? text.slice(0, -1) : text
      this.parts.push(`${ansi.redBackground}+${body}${ansi.reset}${cr ? '\r' : ''}\n`)
      return
    }
    this.parts.push(`${ansi.green}+${ansi.reset}${markWhitespace(text, ansi.green)}\n`)
  }
  noNewline(): void {
    this.parts.push(this.color ? `${NO_NEWLINE}${ansi.reset}\n` : `${NO_NEWLINE}\n`)
  }
  rendered(patch: RenderedPatch): void {
    this.parts.push(patch.text)
  }
  toBinaryString(): string {
    return this.parts.join('')
  }
  toBuffer(): Buffer {
    return Buffer.from(this.parts.join(''), 'latin1')
  }
}

function renderPair(out: Out, pair: FilePair, diff: PairDiff, fullIndex: boolean, color: boolean): void {
  const a = quoteGitPathBytes(`a/${pair.path}`)
  const b = quoteGitPathBytes(`b/${pair.path}`)
  const abbrev = (oid: string): string => (fullIndex ? oid : oid.slice(0, ABBREV))
  out.meta(`diff --git ${a} ${b}`)
  const contentChanged = pair.oldOid !== pair.newOid
  if (pair.oldMode === null) {
    out.meta(`new file mode ${pair.newMode}`)
    out.meta(`index ${abbrev(pair.oldOid)}..${abbrev(pair.newOid)}`)
  } else if (pair.newMode === null) {
    out.meta(`deleted file mode ${pair.oldMode}`)
    out.meta(`index ${abbrev(pair.oldOid)}..${abbrev(pair.newOid)}`)
  } else if (pair.oldMode !== pair.newMode) {
    out.meta(`old mode ${pair.oldMode}`)
    out.meta(`new mode ${pair.newMode}`)
    if (contentChanged) out.meta(`index ${abbrev(pair.oldOid)}..${abbrev(pair.newOid)}`)
  } else {
    out.meta(`index ${abbrev(pair.oldOid)}..${abbrev(pair.newOid)} ${pair.oldMode}`)
  }
  const oldLabel = pair.oldMode === null ? '/dev/null' : a
  const newLabel = pair.newMode === null ? '/dev/null' : b
  if (diff.binary) {
    if (contentChanged) out.plain(`Binary files ${oldLabel} and ${newLabel} differ`)
    return
  }
  if (!diff.lines || diff.lines.hunks.length === 0) return
  out.label('--- ', oldLabel)
  out.label('+++ ', newLabel)
  const eof = color ? blankAtEof((pair.oldContent ?? EMPTY).toString('latin1'), (pair.newContent ?? EMPTY).toString('latin1')) : null
  for (const hunk of diff.lines.hunks) {
    out.hunkHeader(hunk)
    // git's line counters: they start at the header's numbers and count before each line
    let lnoOld = hunk.oldStart
    let lnoNew = hunk.newStart
    for (const line of hunk.lines) {
      if (line.op === '+') {
        lnoNew++
        out.added(line.text, eof !== null && eof[0] <= lnoOld && eof[1] <= lnoNew && isBlankLine(line.text))
      } else {
        if (line.op === ' ') lnoNew++
        lnoOld++
        out.line(line.op, line.text)
      }
      if (line.noNewline) out.noNewline()
    }
  }
}

// Sort like git: by path bytes; a type change keeps its deletion before its addition.
// Files in the order the diff prints them (path bytes): render a long list in chunks of
// this order and the chunks' output joins to the whole diff.
export function sortDiffFiles(files: readonly DiffFile[]): DiffFile[] {
  return sortedFiles(files)
}

function sortedFiles(files: readonly DiffFile[]): DiffFile[] {
  return [...files].sort((x, y) => Buffer.compare(Buffer.from(x.path), Buffer.from(y.path)))
}

// The unified diff as exact bytes: use this to write a patch file or to pipe to `git apply`
// (file contents need not be UTF-8).
export function renderUnifiedDiffBytes(files: DiffFile[], { context = 3, color = false, fullIndex = false }: UnifiedDiffOptions = {}): Buffer {
  const out = new Out(color)
  for (const file of sortedFiles(files)) {
    if (file.patch && usablePatch(file, { context, color, fullIndex })) out.rendered(file.patch)
    else for (const pair of toPairs(file)) renderPair(out, pair, diffPair(pair, context), fullIndex, color)
  }
  return out.toBuffer()
}

// Whether a file's rendered patch is what a render with these options would print.
export function usablePatch(file: DiffFile, { context = 3, color = false, fullIndex = false }: UnifiedDiffOptions = {}): boolean {
  return file.patch !== undefined && file.patch !== null && file.patch.color === color && context === 3 && !fullIndex
}

// The patch of one text file whose content changed (same mode, both sides UTF-8 text, as
// the chain's units are), exactly as renderUnifiedDiffBytes prints it: what a chain
// worker renders for each unit it changed.
export function renderTextChange(
  change: { path: string; mode: FileMode; oldOid: string; newOid: string; oldBytes: Buffer; newBytes: Buffer },
  color: boolean,
): RenderedPatch {
  const out = new Out(color)
  const pair: FilePair = {
    path: change.path,
    oldMode: change.mode,
    newMode: change.mode,
    oldOid: change.oldOid,
    newOid: change.newOid,
    oldContent: change.oldBytes,
    newContent: change.newBytes,
  }
  renderPair(out, pair, diffPair(pair, 3), false, color)
  return { color, text: out.toBinaryString() }
}

// The unified diff as text (contents decoded as UTF-8; invalid bytes become U+FFFD).
export function renderUnifiedDiff(files: DiffFile[], options: UnifiedDiffOptions = {}): string {
  return renderUnifiedDiffBytes(files, options).toString('utf8')
}

// --- --stat ---

export interface DiffSummary {
  files: number
  insertions: number
  deletions: number
}

export interface DiffStatOptions {
  width?: number // total columns, like `git diff --stat=<width>`
  color?: boolean
}

export interface DiffStatEntry {
  name: string // quoted like git
  binary: boolean
  added: number // lines, or new size in bytes for binary files
  deleted: number
}

// Each file's line counts for --stat (computed per chunk of files, so contents can be
// dropped before the whole stat is rendered by renderDiffStatEntries).
export function diffStatEntries(files: DiffFile[]): DiffStatEntry[] {
  const entries: DiffStatEntry[] = []
  for (const file of sortedFiles(files)) {
    const pairs = toPairs(file)
    if (pairs.length === 0) continue
    let binary = false
    let added = 0
    let deleted = 0
    for (const pair of pairs) {
      const diff = diffPair(pair, 0)
      if (diff.binary) binary = true
      added += diff.lines?.added ?? 0
      deleted += diff.lines?.deleted ?? 0
    }
    if (binary) {
      added = file.newContent?.length ?? 0
      deleted = file.oldContent?.length ?? 0
    }
    const name = quoteGitPathBytes(file.path)
    entries.push({ name: Buffer.from(name, 'latin1').toString('utf8'), binary, added, deleted })
  }
  return entries
}

function summarizeEntries(entries: DiffStatEntry[]): DiffSummary {
  let insertions = 0
  let deletions = 0
  for (const entry of entries) {
    if (entry.binary) continue // git counts bytes of binary files nowhere in the totals
    insertions += entry.added
    deletions += entry.deleted
  }
  return { files: entries.length, insertions, deletions }
}

// Totals of `git diff --shortstat`: changed paths, added and removed lines (text files only).
export function summarizeDiff(files: DiffFile[]): DiffSummary {
  return summarizeEntries(diffStatEntries(files))
}

export function formatSummaryLine({ files, insertions, deletions }: DiffSummary): string {
  if (files === 0) return ' 0 files changed'
  let line = files === 1 ? ` ${files} file changed` : ` ${files} files changed`
  if (insertions || deletions === 0) line += insertions === 1 ? `, ${insertions} insertion(+)` : `, ${insertions} insertions(+)`
  if (deletions || insertions === 0) line += deletions === 1 ? `, ${deletions} deletion(-)` : `, ${deletions} deletions(-)`
  return line
}

function decimalWidth(n: number): number {
  return String(n).length
}

// git's scale_linear: at least one column for any change.
function scaleLinear(it: number, width: number, maxChange: number): number {
  if (!it) return 0
  return 1 + Math.floor((it * (width - 1)) / maxChange)
}

// Display width of a name: quoted names are ASCII; otherwise count code points.
function displayWidth(name: string): number {
  return [...name].length
}

// `git diff --stat` (diff.c show_stats): name | count graph, scaled to `width` columns.
export function renderDiffStat(files: DiffFile[], options: DiffStatOptions = {}): string {
  return renderDiffStatEntries(diffStatEntries(files), options)
}

export function renderDiffStatEntries(entries: DiffStatEntry[], { width = 80, color = false }: DiffStatOptions = {}): string {
  let maxLen = 0
  let maxChange = 0
  let numberWidth = 0
  let binWidth = 0
  for (const entry of entries) {
    maxLen = Math.max(maxLen, displayWidth(entry.name))
    if (entry.binary) {
      binWidth = Math.max(binWidth, 14 + decimalWidth(entry.added) + decimalWidth(entry.deleted))
      numberWidth = 3
      continue
    }
    maxChange = Math.max(maxChange, entry.added + entry.deleted)
  }
  numberWidth = Math.max(decimalWidth(maxChange), numberWidth)
  if (width < 16 + 6 + numberWidth) width = 16 + 6 + numberWidth
  let graphWidth = maxChange + 4 > binWidth ? maxChange : binWidth - 4
  let nameWidth = maxLen
  if (nameWidth + numberWidth + 6 + graphWidth > width) {
    if (graphWidth > Math.floor((width * 3) / 8) - numberWidth - 6) {
      graphWidth = Math.floor((width * 3) / 8) - numberWidth - 6
      if (graphWidth < 6) graphWidth = 6
    }
    if (nameWidth > width - numberWidth - 6 - graphWidth) nameWidth = width - numberWidth - 6 - graphWidth
    else graphWidth = width - numberWidth - 6 - nameWidth
  }

  const paint = (code: string, text: string): string => (color && text ? ansi.paint(code, text) : text)
  const lines: string[] = []
  for (const entry of entries) {
    let name = entry.name
    let prefix = ''
    let len = nameWidth
    let nameLen = displayWidth(name)
    if (nameWidth < nameLen) {
      prefix = '...'
      len = Math.max(0, len - 3)
      const chars = [...name]
      while (nameLen > len) {
        chars.shift()
        nameLen--
      }
      name = chars.join('')
      const slash = name.indexOf('/')
      if (slash !== -1) name = name.slice(slash)
    }
    const padding = Math.max(0, len - displayWidth(name))
    const head = ` ${prefix}${name}${' '.repeat(padding)} | `
    if (entry.binary) {
      let line = `${head}${'Bin'.padStart(numberWidth)}`
      if (entry.added || entry.deleted) {
        line += ` ${paint(ansi.red, String(entry.deleted))} -> ${paint(ansi.green, String(entry.added))} bytes`
      }
      lines.push(line)
      continue
    }
    let add = entry.added
    let del = entry.deleted
    const total = add + del
    if (graphWidth <= maxChange) {
      let scaled = scaleLinear(total, graphWidth, maxChange)
      if (scaled < 2 && add && del) scaled = 2
      if (add < del) {
        add = scaleLinear(add, graphWidth, maxChange)
        del = scaled - add
      } else {
        del = scaleLinear(del, graphWidth, maxChange)
        add = scaled - del
      }
    }
    lines.push(`${head}${String(total).padStart(numberWidth)}${total ? ' ' : ''}${paint(ansi.green, '+'.repeat(add))}${paint(ansi.red, '-'.repeat(del))}`)
  }
  lines.push(formatSummaryLine(summarizeEntries(entries)))
  return lines.map((line) => `${line}\n`).join('')
}
