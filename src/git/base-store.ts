import { lstatSync } from 'node:fs'
import path from 'node:path'
import { AasError } from '../errors.js'
import { fillStat, lacksStat, loadRules, readEntryBytesSync, readEntryIntoSync, sortByPath, walkScope, type FileMode, type ScopeEntry } from '../vault/walk.js'
import { buildTrees, EMPTY_TREE, encodeCommit, hashObject, type RawObject } from './git-objects.js'
import { storeFailed } from './run-git.js'
import { cachedOidAt, cacheMode, cacheOid, emptyStatCache, isRacy, loadStatCache, saveStatCache, type StatCache } from './stat-cache.js'
import {
  type BaseTree,
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
  type PreReadFile,
  type RefCommit,
  type VaultCommitResult,
  type WriteVaultCommitOptions,
  type WriteVaultTreeOptions,
} from './store.js'
import { isAasRef } from './refs.js'

// A blob of a vault snapshot: its bytes in hand (or a big file to stream), or a file
// the backend reads (into a buffer of its own, when it fits), and the id when a caller
// already knows it.
export type SnapshotBlob =
  | { input: BlobInput; oid: string | null }
  | { input: null; oid: null; read: () => BlobInput; readInto: (buf: Buffer, off: number, max: number) => number }

// What a backend's snapshot pass pulls blobs from: a vault walk is synchronous.
export type SnapshotBlobSource = Iterable<SnapshotBlob> | AsyncIterable<SnapshotBlob>

// The blob's bytes, reading the file when it is not in hand.
export function snapshotBlobInput(b: SnapshotBlob): BlobInput {
  return b.input ?? b.read()
}

// What a backend writes after the blobs of a vault snapshot.
export interface SnapshotCommitPlan {
  tree: string
  newTrees: RawObject[] // trees the stat cache does not know to exist, children first
  entries: TreeEntry[] // every file of the tree, sorted by path
  // The tree of the previous snapshot (known to exist) and what differs from it.
  base: { tree: string; removed: string[]; changed: TreeEntry[] } | null
  commitInput: CommitInput
  commit: Buffer // the commit object's bytes
  oid: string // their id
}

interface VaultJob {
  entries: ScopeEntry[]
  oids: Array<string | null> // per entry; null until hashed
  rows: number[] // per entry: its row in the stat cache, or -1
  todo: number[] // entries to read
  cache: StatCache
  scanStartedMs: number
  bytesHashed: number
  source: Generator<SnapshotBlob>
}

function* emptySource(): Generator<SnapshotBlob> {}

interface OpenTree {
  prefix: string // 'a/b/' ('' for the root)
  name: string
  heads: string[] // `${mode} ${name}` of each item, in tree order
  oids: string[] // the id of each item
  files: Set<string> // names of its files, to tell a file and a folder of one name
}

// Paths buildSortedTrees leaves to buildTrees: characters whose UTF-16 order is not
// their UTF-8 order, and empty components.
const UNUSUAL_PATH = /[\ud800-\uffff]|^\/|\/$|\/\//

