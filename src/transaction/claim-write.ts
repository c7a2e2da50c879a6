import { closeSync, constants, fchmodSync, fstatSync, ftruncateSync, linkSync, openSync, renameSync, rmdirSync, unlinkSync, writeSync } from 'node:fs'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import { BIG_BLOB_BYTES } from '../git/store.js'
import type { FileMode } from '../vault/walk.js'
import {
  claimFileSync,
  modeBits,
  placeNewSync,
  restoreClaimSync,
  removeFileSync,
  rewriteNameFor,
  type OwnBytes,
  type PlacedContent,
  type VerifiedDirs,
} from './atomic-write.js'
import { hashBlob, hashLiveEntrySync, readToEnd, type LiveEntry } from './blob-hash.js'
import { faultPoint } from './faults.js'
import type { JournalChange } from './journal.js'

// One path of a write phase by the claim protocol (top of transaction.ts), in
// synchronous file calls only: the main thread and the write helper (write-worker.ts)
// both run it. Nothing here reads the store: the new bytes come in memory, or (a big
// blob) already streamed into the temp file `prepared`.

// A blob's bytes, or (above BIG_BLOB_BYTES) a reference the write streams from the
// store into its temp file, so no file of hundreds of MB is ever held in memory.
export type BlobContent = Buffer | { stream: true; oid: string; size: number }

// 'moved': the live path did not hold the old state (or a writer got in): nothing of
// ours is left at it, and whatever the writer wrote is at the path.
export type PathOutcome = 'written' | 'removed' | 'moved'

// What a write phase must make durable before its journal goes: written files, and
// every directory whose entries changed (renames, unlinks, created or pruned dirs).
export interface Touched {
  files: Set<string>
  dirs: Set<string>
}

export const newTouched = (): Touched => ({ files: new Set(), dirs: new Set() })

export function sameState(live: LiveEntry | null, oid: string | null, mode: FileMode | null): boolean {
  return oid === null ? live === null : live !== null && live.oid === oid && live.mode === mode
}

export function claimAndPlaceSync(
  root: string,
  abs: string,
  c: JournalChange,
  content: BlobContent | null,
  prepared: string | null,
  runId: string,
  touched: Touched,
  n: number,
  verified: VerifiedDirs,
): PathOutcome {
  let claim: string | null = null
  // A file replaced by one of the same git mode keeps its permission bits: git records
  // only 100644 or 100755, and a vault's notes are often group-writable (0o664) so that
  // agents running as other users can write them. A new file, or a change of the
  // executable bit, gets the mode's default bits.
  let perm: number | undefined
  if (c.oldOid !== null) {
    claim = claimFileSync(abs, { within: root, runId, verified })
    if (claim === null) return 'moved'
    faultPoint('mid-claim', n)
    if (Buffer.isBuffer(content) && prepared === null && isRegular(c.oldMode) && isRegular(c.newMode)) {
      const outcome = rewriteClaimSync(claim, abs, c, content, runId, touched, n)
      if (outcome !== null) return outcome
    }
    const seen: { perm?: number } = {}
    const live = hashLiveEntrySync(claim, seen)
    if (!sameState(live, c.oldOid, c.oldMode)) {
      restoreClaimSync(claim, abs)
      return 'moved'
    }
    // Same git mode: the file keeps its bits (seen.perm is set only for a regular file).
    if (live?.mode === c.newMode) perm = seen.perm
  } else if (hashLiveEntrySync(abs) !== null) {
    return 'moved'
  }
  if (content !== null && c.newMode !== null) {
    const what: PlacedContent =
      prepared !== null
        ? { kind: 'prepared', temp: prepared, perm }
        : c.newMode === '120000'
          ? { kind: 'symlink', target: content as Buffer }
          : { kind: 'file', content: content as Buffer, mode: c.newMode, perm }
    const placed = placeNewSync(abs, what, { within: root, runId, verified })
    for (const d of placed.createdDirs) touched.dirs.add(path.dirname(d))
    if (!placed.placed) {
      // A writer re-created the path since the claim: both its bytes and the claim's stay.
      if (claim) restoreClaimSync(claim, abs)
      return 'moved'
    }
    if (c.newMode !== '120000') touched.files.add(abs)
    faultPoint('mid-link', n)
  }
  if (claim !== null) {
    if (!sameState(hashLiveEntrySync(claim), c.oldOid, c.oldMode)) {
      // A writer with the file open wrote into the claimed inode: its bytes go back live,
      // with anything appended to the new file meanwhile (the new bytes themselves go).
      const ours: OwnBytes | null =
        prepared !== null && content !== null && !Buffer.isBuffer(content)
          ? { oid: content.oid, length: content.size }
          : Buffer.isBuffer(content)
            ? content
            : null
      restoreClaimSync(claim, abs, { ours })
      return 'moved'
    }
    removeFileSync(claim, { within: root, verified })
    if (c.newOid === null) {
      pruneEmptyParents(root, abs, touched, verified)
      return 'removed'
    }
  }
  return 'written'
}

const isRegular = (mode: FileMode | null): boolean => mode === '100644' || mode === '100755'

