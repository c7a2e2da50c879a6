import { diffArrays } from 'diff'

// Line-level diff of two byte buffers, shaped the way git's xdiff shapes it so that the
// hunks we print match `git diff` byte for byte in the common cases. Lines are handled as
// "binary strings" (latin1: one char per byte) so any encoding, a BOM or CRLF survives.

export interface DiffLine {
  op: ' ' | '-' | '+'
  text: string // the line's bytes as latin1, without its '\n'
  noNewline: boolean // the file ends with this line and it has no '\n'
}

export interface Hunk {
  oldStart: number // 1-based, or the line before when oldCount is 0 (git's rule)
  oldCount: number
  newStart: number
  newCount: number
  funcName: string // git's default hunk-header context ('' when none)
  lines: DiffLine[]
}

export interface LineDiff {
  hunks: Hunk[]
  added: number
  deleted: number
}

export interface LineDiffOptions {
  context?: number
  // Above this many edits the diff falls back to "remove all, add all" in the changed
  // middle (still a correct patch, never slow): Myers costs O((N+M)·D).
  maxEditCost?: number
}

// Split into lines, each keeping its '\n' (the last one may lack it), like xdiff records.
export function splitLines(text: string): string[] {
  const lines: string[] = []
  let start = 0
  while (start < text.length) {
    const nl = text.indexOf('\n', start)
    const end = nl === -1 ? text.length : nl + 1
    lines.push(text.slice(start, end))
    start = end
  }
  return lines
}

// Change flags with a sentinel 0 on each side, as xdiff keeps them (index i+1 is line i).
type ChangeFlags = Uint8Array

function markChanges(a: string[], b: string[], maxEditCost: number): [ChangeFlags, ChangeFlags] {
  const del = new Uint8Array(a.length + 2)
  const add = new Uint8Array(b.length + 2)
  // Common head and tail are never part of a change (xdiff trims them too).
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) head++
  let tail = 0
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++
  const midA = a.slice(head, a.length - tail)
  const midB = b.slice(head, b.length - tail)
  if (midA.length === 0 || midB.length === 0) {
    for (let i = 0; i < midA.length; i++) del[head + i + 1] = 1
    for (let j = 0; j < midB.length; j++) add[head + j + 1] = 1
    return [del, add]
  }
  const maxEditLength = Math.max(64, Math.floor(maxEditCost / (midA.length + midB.length)))
  const changes = diffArrays(midA, midB, { maxEditLength })
  if (!changes) {
    for (let i = 0; i < midA.length; i++) del[head + i + 1] = 1
    for (let j = 0; j < midB.length; j++) add[head + j + 1] = 1
    return [del, add]
  }
  let i = head
  let j = head
  for (const change of changes) {
    const count = change.count ?? change.value.length
    if (change.removed) {
      for (let k = 0; k < count; k++) del[++i] = 1
    } else if (change.added) {
      for (let k = 0; k < count; k++) add[++j] = 1
    } else {
      i += count
      j += count
    }
  }
  return [del, add]
}

// --- git's xdl_change_compact with the indent heuristic (xdiff/xdiffi.c), on 0-based lines ---

const MAX_INDENT = 200
const MAX_BLANKS = 20
const START_OF_FILE_PENALTY = 1
const END_OF_FILE_PENALTY = 21
const TOTAL_BLANK_WEIGHT = -30
const POST_BLANK_WEIGHT = 6
const RELATIVE_INDENT_PENALTY = -4
const RELATIVE_INDENT_WITH_BLANK_PENALTY = 10
const RELATIVE_OUTDENT_PENALTY = 24
const RELATIVE_OUTDENT_WITH_BLANK_PENALTY = 17
const RELATIVE_DEDENT_PENALTY = 23
const RELATIVE_DEDENT_WITH_BLANK_PENALTY = 17
const INDENT_WEIGHT = 60
const INDENT_HEURISTIC_MAX_SLIDING = 100

// git's isspace: only space, \t, \n, \r.
export function isGitSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d
}

function getIndent(line: string): number {
  let ret = 0
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (!isGitSpace(c)) return ret
    if (c === 0x20) ret += 1
    else if (c === 0x09) ret += 8 - (ret % 8)
    if (ret >= MAX_INDENT) return MAX_INDENT
  }
  return -1 // whitespace only
}

interface SplitScore {
  effectiveIndent: number
  penalty: number
}

