import { describe, expect, it } from 'vitest'
import { PatternCollector } from '../../src/diff/patterns.js'
import { REPORT_CLIENT } from '../../src/diff/report-client.js'
import { agentOf, writeReportHtml } from '../../src/diff/report-html.js'
import { renderUnifiedDiff, type DiffFile } from '../../src/diff/unified.js'
import { reportHeader as header, syntheticChanges } from '../helpers/report-files.js'

async function render(files: DiffFile[], patterns = new PatternCollector().patterns()): Promise<string> {
  let html = ''
  await writeReportHtml(header(files.length), patterns, [files.slice(0, 4000), files.slice(4000)], (t) => void (html += t))
  return html
}

function embedded(html: string): { files: Array<{ p: string; g: number; h: unknown[] }>; patterns: unknown[]; agents: string[] } {
  const m = /<script type="application\/json" id="aas-data">([\s\S]*?)<\/script>/.exec(html)
  if (!m) throw new Error('no embedded data')
  return JSON.parse(m[1] as string)
}

describe('the HTML review report', () => {
  it('at 10,000 changed units is at most twice the size of the unified diff, with every file embedded', async () => {
    const { files, patterns } = syntheticChanges(10_000)
    const html = await render(files, patterns)
    const diffBytes = Buffer.byteLength(renderUnifiedDiff(files))
    const htmlBytes = Buffer.byteLength(html)
    expect(htmlBytes / diffBytes, `report ${htmlBytes} B, diff ${diffBytes} B`).toBeLessThanOrEqual(2)
    const data = embedded(html)
    expect(data.files).toHaveLength(10_000)
    expect(data.files.every((f) => f.g === 0)).toBe(true)
    expect(data.agents).toHaveLength(6)
  })

  it('keeps a unit that contains a closing script tag inside the data, and loads nothing from the network', async () => {
    const text = (s: string): Buffer => Buffer.from(`---\nschema_version: ${s}\n---\n</script><script>alert(1)</script>\n`)
    const html = await render([
      { path: 'a/memory/x.md', oldMode: '100644', newMode: '100644', oldOid: null, newOid: null, oldContent: text('1'), newContent: text('2') },
    ])
    expect(html.match(/<\/script>/g)).toHaveLength(2) // the data's and the page script's
    expect(embedded(html).files[0]?.p).toBe('a/memory/x.md')
    expect(html).toContain(`content="default-src 'none';`)
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//)
  })

  it('embeds a page script that compiles (the browser test runs it)', () => {
    expect(() => new Function(REPORT_CLIENT)).not.toThrow()
  })

  it.each([
    ['caldwell/memory/x.md', 'caldwell'],
    ['projects/atlas/agents/researcher/wiki/topics/y.md', 'projects/atlas/agents/researcher'],
    ['memory/z.md', '.'],
  ])('the agent of %s is %s', (p, agent) => {
    expect(agentOf(p)).toBe(agent)
  })
})