// A claimed regular file replaced by another: its own inode is rewritten with the new
// bytes, then linked back at the path. No file is created and none is freed, which is
// what a write phase of thousands of files costs most on ext4 (docs/performance.md):
// allocating inodes while many were just deleted, and freeing data blocks (with
// `discard`, a synchronous trim each). The steps:
//   a. open the claim read-write; check its bytes are the old state (else put it back);
//   b. rename it to its rewrite name: from here its bytes are ours to replace, and a
//      crash leaves a file recovery knows may hold old, new or mixed bytes;
//   c. check its size and mtime again: a writer holding the file open from before the
//      claim that wrote since (a) makes this path 'moved' (the file, untouched, goes back);
//   d. write the new bytes over it, truncate, set the mode bits when the mode changes;
//                                                                    kill point mid-rewrite:<i>
//   e. link it at the path (EEXIST: a writer re-created the path; the old bytes are
//      written back and the file goes back merged, as a claim does); unlink the rewrite name.
// A writer holding the file open from before the claim that writes after (d) writes
// into the file the path now holds: with O_APPEND, after the new bytes, as if it had
// written just after the write phase. Remaining window: its write landing between the
// check of (c) and the write of (d), a few system calls wide, is overwritten.
// Null when the claim cannot be rewritten (not writable, another hard link to it, a big
// file): the caller goes on by the temp-file protocol, the claim untouched.
function rewriteClaimSync(claim: string, abs: string, c: JournalChange, content: Buffer, runId: string, touched: Touched, n: number): PathOutcome | null {
  let fd: number
  try {
    fd = openSync(claim, constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch {
    return null // a symlink, a read-only file, a special file: the temp-file protocol checks and reports it
  }
  const rewrite = path.join(path.dirname(claim), rewriteNameFor(path.basename(abs), runId))
  let old: Buffer = Buffer.alloc(0)
  let oldPerm = 0
  let renamed = false
  try {
    const st = fstatSync(fd, { bigint: true })
    if (!st.isFile() || st.nlink !== 1n || st.size > BigInt(BIG_BLOB_BYTES)) return null
    old = readToEnd(fd, Number(st.size), claim)
    oldPerm = Number(st.mode & 0o777n)
    const oldMode: FileMode = st.mode & 0o100n ? '100755' : '100644'
    if (oldMode !== c.oldMode || hashBlob(old) !== c.oldOid) {
      closeSync(fd)
      fd = -1
      restoreClaimSync(claim, abs)
      return 'moved'
    }
    renameSync(claim, rewrite)
    renamed = true
    const again = fstatSync(fd, { bigint: true })
    if (again.size !== st.size || again.mtimeNs !== st.mtimeNs) {
      closeSync(fd)
      fd = -1
      restoreClaimSync(rewrite, abs)
      return 'moved'
    }
    overwrite(fd, content)
    faultPoint('mid-rewrite', n)
    ftruncateSync(fd, content.length)
    if (c.newMode !== c.oldMode) fchmodSync(fd, modeBits(c.newMode as '100644' | '100755'))
  } catch (err) {
    if (fd !== -1 && renamed) {
      try {
        putBackOld(fd, old, oldPerm)
      } catch {
        // recovery rewrites it from the store (resolveClaims, transaction.ts)
      }
    }
    throw rewriteError(renamed ? rewrite : claim, abs, err)
  } finally {
    if (fd !== -1) closeSync(fd)
  }
  try {
    linkSync(rewrite, abs)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw rewriteError(rewrite, abs, err)
    // A writer re-created the path since the claim: the file gets its old bytes back and
    // goes back merged with the writer's.
    const back = openSync(rewrite, constants.O_RDWR | constants.O_NOFOLLOW)
    try {
      putBackOld(back, old, oldPerm)
    } finally {
      closeSync(back)
    }
    restoreClaimSync(rewrite, abs)
    return 'moved'
  }
  touched.files.add(abs)
  faultPoint('mid-link', n)
  unlinkSync(rewrite)
  return 'written'
}

function overwrite(fd: number, bytes: Buffer): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off, off)
}

export function putBackOld(fd: number, old: Buffer, perm: number): void {
  overwrite(fd, old)
  ftruncateSync(fd, old.length)
  fchmodSync(fd, perm)
}

function rewriteError(file: string, abs: string, err: unknown): AasError {
  if (err instanceof AasError) return err
  // `kept`: where the file's bytes are until the undo (or the next command) puts them back.
  return new AasError('IO_FAILED', `Cannot write ${abs}: ${describeFsError(err)}`, {
    data: { file: abs, kept: file, errno: (err as NodeJS.ErrnoException | undefined)?.code },
    hint: 'Check permissions and free space on the vault file system, then run the command again.',
    cause: err,
  })
}

// Directories a removal left empty go, as git does. rmdir(2) fails on a directory a
// writer has put something in meanwhile, so nothing but empty directories goes.
function pruneEmptyParents(root: string, abs: string, touched: Touched, verified: VerifiedDirs): void {
  const stop = path.resolve(root)
  for (let dir = path.dirname(abs); dir.startsWith(stop + path.sep); dir = path.dirname(dir)) {
    try {
      rmdirSync(dir)
    } catch {
      return
    }
    verified.delete(dir)
    touched.dirs.add(path.dirname(dir))
  }
}
