import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { deflateSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { openStore } from '../../src/git/open-store.js'
import { PackReader } from '../../src/git/pack-read.js'
import { makeVault, type TempVault } from '../helpers/make-vault.js'

// The js backend reads whole packed objects itself (src/git/pack-read.ts) and leaves
// deltas to isomorphic-git. Every answer is checked against git's own.

let vault: TempVault | null = null
afterEach(async () => {
  await vault?.cleanup()
  vault = null
})

function gitIn(gitDir: string, args: string[], input?: string | Buffer): string {
  return execFileSync('git', [`--git-dir=${gitDir}`, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 28 }).trim()
}

function gitBytes(gitDir: string, args: string[], input?: string): Buffer {
  return execFileSync('git', [`--git-dir=${gitDir}`, ...args], { input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 28 })
}

// A store whose blobs are versions of the same text (so that git deltifies most of them),
// plus one 3 MB blob of random bytes; all packed by git with `extra` pack-objects flags.
async function packedByGit(extra: string[] = []): Promise<{ gitDir: string; blobs: string[]; packDir: string }> {
  vault = await makeVault(null)
  await writeFile(path.join(vault.root, 'note.md'), 'a note\n')
  const cli = await openStore({ agentsRoot: vault.root, backend: 'cli' })
  await cli.writeVaultTree()
  const gitDir = cli.location.gitDir
  const base = Array.from({ length: 200 }, (_, i) => `line ${i} of a note that agents keep rewriting\n`).join('')
  const texts = Array.from({ length: 40 }, (_, k) => `---\nversion: ${k}\n---\n${base}changed ${k}\n`)
  const blobs = texts.map((t) => gitIn(gitDir, ['hash-object', '-w', '--stdin'], t))
  const big = randomBytes(3 << 20)
  await mkdir(path.join(vault.dir, 'tmp'), { recursive: true })
  await writeFile(path.join(vault.dir, 'tmp', 'big.bin'), big)
  blobs.push(gitIn(gitDir, ['hash-object', '-w', path.join(vault.dir, 'tmp', 'big.bin')]))
  const packDir = path.join(gitDir, 'objects', 'pack')
  gitIn(gitDir, ['pack-objects', '-q', '--window=50', ...extra, path.join(packDir, 'pack')], `${blobs.join('\n')}\n`)
  gitIn(gitDir, ['prune-packed'])
  return { gitDir, blobs, packDir }
}

// How git stored each object: whole or as a delta (verify-pack's fourth column is the
// delta depth for deltified objects).
function deltified(gitDir: string, packDir: string, idx: string): Set<string> {
  const out = gitIn(gitDir, ['verify-pack', '-v', path.join(packDir, idx)])
  const set = new Set<string>()
  for (const line of out.split('\n')) {
    const f = line.split(/\s+/)
    if (/^[0-9a-f]{40}$/.test(f[0] ?? '') && f.length >= 7) set.add(f[0] as string)
  }
  return set
}

async function idxFiles(packDir: string): Promise<string[]> {
  return (await readdir(packDir)).filter((f) => f.endsWith('.idx'))
}

describe('packed objects read without isomorphic-git', () => {
  it('when git packed blobs, some as deltas, then each whole one reads as git reads it, deltas are left to the fallback, and the js store reads all', async () => {
    const { gitDir, blobs, packDir } = await packedByGit()
    const idx = (await idxFiles(packDir)).find((f) => gitIn(gitDir, ['verify-pack', '-v', path.join(packDir, f)]).includes(blobs[0] as string)) as string
    const deltas = deltified(gitDir, packDir, idx)
    expect(deltas.size).toBeGreaterThan(10)
    expect(blobs.length - deltas.size).toBeGreaterThan(1)

    const reader = new PackReader(packDir)
    for (const oid of blobs) {
      const got = reader.read(oid)
      if (deltas.has(oid)) {
        expect(got, oid).toBeNull()
        expect(reader.header(oid), oid).toBeNull()
        continue
      }
      expect(got?.type).toBe('blob')
      expect(got?.content.equals(gitBytes(gitDir, ['cat-file', 'blob', oid])), oid).toBe(true)
      expect(reader.header(oid)).toEqual({ type: 'blob', size: Number(gitIn(gitDir, ['cat-file', '-s', oid])) })
      expect(reader.has(oid)).toBe(true)
    }
    expect(reader.read('0123456789abcdef0123456789abcdef01234567')).toBeNull()
    reader.close()

    const js = await openStore({ agentsRoot: (vault as TempVault).root, backend: 'js' })
    const sizes = await js.blobSizes(blobs)
    for (const oid of blobs) {
      const want = gitBytes(gitDir, ['cat-file', 'blob', oid])
      expect((await js.readBlob(oid)).equals(want), oid).toBe(true)
      expect(sizes.get(oid)).toBe(want.length)
    }
  })

  it('when the index keeps offsets in its 64-bit table then objects are found through it', async () => {
    // --index-version=2,0: every offset above 0 goes into the 64-bit table.
    const { gitDir, blobs, packDir } = await packedByGit(['--index-version=2,0', '--window=0'])
    const reader = new PackReader(packDir)
    for (const oid of blobs) expect(reader.read(oid)?.content.equals(gitBytes(gitDir, ['cat-file', 'blob', oid])), oid).toBe(true)
    reader.close()
  })

  it('when a packed object is damaged then reading it fails its CRC-32 check and the js store reports the object as corrupt, unless a sound loose copy is there', async () => {
    const { gitDir, blobs, packDir } = await packedByGit(['--window=0'])
    const oid = blobs[blobs.length - 1] as string // the 3 MB blob, stored whole
    const pack = path.join(
      packDir,
      (await idxFiles(packDir)).find((f) => gitIn(gitDir, ['verify-pack', '-v', path.join(packDir, f)]).includes(oid))?.replace(/\.idx$/, '.pack') as string,
    )
    const line = gitIn(gitDir, ['verify-pack', '-v', pack.replace(/\.pack$/, '.idx')])
      .split('\n')
      .find((l) => l.startsWith(oid)) as string
    const [, , , packedSize, offset] = line.split(/\s+/).map(Number) as number[]
    const bytes = await readFile(pack)
    // inside a stored (incompressible) block, so that it still inflates, to other bytes
    const at = (offset as number) + Math.floor((packedSize as number) / 2)
    bytes[at] = (bytes[at] as number) ^ 0xff
    await writeFile(pack, bytes)

    const reader = new PackReader(packDir)
    expect(() => reader.read(oid)).toThrow(/CRC-32/)
    reader.close()
    const js = await openStore({ agentsRoot: (vault as TempVault).root, backend: 'js' })
    await expect(js.readBlob(oid)).rejects.toMatchObject({ code: 'STORE_CORRUPT', message: expect.stringContaining('CRC-32') })
    // the others are intact
    expect((await js.readBlob(blobs[0] as string)).equals(gitBytes(gitDir, ['cat-file', 'blob', blobs[0] as string]))).toBe(true)
    // A sound loose copy is read instead, also once the store has listed the packs (it
    // looks in them first).
    const BIG = await readFile(path.join((vault as TempVault).dir, 'tmp', 'big.bin'))
    const loose = path.join(gitDir, 'objects', oid.slice(0, 2), oid.slice(2))
    await mkdir(path.dirname(loose), { recursive: true })
    await writeFile(loose, deflateSync(Buffer.concat([Buffer.from(`blob ${BIG.length}\0`), BIG])))
    expect((await js.readBlob(oid)).equals(BIG)).toBe(true)
    expect(await js.blobSizes([oid])).toEqual(new Map([[oid, BIG.length]]))
  })

  it('when git repacks the store after the reader listed its packs then the objects are found in the new pack', async () => {
    const { gitDir, blobs, packDir } = await packedByGit(['--window=0'])
    const reader = new PackReader(packDir)
    expect(reader.read(blobs[0] as string)).not.toBeNull()
    reader.release()
    const before = await idxFiles(packDir)
    // everything into one new pack, the old ones deleted (objects kept reachable by a ref)
    const tree = gitIn(gitDir, ['mktree'], blobs.map((b, i) => `100644 blob ${b}\tf${i}\n`).join(''))
    gitIn(gitDir, ['update-ref', 'refs/aas/test-keep', gitIn(gitDir, ['commit-tree', tree, '-m', 'keep'])])
    gitIn(gitDir, ['repack', '-a', '-d', '-q', '--window=0'])
    const after = await idxFiles(packDir)
    expect(after.some((f) => before.includes(f))).toBe(false)
    for (const oid of blobs) expect(reader.read(oid)?.content.equals(gitBytes(gitDir, ['cat-file', 'blob', oid])), oid).toBe(true)
    reader.close()
  })

  it('when the js store packs a snapshot itself then every blob is read from that pack by the reader', async () => {
    vault = await makeVault(null)
    const files = Array.from({ length: 150 }, (_, i) => [`memory/agent/n${i}.md`, `---\nversion: 1\n---\nnote ${i}\n${'x'.repeat(i * 37)}\n`] as const)
    for (const [rel, text] of files) {
      await mkdir(path.dirname(path.join(vault.root, rel)), { recursive: true })
      await writeFile(path.join(vault.root, rel), text)
    }
    const js = await openStore({ agentsRoot: vault.root, backend: 'js' })
    const oids = await js.writeBlobs(
      (async function* () {
        for (const [, text] of files) yield Buffer.from(text)
      })(),
    )
    const reader = new PackReader(path.join(js.location.gitDir, 'objects', 'pack'))
    oids.forEach((oid, i) => expect(reader.read(oid)?.content.toString(), oid).toBe(files[i]?.[1]))
    reader.close()
  })

  it('when objects are read in any order, sizes and contents interleaved, from a pack of several read windows, then each is the bytes git reads', async () => {
    vault = await makeVault(null)
    const js = await openStore({ agentsRoot: vault.root, backend: 'js' })
    // 3,000 blobs of 1–2 KB of random hex (about 4 MB deflated: four windows), and a
    // 1.5 MB one among them (more than a window).
    const texts = Array.from({ length: 3000 }, (_, i) =>
      i === 1500 ? randomBytes(1536 << 10).toString('latin1') : randomBytes(512 + (i % 512)).toString('hex'),
    )
    const oids = await js.writeBlobs(
      (async function* () {
        for (const t of texts) yield Buffer.from(t, 'latin1')
      })(),
    )
    const gitDir = js.location.gitDir
    expect(await idxFiles(path.join(gitDir, 'objects', 'pack'))).toHaveLength(1)
    const expected = (i: number) => Buffer.from(texts[i] as string, 'latin1')
    const reader = new PackReader(path.join(gitDir, 'objects', 'pack'))
    const orders: Record<string, number[]> = {
      forward: texts.map((_, i) => i),
      backward: texts.map((_, i) => texts.length - 1 - i),
      // folders in reverse, each folder's blobs in order (as a rollback reads a snapshot)
      'blocks backward': Array.from({ length: 30 }, (_, b) => Array.from({ length: 100 }, (_, k) => (29 - b) * 100 + k)).flat(),
      scattered: texts.map((_, i) => (i * 1237) % texts.length),
    }
    for (const [name, order] of Object.entries(orders)) {
      for (const [k, i] of order.entries()) {
        const oid = oids[i] as string
        // a size pass running a little ahead of the content pass, as the prefetcher reads
        const ahead = oids[order[k + 7] ?? i] as string
        expect(reader.header(ahead)?.type, `${name} ${ahead}`).toBe('blob')
        const got = reader.read(oid)
        expect(got?.content.equals(expected(i)), `${name}: blob ${i}`).toBe(true)
      }
    }
    reader.close()
    const sample = [0, 1, 1499, 1500, 1501, 2999]
    for (const i of sample) expect(gitBytes(gitDir, ['cat-file', 'blob', oids[i] as string]).equals(expected(i)), `git: blob ${i}`).toBe(true)
  })

  it('when the js store packs blobs held in memory then the event loop still turns while it deflates them', async () => {
    vault = await makeVault(null)
    const js = await openStore({ agentsRoot: vault.root, backend: 'js' })
    // Each blob incompressible and 64 KiB: 600 of them take far longer than one turn's allowance.
    const blobs = Array.from({ length: 600 }, () => randomBytes(64 * 1024))
    let pulled = 0
    let turnedAt: number | null = null
    const oids = await js.writeBlobs(
      (async function* () {
        setImmediate(() => (turnedAt = pulled))
        for (const b of blobs) {
          pulled++
          yield b
        }
      })(),
    )
    expect(oids).toHaveLength(600)
    // Without a turn, the callback runs only once the whole source was taken.
    expect(turnedAt).not.toBeNull()
    expect(turnedAt as unknown as number).toBeLessThan(600)
    const reader = new PackReader(path.join(js.location.gitDir, 'objects', 'pack'))
    oids.forEach((oid, i) => expect(reader.read(oid)?.content.equals(blobs[i] as Buffer), oid).toBe(true))
    reader.close()
  })

  it('when the js store writes blobs its packs already hold then they are not written again, and a pack of nothing new is not written', async () => {
    vault = await makeVault(null)
    const js = await openStore({ agentsRoot: vault.root, backend: 'js' })
    const packDir = path.join(js.location.gitDir, 'objects', 'pack')
    const blobs = (from: number, to: number): Buffer[] => Array.from({ length: to - from }, (_, i) => Buffer.from(`---\nversion: 1\n---\nnote ${from + i}\n`))
    const write = (bs: Buffer[]) =>
      js.writeBlobs(
        (async function* () {
          yield* bs
        })(),
      )
    const first = await write(blobs(0, 150))
    expect(await idxFiles(packDir)).toHaveLength(1)
    // the same blobs again: no new pack
    expect(await write(blobs(0, 150))).toEqual(first)
    expect(await idxFiles(packDir)).toHaveLength(1)
    // with 100 new ones: a pack of those 100 only
    const before = new Set(await idxFiles(packDir))
    const both = await write(blobs(0, 250))
    expect(both.slice(0, 150)).toEqual(first)
    const added = (await idxFiles(packDir)).filter((f) => !before.has(f))
    expect(added).toHaveLength(1)
    const listed = gitIn(js.location.gitDir, ['verify-pack', '-v', path.join(packDir, added[0] as string)])
    expect(listed.split('\n').filter((l) => / blob /.test(l))).toHaveLength(100)
    for (const [i, oid] of both.entries()) expect((await js.readBlob(oid)).toString()).toBe(`---\nversion: 1\n---\nnote ${i}\n`)
    expect(gitIn(js.location.gitDir, ['fsck', '--no-dangling'])).toBe('')
  })

  it("when the js store writes thousands of blobs (hashed and deflated on its deflating thread) then each id is git's, a blob is written once, what its packs hold is not written again, and big ones go loose", async () => {
    vault = await makeVault(null)
    const js = await openStore({ agentsRoot: vault.root, backend: 'js' })
    const gitDir = js.location.gitDir
    const packDir = path.join(gitDir, 'objects', 'pack')
    const note = (i: number) => Buffer.from(`---\nversion: 1\n---\nnote ${i}\n${randomBytes(200 + (i % 300)).toString('base64')}\n`)
    const held = Array.from({ length: 600 }, (_, i) => note(i))
    await js.writeBlobs(
      (async function* () {
        yield* held
      })(),
    )
    expect(await idxFiles(packDir)).toHaveLength(1)
    const before = new Set(await idxFiles(packDir))
    // 3,000 inputs: new notes, every held one again (past the first 512, so on the
    // thread), repeats within the run (some of them of blobs written before the
    // thread started), an empty blob, two above BIG_BLOB_BYTES, and one below it whose
    // entry (random bytes: no smaller deflated) outgrows the thread's entry buffer
    const inputs: Buffer[] = []
    const fresh = new Set<number>()
    for (let i = 0; i < 3000; i++) {
      if (i === 1000 || i === 2500) inputs.push(randomBytes(9 << 20))
      else if (i === 1800) {
        inputs.push(randomBytes(3 << 20))
        fresh.add(i)
      } else if (i === 1200) inputs.push(Buffer.alloc(0))
      else if (i >= 700 && i < 1300) inputs.push(held[i - 700] as Buffer)
      else if (i >= 2000 && i < 2100) inputs.push(inputs[i - 1000] as Buffer)
      else if ((i >= 2200 && i < 2210) || i === 2215)
        inputs.push(inputs[i - 2000] as Buffer) // written before the thread started
      else {
        inputs.push(note(10_000 + i))
        fresh.add(i)
      }
    }
    const oids = await js.writeBlobs(
      (async function* () {
        yield* inputs
      })(),
    )
    // git finds every blob under its id with the bytes given (and fsck checks each id
    // against its bytes)
    expect(oids).toHaveLength(inputs.length)
    const batch = gitBytes(gitDir, ['cat-file', '--batch'], `${oids.join('\n')}\n`)
    let at = 0
    for (const [i, oid] of oids.entries()) {
      const nl = batch.indexOf(10, at)
      expect(batch.toString('latin1', at, nl), `blob ${i}`).toBe(`${oid} blob ${(inputs[i] as Buffer).length}`)
      expect(batch.subarray(nl + 1, nl + 1 + (inputs[i] as Buffer).length).equals(inputs[i] as Buffer), `blob ${i}`).toBe(true)
      at = nl + 1 + (inputs[i] as Buffer).length + 1
    }
    expect(gitIn(gitDir, ['fsck', '--strict', '--no-dangling'])).toBe('')
    // the new pack holds the new notes and the empty blob, once each; the big ones are loose
    const added = (await idxFiles(packDir)).filter((f) => !before.has(f))
    expect(added).toHaveLength(1)
    const listed = gitIn(gitDir, ['verify-pack', '-v', path.join(packDir, added[0] as string)])
    const packed = listed
      .split('\n')
      .filter((l) => / blob /.test(l))
      .map((l) => l.split(' ')[0])
    expect(new Set(packed).size).toBe(packed.length)
    expect(new Set(packed)).toEqual(new Set([...[...fresh].map((i) => oids[i]), oids[1200]]))
    for (const i of [1000, 2500]) expect(gitIn(gitDir, ['cat-file', '-t', oids[i] as string])).toBe('blob')
    expect(packed).not.toContain(oids[1000])
  })

  it('when the source of a long write fails while batches are on the deflating thread then the write fails with its error and leaves no pack behind', async () => {
    vault = await makeVault(null)
    const js = await openStore({ agentsRoot: vault.root, backend: 'js' })
    const packDir = path.join(js.location.gitDir, 'objects', 'pack')
    const failing = (async function* () {
      for (let i = 0; i < 2000; i++) {
        if (i === 1800) throw new Error('the source broke')
        yield Buffer.from(`note ${i} ${'x'.repeat(i % 700)}\n`)
      }
    })()
    await expect(js.writeBlobs(failing)).rejects.toThrow('the source broke')
    expect(await readdir(packDir)).toEqual([])
  })
})
