import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashBlob } from '../../src/transaction/blob-hash.js'
import { makeVault, type TempVault } from '../helpers/make-vault.js'
import { generateVault } from '../helpers/gen-vault.js'
import { binAsync, cli } from '../helpers/run-cli.js'

// The review report in a real browser: Debian's chromium (AAS_CHROMIUM, else `chromium`
// on PATH; .ci/run installs it), driven by playwright-core, every request but the report
// file itself refused and recorded.

function chromiumPath(): string {
  const found = process.env.AAS_CHROMIUM || execFileSync('sh', ['-c', 'command -v chromium || true'], { encoding: 'utf8' }).trim()
  if (!found) throw new Error("No chromium: install Debian's chromium (apt-get install chromium) or set AAS_CHROMIUM to a Chromium executable.")
  return found
}

let browser: Browser
let context: BrowserContext
let vault: TempVault
let dir: string
const requests: string[] = []
const pageErrors: string[] = []

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] })
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  await context.route('**/*', (route) => {
    const url = route.request().url()
    if (url.startsWith('file:')) return route.continue()
    requests.push(url)
    return route.abort()
  })
  vault = await makeVault('vault-v1')
  dir = await mkdtemp(path.join(tmpdir(), 'aas-report-'))
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await vault?.cleanup()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function open(file: string): Promise<Page> {
  const page = await context.newPage()
  page.on('pageerror', (e) => pageErrors.push(String(e)))
  await page.goto(`file://${file}`)
  await page.waitForSelector('body[data-ready="1"]')
  return page
}

// v1 -> v2 for the 10,000-unit case: every unit gets provenance, pinned memory notes lose
// `pinned`, wiki pages get a tag; validated like the sample script's provenance.
const BIG_SCRIPT = `export default {
  from: 1, to: 2,
  appliesTo: (u) => u.readFrontmatter().schema_version === 1,
  migrate(u) {
    const m = u.readFrontmatter()
    m.schema_version = 2
    if ('pinned' in m) delete m.pinned
    if (u.unitType === 'wiki') m.tags = [...m.tags, 'wiki']
    m.provenance = 'v1_migrated'
    u.writeFrontmatter(m)
    return { changes: ['v2'] }
  },
  validate: (m) => (m.provenance === 'v1_migrated' ? [] : ['provenance: is required']),
}
`

// The lines of one file's hunks in a unified diff, each with its ' ', '-' or '+'.
function patchLines(patch: string, file: string): string[] {
  const start = patch.indexOf(`diff --git a/${file} b/${file}\n`)
  const next = patch.indexOf('\ndiff --git ', start + 1)
  const part = patch.slice(start, next === -1 ? undefined : next + 1)
  return part.split('\n').filter((l) => /^[ +-]/.test(l) && !l.startsWith('--- ') && !l.startsWith('+++ '))
}

