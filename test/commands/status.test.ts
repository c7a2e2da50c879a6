import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { status } from '../../src/api.js'
import { JOURNAL_FILE_NAME } from '../../src/commands/status.js'
import { openStore } from '../../src/git/open-store.js'
import { READING_CACHE_FILE } from '../../src/git/reading-cache.js'
import { takeSnapshot } from '../../src/snapshots/take.js'
import { JOURNAL_FILE } from '../../src/transaction/journal.js'
import { takeInventory } from '../../src/vault/unit-reading.js'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'
import { binPath } from '../helpers/run-cli.js'

// --status and its cache of unit readings, end to end with the real clock: the vaults
// are made first, then the tests wait out the 2 s racy window once, so that the first
// --status of a test trusts what it reads.

const vaults: TempVault[] = []
const byName = new Map<string, TempVault>()
const UNIT = 'caldwell/memory/feedback_debt_priority.md'
const OLD_MTIME_S = 1_700_000_000 // whole seconds: utimes sets it back exactly

// Every file below dir (relative path → size and mtime), to show nothing was written.
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else {
        const st = statSync(p)
        out[path.relative(dir, p)] = `${st.size}:${st.mtimeMs}`
      }
    }
  }
  walk(dir)
  return out
}

async function snapshot(root: string, backend: 'cli' | 'js'): Promise<void> {
  await takeSnapshot(await openStore({ agentsRoot: root, backend }), { target: 2, from: 1, runId: `status-test-${backend}` })
}

beforeAll(async () => {
  for (const [name, options] of [
    ['plain', {}],
    ['git-fresh', { git: true }],
    ['git-snapshot', { git: true }],
    ['cli', {}],
    ['js', {}],
    ['concurrent', {}],
  ] as const) {
    const v = await makeVault('vault-v1', options)
    vaults.push(v)
    byName.set(name, v)
    utimesSync(path.join(v.root, UNIT), OLD_MTIME_S, OLD_MTIME_S)
  }
  await snapshot(byName.get('git-snapshot')?.root as string, 'cli')
  await snapshot(byName.get('cli')?.root as string, 'cli')
  await snapshot(byName.get('js')?.root as string, 'js')
  await snapshot(byName.get('concurrent')?.root as string, 'cli')
  // Past the racy window of every file written above.
  await new Promise((resolve) => setTimeout(resolve, 2200))
}, 60_000)
afterAll(async () => {
  for (const v of vaults) await v.cleanup()
})

const vault = (name: string): TempVault => byName.get(name) as TempVault

