import { randomBytes } from 'node:crypto'
import { mkdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import { pathExists as exists } from '../fs-exists.js'
import type { Store, TreeEntry } from '../git/store.js'
import { resolveSnapshotName } from './list.js'
import { legacyDir } from './names.js'

// --export-snapshot: a snapshot ref as a .tar.gz in the Python runner's layout.
import type { TarWriteEntry } from './tarball.js'

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
    throw new AasError('TARBALL_EXISTS', `${file} already exists.`, { hint: 'Pass --out with a new file name, or move the existing file away.', data: { file } })
  }
  await mkdir(path.dirname(file), { recursive: true })
  const entries = await store.listTree(snap.commit)
  const mtime = snap.timestamp
  async function* members(): AsyncGenerator<TarWriteEntry> {
    const dirs = new Set<string>()
    let i = 0
    for await (const { content } of store.readBlobs(entries.map((e) => e.oid))) {
      const e = entries[i++] as TreeEntry
      const parts = e.path.split('/')
      for (let k = 1; k < parts.length; k++) {
        const d = parts.slice(0, k).join('/')
        if (!dirs.has(d)) {
          dirs.add(d)
          yield { name: `${d}/`, kind: 'directory', mode: 0o755, mtime }
        }
      }
      if (e.mode === '120000') yield { name: e.path, kind: 'symlink', mode: 0o777, mtime, linkname: content.toString('utf8') }
      else yield { name: e.path, kind: 'file', mode: e.mode === '100755' ? 0o755 : 0o644, mtime, content }
    }
  }
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await (await loadTarball()).writeTarGz(tmp, members())
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    if (err instanceof AasError) throw err
    throw new AasError('IO_FAILED', `Cannot write ${file}: ${describeFsError(err)}.`, { hint: 'Check free space and permissions.', data: { file }, cause: err })
  }
  return { name: snap.name, file, files: entries.length }
}