function scoreSplit(lines: string[], split: number, score: SplitScore): void {
  const endOfFile = split >= lines.length
  const indent = endOfFile ? -1 : getIndent(lines[split]!)
  let preBlank = 0
  let preIndent = -1
  for (let i = split - 1; i >= 0; i--) {
    preIndent = getIndent(lines[i]!)
    if (preIndent !== -1) break
    preBlank++
    if (preBlank === MAX_BLANKS) {
      preIndent = 0
      break
    }
  }
  let postBlankRun = 0
  let postIndent = -1
  for (let i = split + 1; i < lines.length; i++) {
    postIndent = getIndent(lines[i]!)
    if (postIndent !== -1) break
    postBlankRun++
    if (postBlankRun === MAX_BLANKS) {
      postIndent = 0
      break
    }
  }

  if (preIndent === -1 && preBlank === 0) score.penalty += START_OF_FILE_PENALTY
  if (endOfFile) score.penalty += END_OF_FILE_PENALTY
  const postBlank = indent === -1 ? 1 + postBlankRun : 0
  const totalBlank = preBlank + postBlank
  score.penalty += TOTAL_BLANK_WEIGHT * totalBlank
  score.penalty += POST_BLANK_WEIGHT * postBlank
  const effective = indent !== -1 ? indent : postIndent
  const anyBlanks = totalBlank !== 0
  score.effectiveIndent += effective
  if (effective === -1 || preIndent === -1) {
    // no adjustment
  } else if (effective > preIndent) {
    score.penalty += anyBlanks ? RELATIVE_INDENT_WITH_BLANK_PENALTY : RELATIVE_INDENT_PENALTY
  } else if (effective === preIndent) {
    // no adjustment
  } else if (postIndent !== -1 && postIndent > effective) {
    score.penalty += anyBlanks ? RELATIVE_OUTDENT_WITH_BLANK_PENALTY : RELATIVE_OUTDENT_PENALTY
  } else {
    score.penalty += anyBlanks ? RELATIVE_DEDENT_WITH_BLANK_PENALTY : RELATIVE_DEDENT_PENALTY
  }
}

function scoreCmp(a: SplitScore, b: SplitScore): number {
  const cmpIndents = Number(a.effectiveIndent > b.effectiveIndent) - Number(a.effectiveIndent < b.effectiveIndent)
  return INDENT_WEIGHT * cmpIndents + (a.penalty - b.penalty)
}

// A group [start, end) of changed lines; flags are offset by one (sentinels at 0 and n+1).
class Group {
  start = 0
  end = 0
  constructor(
    private readonly flags: ChangeFlags,
    private readonly lines: string[],
  ) {
    while (this.flags[this.end + 1]) this.end++
  }
  next(): boolean {
    if (this.end === this.lines.length) return false
    this.start = this.end + 1
    this.end = this.start
    while (this.flags[this.end + 1]) this.end++
    return true
  }
  previous(): boolean {
    if (this.start === 0) return false
    this.end = this.start - 1
    this.start = this.end
    while (this.flags[this.start]) this.start--
    return true
  }
  slideDown(): boolean {
    if (this.end < this.lines.length && this.lines[this.start] === this.lines[this.end]) {
      this.flags[this.start + 1] = 0
      this.start++
      this.flags[this.end + 1] = 1
      this.end++
      while (this.flags[this.end + 1]) this.end++
      return true
    }
    return false
  }
  slideUp(): boolean {
    if (this.start > 0 && this.lines[this.start - 1] === this.lines[this.end - 1]) {
      this.start--
      this.flags[this.start + 1] = 1
      this.end--
      this.flags[this.end + 1] = 0
      while (this.flags[this.start]) this.start--
      return true
    }
    return false
  }
}

function syncError(): Error {
  return new Error('diff group sync broken (internal invariant)')
}

// Slide each change group to the position git would pick, so our hunks match git's.
function compactChanges(flags: ChangeFlags, lines: string[], otherFlags: ChangeFlags, otherLines: string[]): void {
  const g = new Group(flags, lines)
  const go = new Group(otherFlags, otherLines)
  for (;;) {
    if (g.end !== g.start) {
      let groupSize: number
      let earliestEnd: number
      let endMatchingOther: number
      do {
        groupSize = g.end - g.start
        endMatchingOther = -1
        while (g.slideUp()) if (!go.previous()) throw syncError()
        earliestEnd = g.end
        if (go.end > go.start) endMatchingOther = g.end
        for (;;) {
          if (!g.slideDown()) break
          if (!go.next()) throw syncError()
          if (go.end > go.start) endMatchingOther = g.end
        }
      } while (groupSize !== g.end - g.start)

      if (g.end === earliestEnd) {
        // no shifting was possible
      } else if (endMatchingOther !== -1) {
        while (go.end === go.start) {
          if (!g.slideUp()) throw syncError()
          if (!go.previous()) throw syncError()
        }
      } else {
        let shift = earliestEnd
        if (g.end - groupSize - 1 > shift) shift = g.end - groupSize - 1
        if (g.end - INDENT_HEURISTIC_MAX_SLIDING > shift) shift = g.end - INDENT_HEURISTIC_MAX_SLIDING
        let bestShift = -1
        let best: SplitScore = { effectiveIndent: 0, penalty: 0 }
        for (; shift <= g.end; shift++) {
          const score: SplitScore = { effectiveIndent: 0, penalty: 0 }
          scoreSplit(lines, shift, score)
          scoreSplit(lines, shift - groupSize, score)
          if (bestShift === -1 || scoreCmp(score, best) <= 0) {
            best = score
            bestShift = shift
          }
        }
        while (g.end > bestShift) {
          if (!g.slideUp()) throw syncError()
          if (!go.previous()) throw syncError()
        }
      }
    }
    if (!g.next()) break
    if (!go.next()) throw syncError()
  }
}

