import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createUnitHandle } from '../../src/migrations/unit.js'
import { parseUnitBytes } from '../../src/vault/frontmatter.js'
import { fixturesDir, git } from '../helpers/make-vault.js'
import { generateUnitCorpus } from '../helpers/unit-corpus.js'

interface Script {
  appliesTo(unit: unknown): boolean
  migrate(unit: unknown): unknown
}

async function markdownFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await markdownFiles(full, base)))
    else if (entry.name.endsWith('.md')) out.push(path.relative(base, full).split(path.sep).join('/'))
  }
  return out
}

let dir: string | undefined
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
  dir = undefined
})

describe('a v1 -> v2 migration yields minimal git diffs', () => {
  it('when schema_version is set to 2 and provenance added then each migrated unit has exactly one line changed and one added', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aas-fm-diff-'))
    const script = ((await import(path.join(fixturesDir, 'migrations', 'v1_to_v2.mjs'))) as { default: Script }).default
    const corpus = generateUnitCorpus({ count: 500, seed: 11 })
    for (const { name, text } of corpus) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true })
      await writeFile(path.join(dir, name), text)
    }
    const fixtureVault = path.join(fixturesDir, 'vault-v1')
    for (const rel of await markdownFiles(fixtureVault)) {
      await mkdir(path.dirname(path.join(dir, 'fixture', rel)), { recursive: true })
      await writeFile(path.join(dir, 'fixture', rel), await readFile(path.join(fixtureVault, rel)))
    }
    git(dir, 'init', '-q', '-b', 'main')
    git(dir, 'config', 'core.autocrlf', 'false')
    git(dir, 'config', 'commit.gpgSign', 'false')
    git(dir, 'add', '-A')
    git(dir, 'commit', '-q', '-m', 'v1')

    const migrated = new Set<string>()
    for (const rel of await markdownFiles(dir)) {
      const file = path.join(dir, rel)
      const parsed = parseUnitBytes(await readFile(file))
      if (!parsed.ok) throw new Error(`${rel} does not parse: ${parsed.error.message}`)
      const handle = createUnitHandle({ unitId: rel, unitType: rel.includes('/wiki/') ? 'wiki' : 'memory', text: parsed.unit })
      if (!script.appliesTo(handle.unit)) continue
      script.migrate(handle.unit)
      await writeFile(file, parsed.unit.toString())
      migrated.add(rel)
    }
    expect(migrated.size).toBeGreaterThan(420)

    const numstat = git(dir, '-c', 'core.quotePath=false', 'diff', '--numstat').trim().split('\n')
    const byPath = new Map(
      numstat.map((line) => {
        const [added, deleted, file] = line.split('\t')
        return [file!, `${added}/${deleted}`] as const
      }),
    )
    expect([...byPath.keys()].sort()).toEqual([...migrated].sort())
    const notMinimal = [...byPath].filter(([, stat]) => stat !== '2/1')
    expect(notMinimal).toEqual([])

    // The lines that changed are exactly the version line and the new provenance line.
    const patch = git(dir, 'diff', '-U0', '--no-color')
    const changed = patch
      .split('\n')
      .filter((l) => /^[-+](?![-+]{2} )/.test(l))
      .map((l) => l.replace(/\r$/, '').replace(/ *#.*$/, ''))
    expect(new Set(changed)).toEqual(new Set(['-schema_version: 1', '+schema_version: 2', '+provenance: v1_migrated']))
  })
})
