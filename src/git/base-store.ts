import path from 'node:path'
import { AasError } from '../errors.js'
import { readEntryBytesSync, scanVault, type ScopeEntry } from '../vault/walk.js'
import { buildTrees, EMPTY_TREE, sortEntries, type RawObject } from './git-objects.js'
import { cachedOid, loadStatCache, saveStatCache } from './stat-cache.js'
import {
  BIG_BLOB_BYTES,
  type BackendName,
  type BlobDestination,
  type BlobInput,
  type CommitInfo,
  type CommitInput,
  type FileChange,
  type ReadBlobToFileOptions,
  type RefEntry,
  type SnapshotTreeResult,
  type Store,
  type StoreLocation,
  type TreeChange,
  type TreeEntry,
} from './store.js'

// What is shared by both backends: the snapshot algorithm (scan → stat cache → hash
// what changed → trees built in-process, so ids are identical), tree edits and diffs.
// Subclasses provide object and ref primitives.
export abstract class BaseStore implements Store {
  abstract readonly backend: BackendName
  readonly location: StoreLocation
  readonly agentsRoot: string

  constructor(agentsRoot: string, location: StoreLocation) {
    this.agentsRoot = agentsRoot
    this.location = location
  }

  // Creates the embedded store on first write (or refuses when opened read-only).
  protected abstract ensureWritable(): Promise<void>
  // Writes blobs in order, returning their ids in order; pulls the source lazily.
  abstract writeBlobs(source: AsyncIterable<BlobInput>): Promise<string[]>
  protected abstract writeRawTrees(trees: RawObject[]): Promise<void>
  protected abstract hasObject(oid: string): Promise<boolean>

  abstract writeCommit(input: CommitInput): Promise<string>
  abstract readCommit(oid: string): Promise<CommitInfo>
  abstract listTree(treeish: string): Promise<TreeEntry[]>
  abstract readBlob(oid: string): Promise<Buffer>
  abstract readBlobs(oids: string[]): AsyncIterable<{ oid: string; content: Buffer }>
  abstract readBlobToFile(oid: string, dest: BlobDestination, opts?: ReadBlobToFileOptions): Promise<number>
  abstract blobSizes(oids: string[]): Promise<Map<string, number>>
  abstract writeBlob(content: Buffer): Promise<string>
  abstract resolveRef(ref: string): Promise<string | null>
  abstract updateRef(ref: string, newOid: string, expectedOld: string | null): Promise<void>
  abstract deleteRef(ref: string, expectedOld: string): Promise<void>
  abstract listRefs(prefix: string): Promise<RefEntry[]>

  async writeVaultTree({ onProgress }: { onProgress?: (done: number, total: number) => void } = {}): Promise<SnapshotTreeResult> {
    await this.ensureWritable()
    const stateDir = this.location.stateDir
    const scanStartedMs = Date.now()
    const scan = await scanVault(this.agentsRoot)
    let cache = await loadStatCache(stateDir)
    // Objects of an earlier, never-committed snapshot may have been pruned: trust the
    // cache only while the tree it produced still exists.
    if (cache.tree !== null && !(await this.hasObject(cache.tree))) cache = { tree: null, trees: new Set(), rows: new Map() }

    const oids: Array<string | null> = scan.entries.map((e) => cachedOid(cache, e))
    const todo: number[] = []
    oids.forEach((o, i) => o === null && todo.push(i))
    const total = scan.entries.length
    let done = total - todo.length
    let bytesHashed = 0
    const root = this.agentsRoot
    const entries = scan.entries
    // Synchronous reads (see readEntryBytesSync), handed to the backend one at a time;
    // a file above BIG_BLOB_BYTES is handed over as a reference and streamed by the
    // backend, so it is never in memory whole.
    async function* contents(): AsyncGenerator<BlobInput> {
      for (const k of todo) {
        const e = entries[k] as ScopeEntry
        let item: BlobInput
        if (e.mode !== '120000' && e.size > BIG_BLOB_BYTES) {
          item = { path: path.join(root, e.path), size: e.size }
          bytesHashed += e.size
        } else {
          item = readEntryBytesSync(root, e)
          bytesHashed += item.length
        }
        done++
        if (onProgress && done % 500 === 0) onProgress(done, total)
        yield item
      }
    }
    const hashed = todo.length > 0 ? await this.writeBlobs(contents()) : []
    hashed.forEach((oid, k) => (oids[todo[k] as number] = oid))

    const withOids = entries.map((e, i) => ({ e, oid: oids[i] as string }))
    const { root: tree, trees } = buildTrees(withOids.map(({ e, oid }) => ({ path: e.path, mode: e.mode, oid })))
    await this.writeRawTrees(trees.filter((t) => !cache.trees.has(t.oid)))
    await saveStatCache(stateDir, { tree, trees: trees.map((t) => t.oid), entries: withOids, scanStartedMs })
    onProgress?.(total, total)
    const blobSizes = new Map<string, number>()
    for (const { e, oid } of withOids) blobSizes.set(oid, e.size)
    return { tree, files: total, bytesHashed, blobSizes }
  }

