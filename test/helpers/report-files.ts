import { PatternCollector, type ChangePattern } from '../../src/diff/patterns.js'
import type { ReportHeader } from '../../src/diff/report-html.js'
import type { DiffFile } from '../../src/diff/unified.js'
import { hashBlob } from '../../src/transaction/blob-hash.js'

// A dry run's changed files in memory, as the v1 -> v2 sample script changes them
// (schema_version 1 -> 2, provenance added), for report tests that need many units
// without a vault: realistic front matter, a ~600-byte body, six agents.
const AGENTS = ['caldwell', 'scout', 'writer', 'ledger', 'projects/atlas/agents/researcher', 'projects/atlas/agents/reviewer']
const WORDS = 'budget debt avalanche mortgage savings invoice research paper citation draft outline chart feed summary review decision'.split(' ')

export function syntheticChanges(units: number): { files: DiffFile[]; patterns: ChangePattern[] } {
  const collector = new PatternCollector()
  const files: DiffFile[] = []
  for (let i = 0; i < units; i++) {
    const w = (k: number): string => WORDS[(i * 7 + k * 3) % WORDS.length] as string
    const wiki = i % 5 === 4
    const path = `${AGENTS[i % AGENTS.length]}/${wiki ? 'wiki' : 'memory'}/b${Math.floor(i / 500)}/${wiki ? `page_${i}` : `decision_${w(1)}_${i}`}.md`
    const fm = [
      `name: ${w(1)} ${w(2)} ${w(3)} ${i}`,
      `description: '${w(4)} ${w(5)} ${w(6)} ${w(7)} ${w(8)} ${w(9)}'`,
      `type: ${wiki ? 'wiki_page' : 'decision'}`,
    ]
    if (!wiki) fm.push('captured: 2026-03-01', 'last_seen: 2026-04-02', 'sources:', '  - conversation_2026-03-01', 'confidence: high')
    fm.push(`tags: [${w(1)}, ${w(2)}]`)
    let body = ''
    while (body.length < 600) body += `${w(body.length)} ${w(body.length + 1)} ${w(2)} ${w(3)} ${w(4)} ${w(5)}.\n`
    const before = `---\nschema_version: 1\n${fm.join('\n')}\n---\n${body}`
    const after = `---\nschema_version: 2\n${fm.join('\n')}\nprovenance: v1_migrated\n---\n${body}`
    collector.add(path, before, after)
    const [oldContent, newContent] = [Buffer.from(before), Buffer.from(after)]
    files.push({ path, oldMode: '100644', newMode: '100644', oldOid: hashBlob(oldContent), newOid: hashBlob(newContent), oldContent, newContent })
  }
  return { files, patterns: collector.patterns() }
}

// The header of a report of such changes.
export const reportHeader = (units: number): ReportHeader => ({
  vault: '/srv/agents',
  runId: '20261202T000000Z-abcdef',
  dryRun: true,
  from: 1,
  target: 2,
  scripts: [{ file: '_migrations/v1_to_v2.mjs', blob: 'a'.repeat(40) }],
  snapshot: { name: 'preview', ref: null, commit: 'b'.repeat(40) },
  result: { ref: 'refs/aas/pending/20261202T000000Z-abcdef', commit: 'c'.repeat(40) },
  units,
  validation: null,
  generatedAt: '2026-12-02T00:00:00.000Z',
  engineVersion: '0.1.0',
})
