import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { open, unlink, type FileHandle } from 'node:fs/promises'
import { AasError, describeFsError } from '../errors.js'
import type { Store } from '../git/store.js'
import type { FileMode } from '../vault/walk.js'
import { modeBits } from './atomic-write.js'

// A blob from the store written to a temp file in chunks, for the write phase of a
// transaction: a file of hundreds of MB is never held in memory whole. The caller
// (transaction) decides what the temp file is called and what happens to it next
// (link or rename into place); this only creates it, fills it, checks it and closes it.

// Above this size a blob is streamed rather than read into a Buffer (the same threshold
// the snapshot uses to stream a file into the store).
export { BIG_BLOB_BYTES } from '../git/store.js'

export interface WriteBlobToTempOptions {
  // fsync the temp file before closing it. Default false: the transaction makes its
  // files durable in one batch (fsyncAll) before the journal goes.
  fsync?: boolean
  // The size the caller expects (e.g. from store.blobSizes); checked when given.
  expectedSize?: number
}

// Create tempAbsPath (O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW, 0600 while it is written), stream
// blob `oid` into it, check that the bytes hash to `oid` (sha1 of `blob <len>\0` + bytes)
// and that their count is the size the store announced, set the mode bits exactly
// (umask does not apply), optionally fsync, and close it. Resolves to the byte count.
//
// Fails with IO_FAILED naming tempAbsPath when it cannot be created (EEXIST included:
// a leftover is the caller's to remove) or written (ENOSPC, ...), and with STORE_CORRUPT
// when the store's bytes do not match the id. On any failure the temp file is removed.
export async function writeBlobToTemp(
  store: Store,
  oid: string,
  tempAbsPath: string,
  mode: number | Exclude<FileMode, '120000'>,
  { fsync = false, expectedSize }: WriteBlobToTempOptions = {},
): Promise<number> {
  let handle: FileHandle
  try {
    handle = await open(tempAbsPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  } catch (err) {
    throw ioFailed('create temp file', tempAbsPath, err)
  }
  let closed = false
  try {
    const hash = createHash('sha1')
    let announced = -1
    const bytes = await store.readBlobToFile(oid, handle.fd, {
      onSize: (size) => {
        announced = size
        hash.update(`blob ${size}\0`)
      },
      onData: (chunk) => hash.update(chunk),
    })
    const got = hash.digest('hex')
    if (bytes !== announced || got !== oid || (expectedSize !== undefined && bytes !== expectedSize)) {
      throw new AasError(
        'STORE_CORRUPT',
        `Blob ${oid} read back as ${bytes} bytes hashing to ${got}${expectedSize !== undefined ? ` (expected ${expectedSize} bytes)` : ''}; ${tempAbsPath} was not kept.`,
        {
          hint: `The store ${store.location.gitDir} is damaged: run \`git -C ${store.location.gitDir} fsck\` and \`aas-migrate --doctor\`.`,
          data: { oid, bytes, announced, expectedSize: expectedSize ?? null, hash: got, file: tempAbsPath },
        },
      )
    }
    try {
      await handle.chmod(modeBits(mode))
      if (fsync) await handle.sync()
    } catch (err) {
      throw ioFailed('write', tempAbsPath, err)
    }
    closed = true
    try {
      await handle.close()
    } catch (err) {
      throw ioFailed('write', tempAbsPath, err)
    }
    return bytes
  } catch (err) {
    if (!closed) await handle.close().catch(() => undefined)
    await unlink(tempAbsPath).catch(() => undefined)
    // Errors of the destination name the descriptor: name the temp file instead.
    if (err instanceof AasError && err.code === 'IO_FAILED' && err.data.file !== tempAbsPath) {
      throw ioFailed('write', tempAbsPath, err.cause ?? err)
    }
    throw err instanceof AasError ? err : ioFailed('write', tempAbsPath, err)
  }
}

function ioFailed(action: string, file: string, err: unknown): AasError {
  return new AasError('IO_FAILED', `Cannot ${action} ${file}: ${describeFsError(err)}`, {
    data: { file, errno: (err as NodeJS.ErrnoException | undefined)?.code },
    hint: 'Check permissions and free space on the vault file system, then run the command again.',
    cause: err,
  })
}
