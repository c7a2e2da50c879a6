import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BackendName } from '../../src/git/store.js'
import { repoRoot } from '../helpers/make-vault.js'

// Files of hundreds of MB under <agent>/raw/ are snapshotted and restored without being
// held in memory whole: a separate Node process (the built dist/, as the CLI runs it)
// snapshots a vault holding a 300 MB file and streams that blob back out through
// writeBlobToTemp; its peak RSS must stay far below the file size.

const SIZE = 300 * 1024 * 1024
const RSS_LIMIT_KB = 200 * 1024
const RAW = 'alice/raw/session-recording.bin'
const dist = path.join(repoRoot, 'dist')

const CHILD = `
import path from 'node:path'
const [dist, root, backend, rel, out] = process.argv.slice(2)
const { openStore } = await import(path.join(dist, 'git/open-store.js'))
const { writeBlobToTemp } = await import(path.join(dist, 'transaction/blob-stream.js'))
const t0 = Date.now()
const store = await openStore({ agentsRoot: root, backend })
const res = await store.writeVaultTree()
const entry = (await store.listTree(res.tree)).find((e) => e.path === rel)
const snapshotRssKB = process.resourceUsage().maxRSS
const t1 = Date.now()
const bytes = await writeBlobToTemp(store, entry.oid, out, entry.mode)
const t2 = Date.now()
console.log(JSON.stringify({ oid: entry.oid, bytes, snapshotSeconds: (t1 - t0) / 1000, restoreSeconds: (t2 - t1) / 1000, snapshotRssKB, maxRssKB: process.resourceUsage().maxRSS }))
`

async function sha1File(file: string): Promise<string> {
  const hash = createHash('sha1')
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

describe('big files under raw/ are streamed, never held in memory whole', () => {
  let base: string
  let root: string
  let script: string
  let contentSha1: string
  let blobId: string

  beforeAll(async () => {
    if (!existsSync(path.join(dist, 'transaction', 'blob-stream.js'))) throw new Error(`${dist} has no transaction/blob-stream.js: run \`npm run build\` first`)
    base = await mkdtemp(path.join(tmpdir(), 'aas-bigfiles-'))
    root = path.join(base, 'vault')
    await mkdir(path.join(root, path.dirname(RAW)), { recursive: true })
    await mkdir(path.join(root, 'alice/memory'), { recursive: true })
    await writeFile(path.join(root, 'alice/memory/note.md'), '---\nschema_version: 1\n---\nsee raw/\n')
    // 300 MB of random bytes, written (and hashed) a MB at a time.
    const content = createHash('sha1')
    const blob = createHash('sha1').update(`blob ${SIZE}\0`)
    const fh = await open(path.join(root, RAW), 'wx')
    try {
      for (let done = 0; done < SIZE; done += 1 << 20) {
        const chunk = randomBytes(Math.min(1 << 20, SIZE - done))
        content.update(chunk)
        blob.update(chunk)
        await fh.write(chunk)
      }
    } finally {
      await fh.close()
    }
    contentSha1 = content.digest('hex')
    blobId = blob.digest('hex')
    script = path.join(base, 'child.mjs')
    await writeFile(script, CHILD)
  }, 120_000)

  afterAll(async () => {
    if (base) await rm(base, { recursive: true, force: true })
  })

  it.each<BackendName>(['cli', 'js'])(
    'when a vault holds a 300 MB file then the %s store snapshots it and streams it back with peak RSS under 200 MB, byte-identical',
    async (backend) => {
      await rm(path.join(root, '_migrations'), { recursive: true, force: true })
      const out = path.join(base, `.restored-${backend}.aas-tmp-test`)
      await rm(out, { force: true })
      // /usr/bin/time reports the largest RSS of the process tree (git children included);
      // the assertion is on the Node process's own peak.
      const hasTime = existsSync('/usr/bin/time')
      const cmd = hasTime ? '/usr/bin/time' : process.execPath
      const args = [...(hasTime ? ['-f', 'TREE_MAX_RSS_KB=%M', process.execPath] : []), script, dist, root, backend, RAW, out]
      const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, AAS_GIT: backend }, maxBuffer: 1 << 20 })
      expect(r.status, r.stderr).toBe(0)
      const report = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
        oid: string
        bytes: number
        snapshotSeconds: number
        restoreSeconds: number
        snapshotRssKB: number
        maxRssKB: number
      }
      const tree = /TREE_MAX_RSS_KB=(\d+)/.exec(r.stderr)?.[1]
      console.log(`${backend}: ${JSON.stringify({ ...report, treeMaxRssKB: tree ? Number(tree) : null })}`)
      expect(report.oid).toBe(blobId)
      expect(report.bytes).toBe(SIZE)
      expect(report.maxRssKB).toBeLessThan(RSS_LIMIT_KB)
      expect((await stat(out)).size).toBe(SIZE)
      expect(await sha1File(out)).toBe(contentSha1)
      await rm(out, { force: true })
    },
    300_000,
  )
})