// Every tree of entries already sorted by path bytes (a scan's order), in one pass:
// siblings then arrive in git's tree order (a folder sorts as its name plus '/', just
// as its files' paths do), so nothing is sorted again. Children come before parents,
// the root last. Null when the input is not in that order (the caller then sorts).
export function buildSortedTrees(entries: readonly TreeEntry[]): { root: string; trees: RawObject[] } | null {
  const trees: RawObject[] = []
  const open = (prefix: string, name: string): OpenTree => ({ prefix, name, heads: [], oids: [], files: new Set() })
  const stack: OpenTree[] = [open('', '')]
  // Tree contents are assembled in one reused buffer, then copied out at their size.
  let scratch = Buffer.allocUnsafe(1 << 16)
  const close = (): void => {
    const t = stack.pop() as OpenTree
    let off = 0
    for (let k = 0; k < t.heads.length; k++) {
      const head = t.heads[k] as string
      // a UTF-8 character takes at most 3 bytes per UTF-16 unit (no surrogates here)
      if (off + head.length * 3 + 21 > scratch.length) {
        const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, off + head.length * 3 + 21))
        scratch.copy(bigger, 0, 0, off)
        scratch = bigger
      }
      off += scratch.write(head, off, 'utf8')
      scratch[off++] = 0
      off += scratch.write(t.oids[k] as string, off, 'hex')
    }
    const content = Buffer.from(scratch.subarray(0, off))
    const oid = hashObject('tree', content)
    trees.push({ oid, content })
    const parent = stack[stack.length - 1]
    if (parent) {
      parent.heads.push(`40000 ${t.name}`)
      parent.oids.push(oid)
    }
  }
  let last: string | null = null
  let top = stack[0] as OpenTree
  for (const e of entries) {
    const p = e.path
    if (last !== null && !(last < p)) return null
    if (UNUSUAL_PATH.test(p)) return null
    last = p
    const slash = p.lastIndexOf('/')
    let leaf: string
    if (slash + 1 === top.prefix.length && p.startsWith(top.prefix)) {
      leaf = slash < 0 ? p : p.slice(slash + 1) // in the folder of the previous file: the usual case
    } else {
      while (!p.startsWith(top.prefix)) {
        close()
        top = stack[stack.length - 1] as OpenTree
      }
      const rest = p.slice(top.prefix.length).split('/')
      leaf = rest.pop() as string
      let prefix = top.prefix
      for (const name of rest) {
        // a file and a folder of one name: leave the refusal to buildTrees
        if (name === '' || top.files.has(name)) return null
        prefix += `${name}/`
        stack.push((top = open(prefix, name)))
      }
    }
    top.heads.push(`${e.mode} ${leaf}`)
    top.oids.push(e.oid)
    top.files.add(leaf)
  }
  while (stack.length > 0) close()
  const root = trees[trees.length - 1] as RawObject
  return { root: root.oid, trees }
}