  async writeTree(entries: TreeEntry[]): Promise<string> {
    await this.ensureWritable()
    const { root, trees } = buildTrees(entries)
    await this.writeRawTrees(trees)
    return root
  }

  async writeTreeWithChanges(baseTree: string, changes: FileChange[]): Promise<string> {
    await this.ensureWritable()
    const map = new Map<string, TreeEntry>()
    if (baseTree !== EMPTY_TREE) for (const e of await this.listTree(baseTree)) map.set(e.path, e)
    const writes = changes.filter((c): c is Extract<FileChange, { content: Buffer }> => 'content' in c)
    async function* src(): AsyncGenerator<Buffer> {
      for (const w of writes) yield w.content
    }
    const oids = writes.length > 0 ? await this.writeBlobs(src()) : []
    for (const c of changes) if ('delete' in c) map.delete(c.path)
    writes.forEach((w, i) => map.set(w.path, { path: w.path, mode: w.mode, oid: oids[i] as string }))
    return this.writeTree([...map.values()])
  }

  async diffTrees(a: string, b: string): Promise<TreeChange[]> {
    const [left, right] = await Promise.all([this.listTree(a), this.listTree(b)])
    const l = new Map(left.map((e) => [e.path, e]))
    const out: TreeChange[] = []
    for (const n of right) {
      const o = l.get(n.path)
      l.delete(n.path)
      if (!o) out.push({ path: n.path, status: 'added', newMode: n.mode, newOid: n.oid })
      else if (o.oid !== n.oid || o.mode !== n.mode)
        out.push({ path: n.path, status: 'modified', oldMode: o.mode, oldOid: o.oid, newMode: n.mode, newOid: n.oid })
    }
    for (const o of l.values()) out.push({ path: o.path, status: 'deleted', oldMode: o.mode, oldOid: o.oid })
    return sortEntries(out)
  }
}

// Refs the store may write: only below refs/aas/, in git's ref-name syntax.
export function checkAasRef(ref: string, { write }: { write: boolean }): void {
  const ok =
    /^refs\/[A-Za-z0-9._\/-]+$/.test(ref) &&
    !ref.includes('..') &&
    !ref.includes('//') &&
    !ref.endsWith('/') &&
    !ref.endsWith('.lock') &&
    !ref.split('/').some((c) => c.startsWith('.') || c.endsWith('.lock') || c === '')
  if (!ok || (write && !ref.startsWith('refs/aas/'))) {
    throw new AasError('REF_INVALID', `Ref ${JSON.stringify(ref)} is not a ref the store may ${write ? 'write' : 'read'}.`, {
      hint: 'Store refs are full names below refs/aas/ (e.g. refs/aas/snapshots/<name>).',
      data: { ref },
    })
  }
}

export function refMoved(ref: string, expected: string | null, actual: string | null): AasError {
  return new AasError('REF_MOVED', `Ref ${ref} moved: expected ${expected ?? '(absent)'}, found ${actual ?? '(absent)'}.`, {
    hint: 'Another process changed the store at the same time; run the command again.',
    data: { ref, expected, actual },
  })
}

export const ZERO_OID = '0000000000000000000000000000000000000000'
