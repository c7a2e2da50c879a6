import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadReadingCache, READING_CACHE_FILE } from '../../src/git/reading-cache.js'
import { READING_RULES_VERSION, takeInventory } from '../../src/vault/unit-reading.js'
import type { ScopeEntry } from '../../src/vault/walk.js'
import { ENGINE_VERSION } from '../../src/version.js'

// The cache of unit readings behind --status (src/git/reading-cache.ts), driven through
// takeInventory with a chosen scan start, so that trust does not depend on waiting: a
// scan "a minute later" trusts every file written now, a scan "now" trusts none.

let root = ''
let stateDir = ''
// A round mtime (whole seconds) that utimes can set back exactly.
const OLD_MTIME_S = 1_700_000_000

const UNITS: Record<string, string> = {
  'a/memory/user_one.md': '---\nschema_version: 1\nname: one\n---\nbody one\n',
  'a/memory/user_two.md': '---\nschema_version: 1\nname: two\n---\nbody two\n',
  'a/wiki/page.md': '---\nschema_version: 1\ntype: wiki_page\n---\npage\n',
  'b/memory/nested.md': '---\nschema_version: 1\nreview: # a nested mapping: the full parser reads this one\n  every: 30\n---\n',
  'b/memory/plain.md': '# no front matter\n',
}

function write(rel: string, text: string): void {
  const abs = path.join(root, rel)
  mkdirSync(path.dirname(abs), { recursive: true })
  writeFileSync(abs, text)
  utimesSync(abs, OLD_MTIME_S, OLD_MTIME_S)
}

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'aas-rcache-'))
  stateDir = path.join(root, '_migrations', 'aas.git', 'aas')
  mkdirSync(stateDir, { recursive: true })
  for (const [rel, text] of Object.entries(UNITS)) write(rel, text)
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

// One --status's inventory through the cache, the scan starting at scanStartedMs.
async function cachedInventory(scanStartedMs = Date.now() + 60_000) {
  const cache = await loadReadingCache(stateDir, root, scanStartedMs)
  const r = await takeInventory(root, { cache })
  const written = await cache.save(stateDir, root)
  return { inventory: r.inventory, read: r.read, loaded: cache.loaded, written }
}

// The inventory read from scratch, the reference.
async function truth() {
  return (await takeInventory(root)).inventory
}