// --- hunks ---

interface Change {
  i1: number // first changed old line (0-based)
  chg1: number
  i2: number
  chg2: number
}

function collectChanges(del: ChangeFlags, add: ChangeFlags, n: number, m: number): Change[] {
  const changes: Change[] = []
  let i = 0
  let j = 0
  while (i < n || j < m) {
    if (del[i + 1] || add[j + 1]) {
      const i1 = i
      const i2 = j
      while (del[i + 1]) i++
      while (add[j + 1]) j++
      changes.push({ i1, chg1: i - i1, i2, chg2: j - i2 })
    } else {
      i++
      j++
    }
  }
  return changes
}

// git's default hunk-header function line: starts with a letter, '_' or '$'; 80 bytes max.
function funcNameOf(line: string): string | null {
  const c = line.charCodeAt(0)
  const isAlpha = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
  if (!(isAlpha || c === 0x5f || c === 0x24)) return null
  let len = Math.min(line.length, 80)
  while (len > 0 && isGitSpace(line.charCodeAt(len - 1))) len--
  return line.slice(0, len)
}

function toDiffLine(op: DiffLine['op'], line: string): DiffLine {
  const noNewline = !line.endsWith('\n')
  return { op, text: noNewline ? line : line.slice(0, -1), noNewline }
}

// Diff two texts (latin1 "binary strings") into git-shaped hunks.
export function diffTextLines(oldText: string, newText: string, { context = 3, maxEditCost = 50_000_000 }: LineDiffOptions = {}): LineDiff {
  const a = splitLines(oldText)
  const b = splitLines(newText)
  const [del, add] = markChanges(a, b, maxEditCost)
  compactChanges(del, a, add, b)
  compactChanges(add, b, del, a)
  const changes = collectChanges(del, add, a.length, b.length)

  let added = 0
  let deleted = 0
  for (const c of changes) {
    added += c.chg2
    deleted += c.chg1
  }

  const hunks: Hunk[] = []
  let funcName = ''
  let funcSearchedTo = 0 // old lines [0, funcSearchedTo) already searched
  let k = 0
  while (k < changes.length) {
    const first = changes[k]!
    let last = first
    let next = k + 1
    while (next < changes.length) {
      const candidate = changes[next]!
      if (candidate.i1 - (last.i1 + last.chg1) > 2 * context) break
      last = candidate
      next++
    }
    const lead = Math.min(context, first.i1, first.i2)
    const s1 = first.i1 - lead
    const s2 = first.i2 - lead
    const trail = Math.min(context, a.length - (last.i1 + last.chg1), b.length - (last.i2 + last.chg2))
    const e1 = last.i1 + last.chg1 + trail
    const e2 = last.i2 + last.chg2 + trail

    for (let l = s1 - 1; l >= funcSearchedTo; l--) {
      const name = funcNameOf(a[l]!)
      if (name !== null) {
        funcName = name
        break
      }
    }
    funcSearchedTo = Math.max(funcSearchedTo, s1)

    const lines: DiffLine[] = []
    let i = s1
    let j = s2
    for (let c = k; c < next; c++) {
      const change = changes[c]!
      while (i < change.i1) {
        lines.push(toDiffLine(' ', a[i]!))
        i++
        j++
      }
      for (; i < change.i1 + change.chg1; i++) lines.push(toDiffLine('-', a[i]!))
      for (; j < change.i2 + change.chg2; j++) lines.push(toDiffLine('+', b[j]!))
    }
    while (i < e1) {
      lines.push(toDiffLine(' ', a[i]!))
      i++
      j++
    }
    const oldCount = e1 - s1
    const newCount = e2 - s2
    hunks.push({
      oldStart: oldCount ? s1 + 1 : s1,
      oldCount,
      newStart: newCount ? s2 + 1 : s2,
      newCount,
      funcName,
      lines,
    })
    k = next
  }
  return { hunks, added, deleted }
}
