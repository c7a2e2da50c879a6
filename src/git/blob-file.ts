import { constants, write as writeCb, type Stats } from 'node:fs'
import { open, unlink, type FileHandle } from 'node:fs/promises'
import { promisify } from 'node:util'
import { AasError, describeFsError } from '../errors.js'
import type { BlobDestination, BlobFileRef, BlobInput } from './store.js'

// Streaming a big file into the store and a blob out of it, in fixed-size chunks, for
// both backends: the file's bytes are never held in memory whole.

export const STREAM_CHUNK_BYTES = 1 << 20

const writeFd = promisify(writeCb)

export function isBlobFileRef(v: BlobInput): v is BlobFileRef {
  return !Buffer.isBuffer(v)
}

export function changedWhileSnapshotting(file: string, detail: string): AasError {
  return new AasError('CONCURRENT_CHANGE', `${file} changed while it was being snapshotted (${detail}); the snapshot was not taken.`, {
    hint: 'Stop whatever is writing to this file (or wait for it to finish), then run the command again.',
    data: { path: file, file },
  })
}

export interface OpenedFileRef {
  // Exactly ref.size bytes, in order, in chunks of at most STREAM_CHUNK_BYTES (each a
  // fresh buffer the consumer may keep). Throws CONCURRENT_CHANGE naming the file when
  // the file ends early, goes on past ref.size, or its mtime/ctime/size moved meanwhile.
  chunks(): AsyncGenerator<Buffer>
  close(): Promise<void>
}

// Open a file to be streamed as a blob: a regular file (never through a symlink, never
// blocking on a FIFO) that still has the size the caller announced. Open it before
// committing to the size (fast-import's `data <size>`): a mismatch here costs nothing.
export async function openFileRef(ref: BlobFileRef): Promise<OpenedFileRef> {
  let fh: FileHandle
  try {
    fh = await open(ref.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR')
      throw changedWhileSnapshotting(ref.path, `it is gone or no longer a file: ${describeFsError(err)}`)
    throw readFailed(ref.path, err)
  }
  let first: Stats
  try {
    first = await fh.stat()
    if (!first.isFile()) throw changedWhileSnapshotting(ref.path, 'it is no longer a regular file')
    if (first.size !== ref.size) throw changedWhileSnapshotting(ref.path, `${ref.size} bytes when scanned, ${first.size} bytes when read`)
  } catch (err) {
    await fh.close().catch(() => {})
    throw readFailed(ref.path, err)
  }
  return {
    async *chunks() {
      let done = 0
      while (done < ref.size) {
        const want = Math.min(STREAM_CHUNK_BYTES, ref.size - done)
        const buf = Buffer.allocUnsafe(want)
        let got = 0
        while (got < want) {
          let n: number
          try {
            ;({ bytesRead: n } = await fh.read(buf, got, want - got, done + got))
          } catch (err) {
            throw readFailed(ref.path, err)
          }
          if (n === 0) throw changedWhileSnapshotting(ref.path, `it ended after ${done + got} of ${ref.size} bytes`)
          got += n
        }
        done += want
        yield buf
      }
      const probe = Buffer.allocUnsafe(1)
      const { bytesRead } = await fh.read(probe, 0, 1, ref.size).catch((err: unknown) => {
        throw readFailed(ref.path, err)
      })
      if (bytesRead !== 0) throw changedWhileSnapshotting(ref.path, `it grew past the ${ref.size} bytes announced`)
      const last = await fh.stat()
      if (last.size !== ref.size || last.mtimeMs !== first.mtimeMs || last.ctimeMs !== first.ctimeMs) {
        throw changedWhileSnapshotting(ref.path, 'it was written to while being read')
      }
    },
    close: () => fh.close(),
  }
}

function readFailed(file: string, err: unknown): AasError {
  if (err instanceof AasError) return err
  return new AasError('IO_FAILED', `Cannot read ${file}: ${describeFsError(err)}.`, {
    hint: `Check the permissions of ${file}.`,
    data: { path: file, file },
    cause: err,
  })
}

export interface BlobSink {
  write(chunk: Buffer): Promise<void>
  // Closes what it opened (a path), leaves a caller's fd open.
  close(): Promise<void>
  // After a failure: closes, and removes the file when the sink created it.
  abort(): Promise<void>
}

// Where readBlobToFile writes: a caller's fd (sequential writes from its current
// position) or a new file at a path (O_EXCL|O_NOFOLLOW, mode 0600).
export async function openBlobSink(dest: BlobDestination): Promise<BlobSink> {
  if (typeof dest === 'number') {
    return {
      write: (chunk) => writeAllFd(dest, chunk),
      close: async () => {},
      abort: async () => {},
    }
  }
  let fh: FileHandle
  try {
    fh = await open(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  } catch (err) {
    throw writeFailed(dest, err)
  }
  let closed = false
  return {
    async write(chunk) {
      let off = 0
      while (off < chunk.length) {
        try {
          off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten
        } catch (err) {
          throw writeFailed(dest, err)
        }
      }
    },
    async close() {
      closed = true
      try {
        await fh.close()
      } catch (err) {
        throw writeFailed(dest, err)
      }
    },
    async abort() {
      if (!closed) await fh.close().catch(() => {})
      await unlink(dest).catch(() => {})
    },
  }
}

async function writeAllFd(fd: number, chunk: Buffer): Promise<void> {
  let off = 0
  while (off < chunk.length) {
    try {
      off += (await writeFd(fd, chunk, off, chunk.length - off, null)).bytesWritten
    } catch (err) {
      throw writeFailed(`file descriptor ${fd}`, err)
    }
  }
}

function writeFailed(file: string, err: unknown): AasError {
  return new AasError('IO_FAILED', `Cannot write ${file}: ${describeFsError(err)}.`, {
    hint: 'Check free space and permissions, then run the command again.',
    data: { file },
    cause: err,
  })
}

export function notABlob(oid: string, type: string, where: string): AasError {
  return new AasError('STORE_CORRUPT', `Object ${oid} in ${where} is a ${type}, not a blob.`, {
    hint: 'Pass the id of a blob; run `aas-migrate --doctor` if it came from a snapshot tree.',
    data: { oid, type, gitDir: where },
  })
}

export function missingObject(oid: string, where: string): AasError {
  return new AasError('STORE_CORRUPT', `Object ${oid} is missing from the store ${where}.`, {
    hint: 'Run `aas-migrate --doctor`; the snapshot may have been deleted or the store damaged.',
    data: { oid, gitDir: where },
  })
}

export function shortBlob(oid: string, got: number, size: number, where: string): AasError {
  return new AasError('STORE_CORRUPT', `Object ${oid} in ${where} ended after ${got} of its ${size} bytes.`, {
    hint: `The store ${where} is damaged: run \`git -C ${where} fsck\` and \`aas-migrate --doctor\`.`,
    data: { oid, bytes: got, size, gitDir: where },
  })
}