// A write phase's blobs come from one `git cat-file --batch` for the cli backend
// (prefetchingBlobSource): reading 200 MB of 4 MB blobs through it, the git process
// never maps much of the pack at once. Its peak RSS (VmHWM, read from /proc while the
// read goes on) was about the pack's size with git's default pack windows.
const READER = `
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
const [dist, root] = process.argv.slice(2)
const { openStore } = await import(path.join(dist, 'git/open-store.js'))
const { prefetchingBlobSource } = await import(path.join(dist, 'transaction/blob-prefetch.js'))
const store = await openStore({ agentsRoot: root, backend: 'cli' })
const res = await store.writeVaultTree()
const entries = (await store.listTree(res.tree)).filter((e) => e.path.endsWith('.bin'))
// The peak RSS of this process's children (git), from /proc.
let gitPeakKB = 0
const sample = () => {
  for (const task of readdirSync('/proc/self/task')) {
    for (const pid of readFileSync(\`/proc/self/task/\${task}/children\`, 'utf8').trim().split(/\\s+/).filter(Boolean)) {
      try {
        const hwm = /VmHWM:\\s+(\\d+)/.exec(readFileSync(\`/proc/\${pid}/status\`, 'utf8'))
        if (hwm) gitPeakKB = Math.max(gitPeakKB, Number(hwm[1]))
      } catch {}
    }
  }
}
const source = prefetchingBlobSource(store, entries.map((e) => e.oid), { bytes: 16 << 20 })
let bytes = 0
for (const e of entries) {
  const b = await source(e.oid)
  bytes += b.length
  sample()
}
await source.close()
console.log(JSON.stringify({ blobs: entries.length, bytes, gitPeakKB }))
`

describe('a write phase reading many big-ish blobs from one git process', () => {
  let base: string
  let root: string
  let script: string
  const FILES = 50
  const FILE_SIZE = 4 * 1024 * 1024

  beforeAll(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'aas-readahead-'))
    root = path.join(base, 'vault')
    await mkdir(path.join(root, 'alice/raw'), { recursive: true })
    await mkdir(path.join(root, 'alice/memory'), { recursive: true })
    await writeFile(path.join(root, 'alice/memory/note.md'), '---\nschema_version: 1\n---\nsee raw/\n')
    for (let i = 0; i < FILES; i++) await writeFile(path.join(root, `alice/raw/a${String(i).padStart(2, '0')}.bin`), randomBytes(FILE_SIZE))
    script = path.join(base, 'reader.mjs')
    await writeFile(script, READER)
  }, 120_000)

  afterAll(async () => {
    if (base) await rm(base, { recursive: true, force: true })
  })

  it('when 200 MB of 4 MB blobs are read through the prefetching source then git never holds more than 64 MB of the pack', async () => {
    const r = spawnSync(process.execPath, [script, dist, root], { encoding: 'utf8', env: { ...process.env, AAS_GIT: 'cli' }, maxBuffer: 1 << 20 })
    expect(r.status, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { blobs: number; bytes: number; gitPeakKB: number }
    console.log(`read ahead: ${JSON.stringify(report)}`)
    expect(report.blobs).toBe(FILES)
    expect(report.bytes).toBe(FILES * FILE_SIZE)
    expect(report.gitPeakKB).toBeGreaterThan(0) // the git process was seen
    expect(report.gitPeakKB).toBeLessThan(64 * 1024)
  }, 300_000)
})
