import type { ValidationResult } from '../schema/validate.js'
import { unitTypeOf } from '../vault/rules.js'
import { diffTextLines } from './hunks.js'
import type { ChangePattern } from './patterns.js'
import { REPORT_CLIENT, REPORT_STYLE } from './report-client.js'
import { isBinaryContent, type DiffFile } from './unified.js'

// The review report of a dry run (`--report FILE.html`, docs/how-it-works.md, "The review
// report"): one self-contained HTML file that needs no network (a Content-Security-Policy
// forbids it). The run's data is embedded as JSON, each file as its hunks only, and the
// page renders a file's diff when it is opened, so 10,000 changed units open at once and
// the file stays below twice the size of the unified diff.

export interface ReportHeader {
  vault: string
  runId: string
  dryRun: boolean
  from: number | null
  target: number
  scripts: Array<{ file: string; blob: string | null }> // blob: git's blob id of the script as the run recorded it, else as it is now
  snapshot: { name: string; ref: string | null; commit: string } | null
  result: { ref: string; commit: string } | null
  units: number
  validation: ValidationResult | null
  validationSummary?: string | null // a recorded run's Aas-Validation trailer, when `validation` is not known
  generatedAt: string
  engineVersion: string
}

// The agent a unit belongs to: the folders above its nearest memory/ or wiki/ folder.
export function agentOf(unitPath: string): string {
  const parts = unitPath.split('/')
  for (let i = parts.length - 2; i >= 0; i--) if (parts[i] === 'memory' || parts[i] === 'wiki') return parts.slice(0, i).join('/') || '.'
  return '.'
}

// JSON inside a <script> element: no "</script>" or "<!--" can end it early.
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'))
}

// One file as the page reads it: path, pattern, agent and type (indexes), blob ids, and
// each hunk as [old start, new start, its lines each prefixed with ' ', '-', '+' or '\'].
function fileEntry(f: DiffFile, group: number, agent: number): Record<string, unknown> {
  const type = unitTypeOf(f.path)
  const entry: Record<string, unknown> = {
    p: f.path,
    g: group,
    a: agent,
    t: type === 'wiki' ? 1 : 0,
    o: f.oldOid?.slice(0, 12) ?? null,
    n: f.newOid?.slice(0, 12) ?? null,
  }
  const before = f.oldContent ?? Buffer.alloc(0)
  const after = f.newContent ?? Buffer.alloc(0)
  if (isBinaryContent(before) || isBinaryContent(after)) return { ...entry, b: 1, h: [] }
  const { hunks } = diffTextLines(before.toString('utf8'), after.toString('utf8'), { context: 3 })
  entry.h = hunks.map((h) => [h.oldStart, h.newStart, h.lines.map((l) => (l.noNewline ? `${l.op}${l.text}\n\\` : `${l.op}${l.text}`)).join('\n')])
  return entry
}

// Writes the report: the page, then the data as it is read (a chunk of files at a time,
// each with both sides' bytes), then the script that renders it.
export async function writeReportHtml(
  header: ReportHeader,
  patterns: readonly ChangePattern[],
  chunks: AsyncIterable<DiffFile[]> | Iterable<DiffFile[]>,
  write: (text: string) => void | Promise<void>,
): Promise<{ files: number }> {
  const groupOf = new Map<string, number>()
  patterns.forEach((p, i) => {
    for (const path of p.paths) groupOf.set(path, i)
  })
  const agents: string[] = []
  const agentIndex = new Map<string, number>()
  const title = `aas-migrate: v${header.from ?? '?'} → v${header.target} of ${header.vault}`
  await write(
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n` +
      `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">\n` +
      `<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>${escapeHtml(title)}</title>\n<style>${REPORT_STYLE}</style></head>\n` +
      `<body><noscript>This report needs JavaScript to show its diffs.</noscript>\n<script type="application/json" id="aas-data">{"header":${scriptJson(header)},` +
      `"patterns":${scriptJson(patterns.map(({ paths: _paths, ...p }) => p))},"files":[`,
  )
  let files = 0
  for await (const chunk of chunks) {
    const parts: string[] = []
    for (const f of chunk) {
      const agent = agentOf(f.path)
      let a = agentIndex.get(agent)
      if (a === undefined) {
        a = agents.push(agent) - 1
        agentIndex.set(agent, a)
      }
      parts.push(scriptJson(fileEntry(f, groupOf.get(f.path) ?? -1, a)))
    }
    if (parts.length > 0) await write(`${files > 0 ? ',' : ''}${parts.join(',\n')}\n`)
    files += chunk.length
  }
  await write(`],"agents":${scriptJson(agents)}}</script>\n<script>${REPORT_CLIENT}</script>\n</body></html>\n`)
  return { files }
}
