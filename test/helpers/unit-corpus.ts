// A deterministic corpus of varied unit texts for round-trip tests and benchmarks:
// LF and CRLF, BOMs, comments (own-line and trailing), blank lines, quoted and
// unicode values, long values, folded and literal multi-line strings, nested
// maps, block and flow lists, 2- and 4-space indents, missing final newlines,
// units without front matter and empty front matter. Same seed, same texts.

export interface CorpusUnit {
  name: string // a vault-relative path, e.g. caldwell/memory/feedback_0007_debt.md
  text: string
}

export interface CorpusOptions {
  count?: number
  seed?: number
}

// mulberry32: small, fast and good enough for test data.
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const WORDS = [
  'debt',
  'avalanche',
  'mortgage',
  'budget',
  'retrieval',
  'chunking',
  'newsletter',
  'pgvector',
  'taxes',
  'quarterly',
  'savings',
  'citation',
  'rerank',
  'emergency',
  'fund',
  'outline',
  'priority',
  'strategy',
]
const UNICODE = ['café', 'naïve', 'Zürich', '東京', 'résumé', '—', '✓', '🚀', 'Ελληνικά', 'שלום', 'ß', '½']
const TYPES = ['user', 'feedback', 'project', 'decision', 'reference'] as const
const AGENTS = ['caldwell', 'scout', 'writer', 'researcher']

export function generateUnitCorpus({ count = 1000, seed = 1 }: CorpusOptions = {}): CorpusUnit[] {
  const rand = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  const chance = (p: number): boolean => rand() < p
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1))
  const words = (n: number): string => Array.from({ length: n }, () => (chance(0.12) ? pick(UNICODE) : pick(WORDS))).join(' ')
  const date = (): string => `2026-${String(int(1, 12)).padStart(2, '0')}-${String(int(1, 28)).padStart(2, '0')}`

  const units: CorpusUnit[] = []
  for (let i = 0; i < count; i++) {
    const eol = chance(0.25) ? '\r\n' : '\n'
    const bom = chance(0.08) ? '\uFEFF' : ''
    const ind = ' '.repeat(chance(0.2) ? 4 : 2)
    const seqInd = chance(0.2) ? '' : ind
    const pad = chance(0.2) ? ' ' : ''
    const unitType = chance(0.7) ? 'memory' : 'wiki'
    const type = pick(TYPES)
    const slug = `${String(i).padStart(5, '0')}_${pick(WORDS)}`
    const name = `${pick(AGENTS)}/${unitType}/${unitType === 'memory' ? `${type}_${slug}` : slug}.md`
    const body = makeBody()
    const lines: string[] = []
    const kind = rand()
    if (kind < 0.04) {
      units.push({ name, text: bom + body.join(eol) + (chance(0.5) ? eol : '') })
      continue
    }
    if (kind < 0.06) {
      units.push({ name, text: `${bom}---${eol}${chance(0.5) ? `# nothing yet${eol}` : ''}---${eol}${body.join(eol)}${eol}` })
      continue
    }
    if (chance(0.15)) lines.push(`# ${words(3)}`)
    lines.push(`schema_version: ${chance(0.92) ? 1 : pick([0, 2])}${chance(0.1) ? ' # bumped by migrations' : ''}`)
    lines.push(`name: ${scalar(`${words(int(2, 6))}`)}`)
    const desc = words(int(4, 30))
    if (desc.length > 60 && chance(0.25)) {
      lines.push(`description: ${pick(['>-', '>', '|-', '|'])}`)
      for (const part of wrap(desc, 50)) lines.push(`${ind}${part}`)
    } else if (chance(0.2)) {
      lines.push(`description: 'Locked: ${desc.replace(/'/g, "''")}'`)
    } else {
      lines.push(`description: ${scalar(desc)}`)
    }
    if (unitType === 'wiki') lines.push('type: wiki_page')
    else lines.push(`type: ${type}`)
    if (chance(0.2)) lines.push('')
    if (unitType === 'memory') {
      lines.push(`captured: ${chance(0.15) ? `'${date()}'` : date()}`)
      lines.push(`last_seen: ${chance(0.1) ? `"${date()}"` : date()}${chance(0.1) ? '  # refreshed' : ''}`)
      if (chance(0.3)) {
        lines.push(`sources: [${pad}${Array.from({ length: int(1, 3) }, () => `conversation_${date()}`).join(', ')}${pad}]`)
      } else {
        lines.push('sources:')
        for (let s = int(1, 4); s > 0; s--)
          lines.push(`${seqInd}- ${chance(0.15) ? `"${words(2)}"` : `conversation_${date()}`}${chance(0.05) ? ' # primary' : ''}`)
      }
      lines.push(`confidence: ${pick(['high', 'medium', 'low'])}`)
      if (chance(0.5)) lines.push(`pinned: ${pick(['false', 'true'])}`)
      if (chance(0.4)) lines.push(`expires_at: ${pick(['null', '~', '', date()])}`.trimEnd())
      if (chance(0.3)) lines.push(`supersedes: ${pick(['null', `${type}_${pick(WORDS)}`])}`)
    }
    if (chance(0.1)) lines.push(`# ${words(4)}`)
    if (chance(0.6)) lines.push(`tags: [${pad}${Array.from({ length: int(0, 4) }, () => pick(WORDS)).join(', ')}${pad}]`.replace('[  ]', '[]'))
    if (chance(0.15)) {
      lines.push('review:')
      lines.push(`${ind}every: ${int(7, 90)}`)
      lines.push(`${ind}unit: days`)
      if (chance(0.5)) {
        lines.push(`${ind}owners:`)
        lines.push(`${ind}${seqInd}- name: ${scalar(words(2))}`)
        lines.push(`${ind}${seqInd}  role: ${pick(['editor', 'reviewer'])}`)
      }
    }
    if (chance(0.1)) lines.push(`notes: ${chance(0.5) ? '|' : '|-'}`, `${ind}${words(5)}`, '', `${ind}${words(6)}`)
    if (chance(0.05)) lines.push(`long_value: ${words(30)}`)
    if (chance(0.1)) lines.push('')
    const close = chance(0.05) ? '--- ' : '---'
    const tail = chance(0.1) ? '' : eol
    const bodyText = body.length > 0 ? eol + body.join(eol) + tail : ''
    units.push({ name, text: `${bom}---${eol}${lines.join(eol)}${eol}${close}${bodyText}` })
  }
  return units

  function scalar(s: string): string {
    const r = rand()
    if (r < 0.15) return `'${s.replace(/'/g, "''")}'`
    if (r < 0.3) return JSON.stringify(s)
    return /^[\w\u0080-\uffff][^:#]*$/u.test(s) && !/^(true|false|null|yes|no|on|off|~|[-+]?[\d.]+)$/i.test(s) ? s : `'${s}'`
  }

  function makeBody(): string[] {
    const out: string[] = []
    if (chance(0.05)) return out
    out.push(`# ${words(3)}`, '', words(int(5, 40)))
    if (chance(0.2)) out.push('', '---', '', words(8)) // a thematic break in the body
    if (chance(0.2)) out.push('', '- [ ] follow up', '- [x] done')
    return out
  }
}

function wrap(text: string, width: number): string[] {
  const out: string[] = []
  let line = ''
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > width) {
      out.push(line)
      line = w
    } else line = line ? `${line} ${w}` : w
  }
  if (line) out.push(line)
  return out
}
