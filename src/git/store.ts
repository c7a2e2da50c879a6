import type { FileMode } from '../vault/walk.js'

// The store: where snapshots live. Two backends (the git binary, isomorphic-git)
// implement this one interface and pass one conformance suite.

export type BackendName = 'cli' | 'js'

export interface StoreLocation {
  // 'repo': agents_root is inside a user's git work tree; objects go into that repository.
  // 'embedded': a bare repository at <agents_root>/_migrations/aas.git.
  kind: 'repo' | 'embedded'
  gitDir: string // absolute; the common git dir (objects and refs)
  workTree: string | null // the user's work tree root ('repo' only)
  prefix: string // agents_root relative to workTree, POSIX, '' at the root ('repo' only)
  stateDir: string // engine state: <gitDir>/aas (private index, stat cache, journal)
}

export interface TreeEntry {
  path: string // vault-relative POSIX path (never includes the repo prefix)
  mode: FileMode
  oid: string
}

export type TreeChange =
  | { path: string; status: 'added'; newMode: FileMode; newOid: string }
  | { path: string; status: 'deleted'; oldMode: FileMode; oldOid: string }
  | { path: string; status: 'modified'; oldMode: FileMode; oldOid: string; newMode: FileMode; newOid: string }

export interface CommitInfo {
  oid: string
  tree: string
  parents: string[]
  message: string
  timestamp: number // seconds since the epoch (committer time)
  trailers: Record<string, string>
}

export interface CommitInput {
  tree: string
  parents: string[]
  message: string // trailers included, as in git
  timestamp?: number // seconds; defaults to now
}

export type FileChange =
  | { path: string; mode: FileMode; content: Buffer; oid?: string } // oid: the content's blob id, when the caller has it (not hashed again)
  | { path: string; delete: true }

export interface RefEntry {
  ref: string
  oid: string
}

// Files above this size are streamed into the store and out of it in chunks, never
// held in memory whole (snapshot, restore). Smaller ones are read in one piece: that
// is faster for the many small notes of a vault.
export const BIG_BLOB_BYTES = 8 * 1024 * 1024

// A regular file to store as a blob without reading it whole: `size` is the size the
// caller saw (the scan's lstat). The store reads exactly that many bytes and fails with
// CONCURRENT_CHANGE naming the file when the file turns out to be shorter or longer,
// i.e. it changed while being snapshotted.
export interface BlobFileRef {
  path: string // absolute
  size: number
}

// What writeBlobs takes: bytes in memory, or a file streamed from disk.
export type BlobInput = Buffer | BlobFileRef

// Where readBlobToFile writes: an open file descriptor (written from its current
// position, left open) or a path created exclusively (O_EXCL|O_NOFOLLOW, mode 0600).
export type BlobDestination = number | string

export interface ReadBlobToFileOptions {
  // Called once with the blob's size as the store records it, before the first chunk.
  onSize?: (size: number) => void
  // Called with every chunk of the blob, in order, as it is written (e.g. to hash it).
  onData?: (chunk: Buffer) => void
}

export interface SnapshotTreeResult {
  tree: string
  files: number
  bytesHashed: number // bytes of files that had to be read and hashed (a warm cache reads few)
  blobSizes: Map<string, number> // size of every blob of the tree, by oid (for "size added")
  // The tree of the store's previous vault snapshot (the stat cache's) and its blob ids,
  // so "size added" against it needs no tree listing; null when no cache was usable.
  previous: { tree: string; blobs: ReadonlySet<string> } | null
}

// A file a caller has already read (e.g. the inventory before a migration), keyed by
// vault-relative path. Its bytes stand in for a second read when the scan's stat of the
// file still equals this one and its mtime is not racy (see stat-cache.ts).
export interface PreReadFile {
  bytes: Buffer
  oid: string // blob id of bytes
  size: number
  mtimeMs: number
  ctimeMs: number
  ino: number
}

export interface WriteVaultTreeOptions {
  onProgress?: (done: number, total: number) => void
  preRead?: ReadonlyMap<string, PreReadFile>
}