describe('--status and its reading cache', () => {
  it('when the vault has no store then it writes nothing and keeps no cache', async () => {
    const v = vault('plain')
    const before = tree(v.dir)
    const s = await status({ agentsRoot: v.root })
    expect(s.cache).toBeNull()
    expect(s.store.exists).toBe(false)
    expect(s.inventory.units).toBe(13)
    expect(tree(v.dir)).toEqual(before)
  })

  it('when the vault is in a git repository where no snapshot was taken then it writes nothing there either', async () => {
    const v = vault('git-fresh')
    const before = tree(v.dir)
    const s = await status({ agentsRoot: v.root })
    expect(s.store).toMatchObject({ kind: 'repo', exists: true })
    expect(s.cache).toBeNull()
    expect(tree(v.dir)).toEqual(before)
  })

  it('when the vault is in a git repository with a snapshot then the cache is in <git-dir>/aas/ and the index and HEAD stay', async () => {
    const v = vault('git-snapshot')
    const head = git(v.dir, 'rev-parse', 'HEAD')
    const index = readFileSync(path.join(v.dir, '.git', 'index'))
    const first = await status({ agentsRoot: v.root })
    expect(first.cache).toMatchObject({ file: path.join(v.dir, '.git', 'aas', READING_CACHE_FILE), loaded: false, read: 13, written: true })
    const again = await status({ agentsRoot: v.root })
    expect(again.cache).toMatchObject({ loaded: true, read: 0, written: false })
    expect(again.inventory).toEqual(first.inventory)
    expect(git(v.dir, 'rev-parse', 'HEAD')).toBe(head)
    expect(readFileSync(path.join(v.dir, '.git', 'index'))).toEqual(index)
    expect(git(v.dir, 'status', '--porcelain')).toBe('')
  })

  for (const backend of ['cli', 'js'] as const) {
    it(`with a store written by the ${backend} backend: a repeat reads only the unit changed behind an unchanged size and mtime, and sees the change`, async () => {
      const v = vault(backend)
      const first = await status({ agentsRoot: v.root })
      expect(first.cache).toMatchObject({ loaded: false, read: 13, written: true })
      expect((await status({ agentsRoot: v.root })).cache).toMatchObject({ loaded: true, read: 0 })
      const abs = path.join(v.root, UNIT)
      const st = statSync(abs)
      writeFileSync(abs, readFileSync(abs, 'utf8').replace('schema_version: 1', 'schema_version: 4'))
      utimesSync(abs, OLD_MTIME_S, OLD_MTIME_S)
      expect(statSync(abs)).toMatchObject({ size: st.size, mtimeMs: st.mtimeMs, ino: st.ino })
      const again = await status({ agentsRoot: v.root })
      expect(again.cache).toMatchObject({ loaded: true, read: 1, written: true })
      expect(again.inventory).toEqual((await takeInventory(v.root)).inventory)
      expect(again.inventory.versions).toEqual([
        { version: 1, memory: 8, wiki: 4, total: 12 },
        { version: 4, memory: 1, wiki: 0, total: 1 },
      ])
    })
  }

  // (Here the ctime moves too; test/git/reading-cache.test.ts shows the racy window alone,
  // with identical stats.)
  it('when a unit is rewritten within the second the cache was written then the next --status still sees it', async () => {
    const v = vault('cli')
    const abs = path.join(v.root, UNIT)
    const text = readFileSync(abs, 'utf8')
    // Written now, read at once: within the racy window of that scan.
    writeFileSync(abs, text.replace(/schema_version: \d+/, 'schema_version: 5'))
    utimesSync(abs, OLD_MTIME_S, OLD_MTIME_S)
    const s5 = await status({ agentsRoot: v.root })
    expect(s5.inventory.versions.at(-1)).toMatchObject({ version: 5, total: 1 })
    writeFileSync(abs, text.replace(/schema_version: \d+/, 'schema_version: 6'))
    utimesSync(abs, OLD_MTIME_S, OLD_MTIME_S)
    const s6 = await status({ agentsRoot: v.root })
    expect(s6.inventory.versions.at(-1)).toMatchObject({ version: 6, total: 1 })
    expect(s6.inventory).toEqual((await takeInventory(v.root)).inventory)
  })

  it('when several --status processes run at once then all agree and the cache they leave is whole', async () => {
    const v = vault('concurrent')
    const run = (): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [binPath, '--agents-root', v.root, '--status', '--json'], { env: { ...process.env, NO_COLOR: '1' } })
        let out = ''
        child.stdout.on('data', (d) => (out += d))
        child.on('close', (code) => resolve({ code, out }))
      })
    const results = await Promise.all(Array.from({ length: 4 }, run))
    const docs = results.map((r) => {
      expect(r.code).toBe(0)
      return JSON.parse(r.out).status
    })
    for (const d of docs) expect(d.inventory).toEqual(docs[0].inventory)
    const stateDir = path.dirname(docs[0].cache.file)
    expect(readdirSync(stateDir).filter((f) => f.startsWith(READING_CACHE_FILE))).toEqual([READING_CACHE_FILE])
    expect((await status({ agentsRoot: v.root })).cache).toMatchObject({ loaded: true, read: 0 })
  })

  it('when it looks for an interrupted transaction then it looks for the journal the transaction writes', () => {
    expect(JOURNAL_FILE_NAME).toBe(JOURNAL_FILE)
  })
})
