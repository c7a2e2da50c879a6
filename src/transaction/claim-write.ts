import { rmdirSync } from 'node:fs'
import path from 'node:path'
import type { FileMode } from '../vault/walk.js'
import { claimFileSync, placeNewSync, restoreClaimSync, removeFileSync, type OwnBytes, type PlacedContent, type VerifiedDirs } from './atomic-write.js'
import { hashLiveEntrySync, type LiveEntry } from './blob-hash.js'
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
