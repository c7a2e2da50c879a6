import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import { pathExists as exists } from '../fs-exists.js'
import { BIG_BLOB_BYTES, type Store, type TreeEntry } from '../git/store.js'
import { resolveSnapshotName } from './list.js'
import { legacyDir } from './names.js'
import type { TarWriteEntry } from './tarball.js'

// --export-snapshot: a snapshot ref as a .tar.gz in the Python runner's layout.

// The tar code (and zlib) is loaded by export and import only: a snapshot never needs it.
const loadTarball = () => import('./tarball.js')

export interface ExportResult {
  name: string
  file: string
  files: number
}

// A snapshot as a .tar.gz in the Python runner's layout (members relative to agents_root).
export async function exportSnapshot(store: Store, name: string, { out }: { out?: string } = {}): Promise<ExportResult> {
  const snap = await resolveSnapshotName(store, name)
  if (snap.source !== 'ref' || !snap.commit) {
    throw new AasError('SNAPSHOT_NOT_FOUND', `Snapshot ${snap.name} exists only as the tarball ${snap.file}.`, {
      hint: 'It is already a tarball; import it with --import-snapshot first if you need a copy.',
      data: { name: snap.name, file: snap.file },
    })
  }
  const file = path.resolve(out ?? path.join(legacyDir(store), `${snap.name}.tar.gz`))
  if (await exists(file)) {
    throw new AasError('TARBALL_EXISTS', `${file} already exists.`, {
      hint: 'Pass --out with a new file name, or move the existing file away.',
      data: { file },
    })
  }
  await mkdir(path.dirname(file), { recursive: true })
  const entries = await store.listTree(snap.commit)
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await (await loadTarball()).writeTarGz(tmp, members(store, entries, snap.timestamp, tmp))
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    if (err instanceof AasError) throw err
    throw new AasError('IO_FAILED', `Cannot write ${file}: ${describeFsError(err)}.`, { hint: 'Check free space and permissions.', data: { file }, cause: err })
  }
  return { name: snap.name, file, files: entries.length }
}

// The tarball's members in tree order, each folder before its first file. Blobs above
// BIG_BLOB_BYTES are streamed (through a file next to the tarball being written); the
// others are read in one pass.
async function* members(store: Store, entries: TreeEntry[], mtime: number, tmp: string): AsyncGenerator<TarWriteEntry> {
  const sizes = await store.blobSizes(entries.map((e) => e.oid))
  const isBig = (e: TreeEntry): boolean => e.mode !== '120000' && (sizes.get(e.oid) ?? 0) > BIG_BLOB_BYTES
  const small = store.readBlobs(entries.filter((e) => !isBig(e)).map((e) => e.oid))[Symbol.asyncIterator]()
  const dirs = new Set<string>()
  try {
    for (const e of entries) {
      const parts = e.path.split('/')
      for (let k = 1; k < parts.length; k++) {
        const d = parts.slice(0, k).join('/')
        if (!dirs.has(d)) {
          dirs.add(d)
          yield { name: `${d}/`, kind: 'directory', mode: 0o755, mtime }
        }
      }
      const mode = e.mode === '100755' ? 0o755 : 0o644
      if (isBig(e)) {
        yield { name: e.path, kind: 'file', mode, mtime, size: sizes.get(e.oid) as number, content: bigBlob(store, e.oid, `${tmp}.blob`) }
        continue
      }
      const r = await small.next()
      if (r.done) throw new Error(`the store returned no content for ${e.path} (${e.oid})`)
      if (e.mode === '120000') yield { name: e.path, kind: 'symlink', mode: 0o777, mtime, linkname: r.value.content.toString('utf8') }
      else yield { name: e.path, kind: 'file', mode, mtime, content: r.value.content }
    }
  } finally {
    await small.return?.()
  }
}

// A big blob in chunks: streamed by the store into a scratch file, then read back from it.
async function* bigBlob(store: Store, oid: string, scratch: string): AsyncGenerator<Buffer> {
  try {
    await store.readBlobToFile(oid, scratch)
    yield* createReadStream(scratch, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>
  } finally {
    await rm(scratch, { force: true })
  }
}