describe('--report FILE.html in a browser', () => {
  it('shows the header and the groups, filters by words and by agent, and renders a diff with the changed line marked', async () => {
    const file = path.join(dir, 'review.html')
    const r = await cli(['--agents-root', vault.root, '--to', 'v3', '--dry-run', '--no-progress', '--report', file])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`report: ${file} (13 changed files, `)
    const pending = /preview kept on (refs\/aas\/pending\/\S+)/.exec(r.stderr)?.[1]
    const page = await open(file)

    expect(await page.textContent('#vault')).toBe(vault.root)
    expect(await page.textContent('#from-to')).toBe('v1 → v3')
    expect(await page.textContent('#pending')).toBe(pending)
    expect(await page.textContent('#validation')).toBe('13 units valid at v3')
    const scripts = await page.locator('#scripts li').allTextContents()
    for (const [i, name] of ['v1_to_v2.mjs', 'v2_to_v3.ts'].entries()) {
      const blob = hashBlob(await readFile(path.join(vault.root, '_migrations', name)))
      expect(scripts[i]).toBe(`_migrations/${name} blob ${blob}`)
    }
    const groups = await page.locator('#patterns tr').allTextContents()
    expect(groups).toEqual([
      '5 unitsschema_version: 1 → 3, - captured, + provenance: v1_migrated, + created, + agent: caldwell',
      '4 unitsschema_version: 1 → 3, + provenance: v1_migrated, + agent',
      '2 unitsschema_version: 1 → 3, - captured, + provenance: v1_migrated, + created, + agent',
      '2 unitsschema_version: 1 → 3, - captured, + provenance: v1_migrated, + created, + agent: scout',
    ])

    expect(await page.locator('#units li').count()).toBe(13)
    await page.fill('#filter', 'scout memory')
    await expect
      .poll(() => page.locator('#units li').allTextContents())
      .toEqual(['scout/memory/feedback_citation_style.md', 'scout/memory/reference_2026_arxiv_feeds.md'])
    expect(await page.textContent('#count')).toBe('2 of 13 units')
    await page.fill('#filter', '')
    await page.selectOption('#f-agent', { label: 'writer' })
    await expect.poll(() => page.locator('#units li').allTextContents()).toEqual(['writer/memory/project_newsletter.md', 'writer/wiki/newsletter_outline.md'])
    await page.selectOption('#f-type', { label: 'wiki' })
    await expect.poll(() => page.locator('#units li').allTextContents()).toEqual(['writer/wiki/newsletter_outline.md'])

    await page.locator('#units li').first().click()
    expect(await page.textContent('#diff-path')).toBe('writer/wiki/newsletter_outline.md')
    expect(await page.locator('#diff tr.del mark').allTextContents()).toEqual(['1'])
    expect(await page.locator('#diff tr.add mark').allTextContents()).toEqual(['3'])
    expect(await page.locator('#diff tr.del td.del').allTextContents()).toEqual(['-schema_version: 1'])
    // Every line of the rendered diff is the unified diff's line, in order.
    const patch = (await cli(['--agents-root', vault.root, '--to', 'v3', '--dry-run', '--no-progress'])).stdout
    const shown = await page.locator('#diff table.unified tr:not(.hunk) td:nth-child(3)').allTextContents()
    expect(shown).toEqual(patchLines(patch, 'writer/wiki/newsletter_outline.md'))

    await page.click('#view-split')
    expect(await page.locator('#diff table.split td.del mark').allTextContents()).toEqual(['1'])
    expect(await page.locator('#diff table.split td.add mark').allTextContents()).toEqual(['3'])
    const shot = path.join(dir, 'review.png')
    await page.screenshot({ path: shot })
    expect((await stat(shot)).size).toBeGreaterThan(10_000)
    expect(requests).toEqual([])
    expect(pageErrors).toEqual([])
  }, 120_000)

  it('opens the report of a real 10,000-unit dry run: header, patterns, an agent, one diff as in the unified diff', async () => {
    // A generated vault and a v1 -> v2 script with three sub-populations (plain memory
    // notes, pinned ones that lose `pinned`, wiki pages whose tags change; the most
    // frequent tag pairs make groups of their own). One dry run
    // gives the unified diff (stdout), the patterns (stderr) and the report.
    const big = await makeVault(null)
    try {
      await generateVault(big.root, { units: 10_000, seed: 19, bodyBytes: 400 })
      await mkdir(path.join(big.root, '_migrations'))
      await writeFile(path.join(big.root, '_migrations', 'v1_to_v2.mjs'), BIG_SCRIPT)
      const file = path.join(dir, 'big.html')
      const r = await binAsync(['--agents-root', big.root, '--to', 'v2', '--dry-run', '--no-progress', '--report', file])
      expect(r.code, r.stderr).toBe(0)
      const patch = r.stdout
      const changed = [...patch.matchAll(/^diff --git a\/(\S+) b\//gm)].map((m) => m[1] as string)
      expect(changed.length).toBe(10_000)
      const pending = /preview kept on (refs\/aas\/pending\/\S+)/.exec(r.stderr)?.[1]
      const groups = [...r.stderr.matchAll(/^ {2}(\d[\d,]*) (units?) +(\S.*)$/gm)].map((m) => `${m[1]} ${m[2]}${m[3]}`)
      // Every group is on stderr (fewer than 20), and together they are every changed unit.
      expect(groups.length).toBe(Number(/^change patterns: (\d+) groups?$/m.exec(r.stderr)?.[1]))
      expect(groups.reduce((n, g) => n + Number(g.replace(/ units?.*/, '').replace(/,/g, '')), 0)).toBe(10_000)

      const page = await open(file)
      expect(await page.textContent('#vault')).toBe(big.root)
      expect(await page.textContent('#from-to')).toBe('v1 → v2')
      expect(await page.textContent('#pending')).toBe(pending)
      expect(await page.textContent('#validation')).toBe('10,000 units valid at v2')
      const blob = hashBlob(await readFile(path.join(big.root, '_migrations', 'v1_to_v2.mjs')))
      expect(await page.locator('#scripts li').allTextContents()).toEqual([`_migrations/v1_to_v2.mjs blob ${blob}`])
      expect(await page.textContent('#patterns h2')).toBe(`Change patterns: ${groups.length} groups`)
      expect(await page.locator('#patterns tr').allTextContents()).toEqual(groups)
      expect(await page.textContent('#count')).toBe('10,000 of 10,000 units')
      expect(await page.locator('#units li').allTextContents()).toEqual(changed.slice(0, 300))
      expect(await page.locator('#diff table').count()).toBe(0)

      const scout = changed.filter((p) => p.startsWith('scout/'))
      await page.selectOption('#f-agent', { label: 'scout' })
      await expect.poll(() => page.textContent('#count')).toBe(`${scout.length.toLocaleString('en-US')} of 10,000 units`)
      expect(await page.locator('#units li').allTextContents()).toEqual(scout.slice(0, 300))
      await page.click('#more')
      expect(await page.locator('#units li').allTextContents()).toEqual(scout.slice(0, 600))
      const unit = scout[450] as string
      await page.locator('#units li').nth(450).click()
      expect(await page.textContent('#diff-path')).toBe(unit)
      const shown = await page.locator('#diff table.unified tr:not(.hunk) td:nth-child(3)').allTextContents()
      expect(shown).toEqual(patchLines(patch, unit))
      expect(shown.filter((l) => l.startsWith('+'))).toContain('+provenance: v1_migrated')
      const shot = path.join(dir, 'big.png')
      await page.screenshot({ path: shot })
      expect((await stat(shot)).size).toBeGreaterThan(10_000)
      expect(requests).toEqual([])
      expect(pageErrors).toEqual([])
    } finally {
      await big.cleanup()
    }
  }, 120_000)
})
