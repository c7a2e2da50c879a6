import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateVault } from '../helpers/gen-vault.js'
import { makeVault, type TempVault } from '../helpers/make-vault.js'
import { cli } from '../helpers/run-cli.js'

// A generated 60-unit vault and a v1 -> v2 script with three deliberate sub-populations
// (plain memory notes, pinned memory notes that lose `pinned`, wiki pages whose tags
// change) and two outliers (a body edit, a confidence change).
const UNITS = 60
let vault: TempVault
let paths: string[]
let outliers: [string, string]

const isWiki = (i: number): boolean => i % 5 === 4
const isPinned = (i: number): boolean => !isWiki(i) && i % 3 === 0

beforeAll(async () => {
  vault = await makeVault(null)
  paths = await generateVault(vault.root, { units: UNITS, seed: 7, bodyBytes: 200 })
  const plain = paths.filter((_, i) => !isWiki(i) && !isPinned(i))
  outliers = [plain[5] as string, plain[17] as string]
  await mkdir(path.join(vault.root, '_migrations'))
  await writeFile(
    path.join(vault.root, '_migrations', 'v1_to_v2.mjs'),
    `const [BODY, CONFIDENT] = ${JSON.stringify(outliers)}
export default {
  from: 1, to: 2,
  appliesTo: (u) => u.readFrontmatter().schema_version === 1,
  migrate(u) {
    const m = u.readFrontmatter()
    m.schema_version = 2
    if ('pinned' in m) delete m.pinned
    if (u.unitType === 'wiki') m.tags = [...m.tags, 'wiki']
    if (u.unitId === CONFIDENT) m.confidence = 'certain'
    m.provenance = 'v1_migrated'
    u.writeFrontmatter(m)
    if (u.unitId === BODY) u.writeBody(u.readBody() + 'Reviewed.\\n')
    return { changes: ['v2'] }
  },
}
`,
  )
})
afterAll(() => vault.cleanup())

function expected() {
  const sorted = (xs: string[]): string[] => [...xs].sort()
  const plain = paths.filter((p, i) => !isWiki(i) && !isPinned(i) && !outliers.includes(p))
  return [
    { units: 30, label: 'schema_version: 1 → 2, + provenance: v1_migrated', paths: sorted(plain) },
    { units: 16, label: 'schema_version: 1 → 2, - pinned: false, + provenance: v1_migrated', paths: sorted(paths.filter((_, i) => isPinned(i))) },
    { units: 12, label: 'schema_version: 1 → 2, tags changed, + provenance: v1_migrated', paths: sorted(paths.filter((_, i) => isWiki(i))) },
    { units: 1, label: 'schema_version: 1 → 2, + provenance: v1_migrated, body changed', paths: [outliers[0]] },
  ]
}

describe('change patterns', () => {
  it('--json groups the dry run by what changed: exact groups, counts and outlier paths', async () => {
    const r = await cli(['--agents-root', vault.root, '--to', 'v2', '--dry-run', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const patterns = JSON.parse(r.stdout).result.patterns as Array<Record<string, unknown>>
    expect(patterns.map((p) => p.units)).toEqual([30, 16, 12, 1, 1])
    for (const [i, want] of expected().entries()) expect(patterns[i]).toMatchObject({ ...want, onlyTheseLines: true, unexplained: null, body: i === 3 })
    const confident = patterns[4] as { label: string; paths: string[]; keys: unknown[] }
    expect(confident.label).toMatch(/^schema_version: 1 → 2, confidence: (high|medium|low) → certain, \+ provenance: v1_migrated$/)
    expect(confident.paths).toEqual([outliers[1]])
    expect(patterns[0]?.examples).toEqual(expected()[0]?.paths.slice(0, 3))
    expect(patterns[2]?.keys).toEqual([
      { key: 'schema_version', change: 'changed', from: '1', to: '2' },
      { key: 'tags', change: 'changed', from: null, to: null },
      { key: 'provenance', change: 'added', from: null, to: 'v1_migrated' },
    ])
  })

  it('the text dry run prints them after the summary on stderr, largest first; outliers list every path', async () => {
    const r = await cli(['--agents-root', vault.root, '--to', 'v2', '--dry-run', '--no-progress'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).not.toContain('change patterns')
    const [first, second, third] = expected()
    const block = r.stderr.slice(r.stderr.indexOf('change patterns: 5 groups\n'), r.stderr.indexOf('validation:'))
    expect(block.split('\n').slice(0, 7)).toEqual([
      'change patterns: 5 groups',
      `  30 units  ${first?.label}`,
      `            e.g. ${first?.paths.slice(0, 3).join(', ')} (+27 more)`,
      `  16 units  ${second?.label}`,
      `            e.g. ${second?.paths.slice(0, 3).join(', ')} (+13 more)`,
      `  12 units  ${third?.label}`,
      `            e.g. ${third?.paths.slice(0, 3).join(', ')} (+9 more)`,
    ])
    expect(block).toContain(`  1 unit    schema_version: 1 → 2, + provenance: v1_migrated, body changed\n            ${outliers[0]}\n`)
    expect(block).toContain(`\n            ${outliers[1]}\n`)
    expect(r.stderr.indexOf('units: 60 read')).toBeLessThan(r.stderr.indexOf('change patterns'))
  })

  it('--stat carries the same groups', async () => {
    const r = await cli(['--agents-root', vault.root, '--to', 'v2', '--dry-run', '--stat', '--no-progress'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('60 files changed')
    expect(r.stderr).toContain(`change patterns: 5 groups\n  30 units  ${expected()[0]?.label}\n`)
  })

  it('a real run prints them with its summary', async () => {
    const r = await cli(['--agents-root', vault.root, '--to', 'v2', '--no-progress'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`change patterns: 5 groups\n  30 units  ${expected()[0]?.label}\n`)
  })
})