describe('the reading cache of --status', () => {
  it('when nothing changed then a repeat reads no unit and does not rewrite the file', async () => {
    const first = await cachedInventory()
    expect(first).toMatchObject({ loaded: false, read: 5, written: true })
    const again = await cachedInventory()
    expect(again).toMatchObject({ loaded: true, read: 0, written: false })
    expect(again.inventory).toEqual(await truth())
    expect(again.inventory.versions).toEqual([
      { version: 0, memory: 1, wiki: 0, total: 1 },
      { version: 1, memory: 3, wiki: 1, total: 4 },
    ])
  })

  const rel = 'a/memory/user_one.md'
  const abs = () => path.join(root, rel)
  // Changes that keep a unit's size, and (put back with utimes) its mtime.
  const HIDDEN: Array<[string, () => void]> = [
    ['the version changes, same size, mtime put back', () => write(rel, UNITS[rel]?.replace('schema_version: 1', 'schema_version: 2') as string)],
    ['it becomes unreadable, same size, mtime put back', () => write(rel, UNITS[rel]?.replace('name: one', 'name: [ne') as string)],
    ['it becomes unversioned, same size, mtime put back', () => write(rel, UNITS[rel]?.replace('schema_version', 'schema_versiom') as string)],
    ['it becomes binary, same size, mtime put back', () => write(rel, UNITS[rel]?.replace('body', 'b\0dy') as string)],
    [
      'it is replaced by another file (rename), same size and mtime',
      () => {
        const tmp = `${abs()}.new`
        writeFileSync(tmp, UNITS[rel]?.replace('schema_version: 1', 'schema_version: 3') as string)
        utimesSync(tmp, OLD_MTIME_S, OLD_MTIME_S)
        renameSync(tmp, abs())
      },
    ],
  ]

  it.each(HIDDEN)('when %s then the repeat sees it', async (_name, change) => {
    await cachedInventory()
    expect((await cachedInventory()).read).toBe(0) // every row trusted: the cache answers alone
    const previous = await truth()
    const before = statSync(abs())
    change()
    const after = statSync(abs())
    expect(after.size).toBe(before.size)
    expect(after.mtimeMs).toBe(before.mtimeMs)
    const again = await cachedInventory()
    expect(again.read).toBe(1)
    expect(again.inventory).toEqual(await truth())
    expect(again.inventory).not.toEqual(previous)
    // The file it saved (the rows read again rewritten in the file read) answers alone.
    const third = await cachedInventory()
    expect(third).toMatchObject({ read: 0, written: false })
    expect(third.inventory).toEqual(again.inventory)
  })

  it('when a unit is touched without a change, deleted or added then the repeat follows', async () => {
    await cachedInventory()
    utimesSync(abs(), OLD_MTIME_S + 5, OLD_MTIME_S + 5)
    const touched = await cachedInventory()
    expect(touched).toMatchObject({ read: 1, written: true })
    expect(touched.inventory).toEqual(await truth())
    await rm(path.join(root, 'a/wiki/page.md'))
    write('c/wiki/new.md', '---\nschema_version: 4\n---\n')
    const moved = await cachedInventory()
    expect(moved.read).toBe(1)
    expect(moved.inventory).toEqual(await truth())
    expect(moved.inventory.versions.map((v) => v.version)).toEqual([0, 1, 4])
  })

  it('when a file was modified within 2 s of the scan that read it then it is read again, even with the same stat', async () => {
    const ctime = statSync(abs()).ctimeMs
    // A scan that started 1 s after the file's last change: racy, recorded untrusted.
    await cachedInventory(ctime + 1000)
    const again = await cachedInventory(ctime + 60_000)
    expect(again.read).toBe(5) // every file was written within that window
    expect((await cachedInventory(ctime + 60_000)).read).toBe(0) // read in a later scan, it is trusted
  })

  it('when a file has an mtime in the future then it is never trusted to its stat', async () => {
    const future = Date.now() / 1000 + 3600
    utimesSync(abs(), future, future)
    await cachedInventory()
    expect((await cachedInventory()).read).toBe(1)
    expect((await cachedInventory()).read).toBe(1)
  })

  const file = () => path.join(stateDir, READING_CACHE_FILE)
  // A valid cache file whose meta JSON is changed and whose checksum is made right again.
  function rewriteMeta(edit: (meta: Record<string, unknown>) => void): void {
    const buf = readFileSync(file())
    const metaLen = buf.readUInt32LE(12)
    const meta = JSON.parse(buf.toString('utf8', 24, 24 + metaLen)) as Record<string, unknown>
    expect(meta).toMatchObject({ engine: ENGINE_VERSION, rules: READING_RULES_VERSION, root })
    edit(meta)
    const text = Buffer.from(JSON.stringify(meta))
    expect(text.length).toBe(metaLen) // same length: only the meaning changes
    text.copy(buf, 24)
    createHash('sha1')
      .update(buf.subarray(0, buf.length - 20))
      .digest()
      .copy(buf, buf.length - 20)
    writeFileSync(file(), buf)
  }

  const DAMAGE: Array<[string, () => void]> = [
    ['garbage', () => writeFileSync(file(), 'not a cache at all')],
    ['empty', () => writeFileSync(file(), '')],
    ['cut short', () => writeFileSync(file(), readFileSync(file()).subarray(0, 100))],
    [
      'one byte flipped',
      () => {
        const b = readFileSync(file())
        b[b.length - 40] = (b[b.length - 40] as number) ^ 1
        writeFileSync(file(), b)
      },
    ],
    ['of another engine version', () => rewriteMeta((m) => (m.engine = String(m.engine).replace(/\d/, (d) => String((Number(d) + 1) % 10))))],
    ['of other reading rules', () => rewriteMeta((m) => (m.rules = (m.rules as number) + 1))],
    // (the last character changed: mkdtemp's name may end in X already)
    ['of another agents_root', () => rewriteMeta((m) => (m.root = `${String(m.root).slice(0, -1)}${String(m.root).endsWith('X') ? 'Y' : 'X'}`))],
  ]

  it.each(DAMAGE)('when the cache file is %s then it is ignored and rebuilt, never an error', async (_name, damage) => {
    await cachedInventory()
    // A change the damaged cache could hide if it were trusted.
    write(rel, UNITS[rel]?.replace('schema_version: 1', 'schema_version: 7') as string)
    damage()
    const r = await cachedInventory()
    expect(r).toMatchObject({ loaded: false, read: 5, written: true })
    expect(r.inventory).toEqual(await truth())
    expect((await cachedInventory()).loaded).toBe(true)
  })

  it('when several writers save at once then the file is one of theirs, whole, and no temp file stays', async () => {
    await cachedInventory()
    write(rel, UNITS[rel]?.replace('schema_version: 1', 'schema_version: 2') as string)
    const caches = await Promise.all(Array.from({ length: 8 }, () => loadReadingCache(stateDir, root, Date.now() + 60_000)))
    await Promise.all(caches.map((c) => takeInventory(root, { cache: c })))
    expect(await Promise.all(caches.map((c) => c.save(stateDir, root)))).toEqual(Array(8).fill(true))
    expect(readdirSync(stateDir)).toEqual([READING_CACHE_FILE])
    const next = await cachedInventory()
    expect(next).toMatchObject({ loaded: true, read: 0 })
    expect(next.inventory).toEqual(await truth())
  })

  it('when the state folder is gone then saving fails and nothing is created', async () => {
    const cache = await loadReadingCache(stateDir, root, Date.now() + 60_000)
    await takeInventory(root, { cache })
    await rm(stateDir, { recursive: true })
    await expect(cache.save(stateDir, root)).rejects.toThrow()
    expect(readdirSync(path.dirname(stateDir))).toEqual([])
  })

  it('when a reading comes from a file read again with known bytes then it is the reading of those bytes', async () => {
    await cachedInventory()
    // Another path with the bytes of a known unit: found by blob id, same reading.
    write('a/memory/user_copy.md', UNITS['a/memory/user_two.md'] as string)
    const cache = await loadReadingCache(stateDir, root, Date.now() + 60_000)
    const seen: Array<{ oid: string; kind: string }> = []
    const spy = {
      byStat: (e: ScopeEntry) => cache.byStat(e),
      byOid: (oid: string) => {
        const r = cache.byOid(oid)
        if (r) seen.push({ oid, kind: r.kind })
        return r
      },
      record: (e: ScopeEntry, oid: string, r: Parameters<typeof cache.record>[2]) => cache.record(e, oid, r),
    }
    const r = await takeInventory(root, { cache: spy })
    expect(r.read).toBe(1)
    expect(seen).toEqual([{ oid: expect.stringMatching(/^[0-9a-f]{40}$/), kind: 'versioned' }])
    expect(r.inventory).toEqual(await truth())
  })
})