function sameStat(pre: PreReadFile, e: ScopeEntry): boolean {
  return pre.size === e.size && pre.bytes.length === e.size && pre.mtimeMs === e.mtimeMs && pre.ctimeMs === e.ctimeMs && pre.ino === e.ino
}

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
  // The store exists (an embedded one is created on first write) and can be written.
  // Calls made while one is in flight share it: a run that starts writing a result while
  // its snapshot creates the store must not create it twice.
  private writable: Promise<void> | null = null
  protected ensureWritable(): Promise<void> {
    this.writable ??= this.makeWritable().finally(() => (this.writable = null))
    return this.writable
  }

  protected abstract makeWritable(): Promise<void>
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
  abstract listRefCommits(prefix: string): Promise<RefCommit[]>

  // One vault snapshot's work up to the blobs: scan, stat cache, what must be read.
  // One vault snapshot's work up to the blobs: the stat cache, then a source of blobs
  // that walks the vault as it is pulled, so the files to read are read (and written by
  // the backend) while the walk goes on. job.entries and job.oids are complete, in
  // walk order, once the source is exhausted.
  private async prepareVault({ onProgress, preRead }: WriteVaultTreeOptions): Promise<VaultJob> {
    await this.ensureWritable()
    const stateDir = this.location.stateDir
    const scanStartedMs = Date.now()
    let cache = await loadStatCache(stateDir)
    // Objects of an earlier, never-committed snapshot may have been pruned: trust the
    // cache only while the tree it produced still exists.
    if (cache.tree !== null && !(await this.hasObject(cache.tree))) cache = emptyStatCache()
    const root = this.agentsRoot
    const rules = await loadRules(root)
    const job: VaultJob = { entries: [], oids: [], rows: [], todo: [], cache, scanStartedMs, bytesHashed: 0, source: emptySource() }
    // Synchronous reads (see readEntryBytesSync), handed to the backend one at a time;
    // a file above BIG_BLOB_BYTES is handed over as a reference and streamed by the
    // backend, so it is never in memory whole. A pre-read file whose stat is the scan's
    // (and not racy) is not read again. Progress counts files walked; the total is
    // known (and reported) once the walk is done.
    // A file with no stat-cache row and nothing pre-read is read in any case: the walk
    // does not lstat it, the fstat of the read supplies its stat (taken before its
    // bytes are read, as the lstat was). A cold snapshot saves a system call per file.
    const statFile = (rel: string): boolean => cache.index.has(rel) || preRead?.has(rel) === true
    function* contents(): Generator<SnapshotBlob> {
      for (const batch of walkScope(root, rules, [], { units: false, statFile })) {
        for (const e of batch) {
          const i = job.entries.push(e) - 1
          if (onProgress && job.entries.length % 500 === 0) onProgress(job.entries.length, 0)
          const row = cache.index.get(e.path) ?? -1
          const known = row < 0 ? null : cachedOidAt(cache, row, e)
          job.oids.push(known)
          job.rows.push(row)
          if (known !== null) continue
          job.todo.push(i)
          const pre = e.mode === '120000' ? undefined : preRead?.get(e.path)
          let item: SnapshotBlob
          if (pre && sameStat(pre, e) && !isRacy(e.mtimeMs, scanStartedMs)) {
            item = { input: pre.bytes, oid: pre.oid }
          } else if (e.mode !== '120000' && e.size > BIG_BLOB_BYTES) {
            item = { input: { path: path.join(root, e.path), size: e.size }, oid: null }
          } else {
            item = {
              input: null,
              oid: null,
              read: () => {
                if (lacksStat(e)) fillStat(e, lstatSync(path.join(root, e.path)))
                if (e.size > BIG_BLOB_BYTES) {
                  job.bytesHashed += e.size
                  return { path: path.join(root, e.path), size: e.size }
                }
                const b = readEntryBytesSync(root, e)
                job.bytesHashed += b.length
                return b
              },
              readInto: (buf, off, max) => {
                const n = readEntryIntoSync(root, e, buf, off, max, lacksStat(e) ? (st) => fillStat(e, st) : undefined)
                if (n >= 0) job.bytesHashed += n
                return n
              },
            }
          }
          if (item.input) job.bytesHashed += Buffer.isBuffer(item.input) ? item.input.length : item.input.size
          yield item
        }
      }
    }
    job.source = contents()
    return job
  }

  // The tree of the job once every blob id is known (hashed: the ids of the blobs the
  // source gave, in order), and what the stat cache will record.
  private finishVault(
    job: VaultJob,
    hashed: string[],
  ): { entries: TreeEntry[]; tree: string; trees: RawObject[]; changed: TreeEntry[]; removed: string[]; result: SnapshotTreeResult } {
    if (hashed.length !== job.todo.length) throw storeFailed(['fast-import'], `${hashed.length} blob ids for ${job.todo.length} files`)
    const unread = job.entries.find(lacksStat)
    if (unread) throw storeFailed(['fast-import'], `${unread.path} was never read`)
    hashed.forEach((oid, k) => (job.oids[job.todo[k] as number] = oid))
    const read = new Uint8Array(job.entries.length)
    for (const k of job.todo) read[k] = 1
    const sorted = sortByPath(job.entries.map((e, i) => ({ path: e.path, e, oid: job.oids[i] as string, row: job.rows[i] as number, read: read[i] === 1 })))
    job.entries = sorted.map((s) => s.e)
    job.oids = sorted.map((s) => s.oid)
    job.rows = sorted.map((s) => s.row)
    job.todo = []
    const entries: TreeEntry[] = sorted.map(({ e, oid }) => ({ path: e.path, mode: e.mode, oid }))
    const { root: tree, trees } = buildSortedTrees(entries) ?? buildTrees(entries)
    const blobSizes = new Map<string, number>()
    job.entries.forEach((e, i) => blobSizes.set(job.oids[i] as string, e.size))
    // Against the stat cache's tree: the files that differ (only a file that was read can),
    // and the paths gone since.
    const changed: TreeEntry[] = []
    const seen = new Uint8Array(job.cache.paths.length) // 1: matched, 2: matched with the cache's id
    for (let i = 0; i < entries.length; i++) {
      const row = job.rows[i] as number
      const e = entries[i] as TreeEntry
      if (!(sorted[i] as { read: boolean }).read) {
        if (row >= 0) seen[row] = 2
      } else {
        if (row >= 0) seen[row] = 1
        if (row < 0 || cacheMode(job.cache, row) !== e.mode || cacheOid(job.cache, row) !== e.oid) changed.push(e)
      }
    }
    const removed: string[] = []
    for (let row = 0; row < seen.length; row++) if (seen[row] === 0) removed.push(job.cache.paths[row] as string)
    // The blob ids of the cache's tree: a file not read has its row's id already.
    let previous: SnapshotTreeResult['previous'] = null
    if (job.cache.tree !== null) {
      const blobs = new Set<string>()
      for (let i = 0; i < entries.length; i++)
        if ((job.rows[i] as number) >= 0 && !(sorted[i] as { read: boolean }).read) blobs.add((entries[i] as TreeEntry).oid)
      for (let row = 0; row < seen.length; row++) if (seen[row] !== 2) blobs.add(cacheOid(job.cache, row))
      previous = { tree: job.cache.tree, blobs }
    }
    return { entries, tree, trees, changed, removed, result: { tree, files: entries.length, bytesHashed: job.bytesHashed, blobSizes, previous } }
  }

  private async saveVault(job: VaultJob, tree: string, trees: RawObject[]): Promise<void> {
    const withOids = job.entries.map((e, i) => ({ e, oid: job.oids[i] as string }))
    await saveStatCache(this.location.stateDir, { tree, trees: trees.map((t) => t.oid), entries: withOids, scanStartedMs: job.scanStartedMs })
  }

  async writeVaultTree(opts: WriteVaultTreeOptions = {}): Promise<SnapshotTreeResult> {
    const job = await this.prepareVault(opts)
    const src = job.source
    async function* inputs(): AsyncGenerator<BlobInput> {
      for await (const b of src) yield snapshotBlobInput(b)
    }
    const hashed = await this.writeBlobs(inputs())
    const { tree, trees, result } = this.finishVault(job, hashed)
    await this.writeRawTrees(trees.filter((t) => !job.cache.trees.has(t.oid)))
    await this.saveVault(job, tree, trees)
    opts.onProgress?.(result.files, result.files)
    return result
  }

  async writeVaultCommit(opts: WriteVaultCommitOptions): Promise<VaultCommitResult> {
    const job = await this.prepareVault(opts)
    let finished: ReturnType<BaseStore['finishVault']> | null = null
    let saving: Promise<void> | null = null
    let commit: string
    try {
      commit = await this.writeSnapshotObjects(job.source, async (hashed) => {
        const f = (finished = this.finishVault(job, hashed))
        opts.onProgress?.(f.result.files, f.result.files)
        const input = { ...(await opts.commit(f.result)), tree: f.tree }
        const bytes = encodeCommit(input)
        // Against the tree of the stat cache (which exists, see prepareVault): what changed.
        const base: SnapshotCommitPlan['base'] =
          job.cache.tree !== null && job.cache.tree !== EMPTY_TREE ? { tree: job.cache.tree, removed: f.removed, changed: f.changed } : null
        // The stat cache is written while the backend writes the trees and the commit: it
        // is trusted next time only if its tree exists then (see prepareVault), so a
        // snapshot that fails from here on leaves a cache that is ignored, never a wrong one.
        saving = this.saveVault(job, f.tree, f.trees)
        saving.catch(() => {})
        return {
          tree: f.tree,
          newTrees: f.trees.filter((t) => !job.cache.trees.has(t.oid)),
          entries: f.entries,
          base,
          commitInput: input,
          commit: bytes,
          oid: hashObject('commit', bytes),
        }
      })
    } catch (err) {
      await (saving as Promise<void> | null)?.catch(() => {})
      throw err
    }
    const f = finished as ReturnType<BaseStore['finishVault']> | null
    if (!f || !saving) throw storeFailed(['fast-import'], 'the snapshot commit was written without its tree')
    await saving
    return { ...f.result, commit, entries: f.entries, trees: new Set(f.trees.map((t) => t.oid)) }
  }

  async writeCommitWithChanges(
    given: BaseTree | Promise<BaseTree>,
    changes: Iterable<FileChange> | AsyncIterable<FileChange>,
    commit: Omit<CommitInput, 'tree'> | (() => Omit<CommitInput, 'tree'>),
  ): Promise<{ tree: string; commit: string }> {
    await this.ensureWritable()
    // A base still being made (a snapshot) is awaited only once every change was written.
    void Promise.resolve(given).catch(() => undefined)
    // Only paths and modes are kept: each content is piped and dropped.
    const writes: Array<{ path: string; mode: FileMode }> = []
    const removed: string[] = []
    async function* source(): AsyncGenerator<SnapshotBlob> {
      for await (const c of changes) {
        if ('delete' in c) removed.push(c.path)
        else {
          writes.push({ path: c.path, mode: c.mode })
          yield { input: c.content, oid: c.oid ?? null }
        }
      }
    }
    let tree: string | null = null
    const oid = await this.writeSnapshotObjects(source(), async (oids) => {
      if (oids.length !== writes.length) throw storeFailed(['fast-import'], `${oids.length} blob ids for ${writes.length} files`)
      const base = await given
      const entries = base.entries ?? (base.tree === EMPTY_TREE ? [] : await this.listTree(base.tree))
      const map = new Map<string, TreeEntry>(entries.map((e) => [e.path, e]))
      for (const p of removed) map.delete(p)
      const changed: TreeEntry[] = writes.map((w, i) => ({ path: w.path, mode: w.mode, oid: oids[i] as string }))
      for (const e of changed) map.set(e.path, e)
      const all = sortByPath([...map.values()])
      const built = buildTrees(all)
      tree = built.root
      const commitInput = { ...(typeof commit === 'function' ? commit() : commit), tree: built.root }
      const bytes = encodeCommit(commitInput)
      return {
        tree: built.root,
        newTrees: built.trees.filter((t) => !base.trees?.has(t.oid)),
        entries: all,
        base: base.tree === EMPTY_TREE ? null : { tree: base.tree, removed, changed },
        commitInput,
        commit: bytes,
        oid: hashObject('commit', bytes),
      }
    })
    if (tree === null) throw storeFailed(['fast-import'], 'the commit was written without its tree')
    return { tree, commit: oid }
  }

  // Writes the blobs of source in order, then the commit finish describes once it has
  // their ids (in order); resolves to the commit's id. Sets no ref.
  protected abstract writeSnapshotObjects(source: SnapshotBlobSource, finish: (oids: string[]) => Promise<SnapshotCommitPlan>): Promise<string>

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

  async diffTrees(a: string | BaseTree, b: string | BaseTree): Promise<TreeChange[]> {
    const list = async (t: string | BaseTree): Promise<readonly TreeEntry[]> =>
      typeof t === 'string' ? this.listTree(t) : (t.entries ?? this.listTree(t.tree))
    const [left, right] = await Promise.all([list(a), list(b)])
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
    return sortByPath(out)
  }
}

// Refs the store may write: only below refs/aas/, in git's ref-name syntax.
export function checkAasRef(ref: string, { write }: { write: boolean }): void {
  const ok =
    /^refs\/[A-Za-z0-9._/-]+$/.test(ref) &&
    !ref.includes('..') &&
    !ref.includes('//') &&
    !ref.endsWith('/') &&
    !ref.endsWith('.lock') &&
    !ref.split('/').some((c) => c.startsWith('.') || c.endsWith('.lock') || c === '')
  if (!ok || (write && !isAasRef(ref))) {
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
