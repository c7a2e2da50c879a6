import { createHash } from 'node:crypto'
import { closeSync, constants, fstatSync, openSync, readlinkSync, readSync } from 'node:fs'
import { AasError, describeFsError } from '../errors.js'
import { hashObject } from '../git/git-objects.js'
import { BIG_BLOB_BYTES } from '../git/store.js'
import type { FileMode } from '../vault/walk.js'

const HASH_CHUNK_BYTES = 1 << 20

// Git blob ids computed in-process, so recovery can compare live files with a
// journal without a git call per file. Equal to `git hash-object --no-filters`.

export interface LiveEntry {
  mode: FileMode
  oid: string
}

// sha1 of `blob <len>\0<bytes>`: git's object id for these bytes.
export function hashBlob(content: Buffer): string {
  return hashObject('blob', content)
}

// The blob id of a live entry read as `mode` says: a symlink hashes its target bytes,
// a file its content. Never follows a symlink; a type that contradicts `mode` is an
// error, and so is a big file whose length moves while it is read (CONCURRENT_CHANGE).
export async function hashFile(absPath: string, mode: FileMode): Promise<string> {
  const live = hashLiveEntrySync(absPath)
  if (live === null) {
    throw new AasError('IO_FAILED', `Cannot hash ${absPath}: nothing is there`, {
      data: { file: absPath },
      hint: 'Check that the file exists and is readable.',
    })
  }
  if ((live.mode === '120000') !== (mode === '120000')) throw typeMismatch(absPath, mode, live.mode === '120000' ? 'a symlink' : 'not a symlink')
  if (live.oid === CHANGING_OID) {
    throw new AasError('CONCURRENT_CHANGE', `${absPath} changed while it was being hashed.`, {
      data: { file: absPath, paths: [absPath] },
      hint: 'Stop whatever is writing to this file (or wait for it to finish), then run the command again.',
    })
  }
  return live.oid
}

// What is at absPath now, as git would record it (mode and blob id), or null when
// nothing is there. Directories and special files are reported as an AasError.
export async function hashLiveEntry(absPath: string): Promise<LiveEntry | null> {
  return hashLiveEntrySync(absPath)
}

// hashLiveEntry without the thread pool: the write phase checks thousands of small
// files one after another, where a promise round trip per system call costs more than
// the call. Four calls for a file: open (O_NOFOLLOW: a symlink fails with ELOOP and is
// read as one; O_NONBLOCK: a planted FIFO cannot hang it), fstat, read, close.
// `seen.perm` gets a regular file's permission bits (st_mode & 0o777).
export function hashLiveEntrySync(absPath: string, seen?: { perm?: number }): LiveEntry | null {
  let fd: number
  try {
    fd = openSync(absPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return null
    if (code === 'ELOOP') return { mode: '120000', oid: hashSymlinkSync(absPath) }
    if (code === 'ENXIO') throw notFileOrLink(absPath) // a socket
    throw new AasError('IO_FAILED', `Cannot open ${absPath}: ${describeFsError(err)}`, { data: { file: absPath }, cause: err })
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw notFileOrLink(absPath)
    const mode: FileMode = st.mode & 0o100 ? '100755' : '100644'
    if (seen) seen.perm = st.mode & 0o777
    return { mode, oid: st.size > BIG_BLOB_BYTES ? hashInChunksSync(fd, st.size, absPath) : hashBlob(readToEnd(fd, st.size, absPath)) }
  } finally {
    closeSync(fd)
  }
}

// The id of a big open file, read in chunks (never whole). A file whose length moves
// while it is read gets an id that matches nothing (CHANGING_OID): to a check it is a
// file someone else is writing, never one of the states the engine knows.
export const CHANGING_OID = 'changing'
function hashInChunksSync(fd: number, size: number, absPath: string): string {
  const hash = createHash('sha1').update(`blob ${size}\0`)
  const buf = Buffer.allocUnsafe(HASH_CHUNK_BYTES)
  let done = 0
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, done)
      if (n === 0) break
      done += n
      if (done > size) return CHANGING_OID
      hash.update(buf.subarray(0, n))
    }
  } catch (err) {
    throw new AasError('IO_FAILED', `Cannot read ${absPath}: ${describeFsError(err)}`, { data: { file: absPath }, cause: err })
  }
  return done === size ? hash.digest('hex') : CHANGING_OID
}

function hashSymlinkSync(absPath: string): string {
  try {
    return hashBlob(readlinkSync(absPath, { encoding: 'buffer' }))
  } catch (err) {
    // Replaced by a file between the open and the readlink: read it as it is now.
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') {
      const again = hashLiveEntrySync(absPath)
      if (again) return again.oid
    }
    throw new AasError('IO_FAILED', `Cannot read the symlink ${absPath}: ${describeFsError(err)}`, { data: { file: absPath }, cause: err })
  }
}

// The whole content of an open regular file of (about) `size` bytes: a short read is
// the end of the file, so a file that did not change is one read(2).
export function readToEnd(fd: number, size: number, absPath: string): Buffer {
  let buf = Buffer.allocUnsafe(size + 1)
  let got = 0
  try {
    for (;;) {
      if (got === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2)
        buf.copy(bigger, 0, 0, got)
        buf = bigger
      }
      const want = buf.length - got
      const n = readSync(fd, buf, got, want, got)
      got += n
      if (n < want) break
    }
  } catch (err) {
    throw new AasError('IO_FAILED', `Cannot read ${absPath}: ${describeFsError(err)}`, { data: { file: absPath }, cause: err })
  }
  return buf.subarray(0, got)
}

function notFileOrLink(absPath: string): AasError {
  return new AasError('IO_FAILED', `${absPath} is neither a file nor a symlink`, {
    data: { file: absPath },
    hint: 'Move the directory or special file out of the way, then run the command again.',
  })
}

function typeMismatch(absPath: string, mode: FileMode, found: string): AasError {
  return new AasError('IO_FAILED', `Cannot hash ${absPath} as mode ${mode}: it is ${found}`, {
    data: { file: absPath, mode },
    hint: 'Hash the entry with the mode it has on disk (hashLiveEntry).',
  })
}
