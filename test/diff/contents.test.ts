import { afterEach, describe, expect, it } from 'vitest'
import { withDiffContents } from '../../src/diff/contents.js'
import type { DiffFile } from '../../src/diff/unified.js'
import { openStore } from '../../src/git/open-store.js'
import type { BackendName, Store } from '../../src/git/store.js'
import { makeVault, type TempVault } from '../helpers/make-vault.js'

// The bytes a large dry run did not keep, read back from the store for the diff: one
// ordered read for the whole diff, each chunk complete when it is handed out.

function counting(store: Store): { store: Store; calls: () => number } {
  let calls = 0
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'readBlobs')
        return (oids: string[]) => {
          calls++
          return target.readBlobs(oids)
        }
      const v = Reflect.get(target, prop, receiver)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  return { store: wrapped, calls: () => calls }
}

describe.each<BackendName>(['cli', 'js'])('withDiffContents (%s)', (backend) => {
  let v: TempVault
  afterEach(async () => v?.cleanup())

  async function setUp(n: number): Promise<{ store: Store; files: DiffFile[]; text: (i: number, side: 'old' | 'new') => string }> {
    v = await makeVault(null)
    const store = await openStore({ agentsRoot: v.root, backend })
    // file 7 has file 1's old bytes: the same blob, needed again two chunks later
    const text = (i: number, side: 'old' | 'new'): string => (side === 'old' && i === 7 ? 'old 1\n' : `${side} ${i}\n`)
    const files: DiffFile[] = []
    for (let i = 0; i < n; i++) {
      const [oldOid, newOid] = [await store.writeBlob(Buffer.from(text(i, 'old'))), await store.writeBlob(Buffer.from(text(i, 'new')))]
      // every third file keeps its new bytes (held since the chain); file 5 is new
      files.push({
        path: `u${i}.md`,
        oldMode: i === 5 ? null : '100644',
        newMode: '100644',
        oldOid: i === 5 ? null : oldOid,
        newOid,
        oldContent: null,
        newContent: i % 3 === 0 ? Buffer.from(text(i, 'new')) : null,
      })
    }
    return { store, files, text }
  }

  it('when the diff spans several chunks then every chunk has both sides of each file, read by one call in order', async () => {
    const { store, files, text } = await setUp(10)
    const c = counting(store)
    const chunks: DiffFile[][] = []
    for await (const chunk of withDiffContents(c.store, files, { chunk: 3 })) chunks.push(chunk)
    expect(c.calls()).toBe(1)
    expect(chunks.map((ch) => ch.map((f) => f.path))).toEqual([
      ['u0.md', 'u1.md', 'u2.md'],
      ['u3.md', 'u4.md', 'u5.md'],
      ['u6.md', 'u7.md', 'u8.md'],
      ['u9.md'],
    ])
    const all = chunks.flat()
    for (const [i, f] of all.entries()) {
      expect({ i, new: f.newContent?.toString() }).toEqual({ i, new: text(i, 'new') })
      expect({ i, old: f.oldContent?.toString() ?? null }).toEqual({ i, old: i === 5 ? null : text(i, 'old') })
    }
  })

  it('when the caller stops after the first chunk then the read ends with it, and a later diff reads normally', async () => {
    const { store, files } = await setUp(9)
    for await (const chunk of withDiffContents(store, files, { chunk: 3 })) {
      expect(chunk[1]?.oldContent?.toString()).toBe('old 1\n')
      break
    }
    let n = 0
    for await (const chunk of withDiffContents(store, files, { chunk: 4 })) n += chunk.length
    expect(n).toBe(9)
  })

  // The blobs are 6 bytes: a chunk of 3 files needs up to 6 of them, a later chunk file 1's
  // old bytes again.
  it('when one chunk needs more than the read-ahead allows then it still gets every blob', async () => {
    const { store, files, text } = await setUp(10)
    const all: DiffFile[] = []
    for await (const chunk of withDiffContents(store, files, { chunk: 3, aheadBytes: 8 })) all.push(...chunk)
    expect(all.map((f) => f.newContent?.toString())).toEqual(files.map((_, i) => text(i, 'new')))
    expect(all[7]?.oldContent?.toString()).toBe('old 1\n')
  }, 20_000)

  it('when a blob is missing from the store then the diff fails naming it', async () => {
    const { store, files } = await setUp(4)
    const gone = 'f'.repeat(40)
    files[2] = { ...(files[2] as DiffFile), oldOid: gone }
    const chunks: DiffFile[][] = []
    const err = await (async () => {
      try {
        for await (const chunk of withDiffContents(store, files, { chunk: 2 })) chunks.push(chunk)
      } catch (e) {
        return e as Error
      }
      return null
    })()
    expect(err?.message).toContain(gone)
    expect(chunks.length).toBe(1) // the first chunk was complete
  })
})