export interface WriteVaultCommitOptions extends WriteVaultTreeOptions {
  // Called once the tree is known and before the commit is written: the commit to write
  // on top of it (parents, message, timestamp).
  commit: (tree: SnapshotTreeResult) => Promise<Omit<CommitInput, 'tree'>>
}

export interface VaultCommitResult extends SnapshotTreeResult {
  commit: string
  entries: TreeEntry[] // every file of the tree, sorted by path
  trees: ReadonlySet<string> // the ids of the tree and of every tree below it
}

// A tree already in the store, with what a caller knows of it (spares a listing).
export interface BaseTree {
  tree: string
  entries?: readonly TreeEntry[] // every file of it
  trees?: ReadonlySet<string> // the ids of it and of every tree below it
}

// A commit as listed with its ref: what choosing a snapshot's parent needs, in one call.
export interface RefCommit {
  ref: string
  oid: string
  tree: string
  timestamp: number // committer time, seconds
}

export interface Store {
  readonly backend: BackendName
  readonly location: StoreLocation
  readonly agentsRoot: string

  // Tree of the snapshot scope (docs/how-it-works.md, "What is in a snapshot") of the
  // live vault, as exact bytes on disk.
  // Reuses a persistent private index / stat cache so a repeat costs what changed.
  writeVaultTree(opts?: WriteVaultTreeOptions): Promise<SnapshotTreeResult>
  // The same tree plus a commit of it, written together (one git process for the cli
  // backend). Sets no ref: the caller points a ref at the commit (crash safety).
  writeVaultCommit(opts: WriteVaultCommitOptions): Promise<VaultCommitResult>
  // A new tree: base with the given files written or deleted.
  writeTreeWithChanges(baseTree: string, changes: FileChange[]): Promise<string>
  // The new blobs of changes and a commit of base with them, in one pass where the
  // backend can; returns the commit and its tree. changes may be a stream that is still
  // being produced (each content is written and dropped as it comes; a stream that
  // throws writes no commit); base and commit may be a promise and a function, taken
  // once the stream has ended.
  writeCommitWithChanges(
    base: BaseTree | Promise<BaseTree>,
    changes: Iterable<FileChange> | AsyncIterable<FileChange>,
    commit: Omit<CommitInput, 'tree'> | (() => Omit<CommitInput, 'tree'>),
  ): Promise<{ tree: string; commit: string }>
  // A new tree from a flat list of vault-relative entries whose blobs exist.
  writeTree(entries: TreeEntry[]): Promise<string>
  // Many blobs in one pass (pulled lazily, ids returned in order). A BlobFileRef is
  // streamed from its file (constant memory); a Buffer is written as is.
  writeBlobs(source: AsyncIterable<BlobInput>): Promise<string[]>
  writeCommit(input: CommitInput): Promise<string>
  readCommit(oid: string): Promise<CommitInfo>
  listTree(treeish: string): Promise<TreeEntry[]> // recursive, files and symlinks only, sorted by path
  readBlob(oid: string): Promise<Buffer>
  readBlobs(oids: string[]): AsyncIterable<{ oid: string; content: Buffer }> // in input order, once per element
  // One blob streamed into a file in chunks (constant memory); resolves to the number of
  // bytes written, which is checked against the size the store records for the blob.
  readBlobToFile(oid: string, dest: BlobDestination, opts?: ReadBlobToFileOptions): Promise<number>
  // The size of each blob without reading its content (STORE_CORRUPT when one is missing).
  blobSizes(oids: string[]): Promise<Map<string, number>>
  writeBlob(content: Buffer): Promise<string>
  diffTrees(a: string | BaseTree, b: string | BaseTree): Promise<TreeChange[]> // sorted by path; a BaseTree with entries is not listed

  resolveRef(ref: string): Promise<string | null>
  // Compare-and-swap: expectedOld null means the ref must not exist. Throws AasError REF_MOVED.
  updateRef(ref: string, newOid: string, expectedOld: string | null): Promise<void>
  deleteRef(ref: string, expectedOld: string): Promise<void>
  listRefs(prefix: string): Promise<RefEntry[]>
  // The refs below prefix that point at commits, with each commit's tree and time.
  listRefCommits(prefix: string): Promise<RefCommit[]>
}
