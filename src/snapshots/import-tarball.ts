import path from 'node:path'
import { AasError } from '../errors.js'
import { snapshotRef } from '../git/refs.js'
import type { Store, TreeEntry } from '../git/store.js'
import { ENGINE_VERSION } from '../version.js'
import { isDirOutOfScope, isFileInScope } from '../vault/rules.js'
import { loadRules, type FileMode } from '../vault/walk.js'
import { bytesAddedSince, latestSnapshotCommit, trailerBlock } from './chain.js'
import { invalidName, isRegularFile, isValidName, parseName } from './names.js'

// --import-snapshot: a Python-runner tarball (or an export) becomes a snapshot ref,
// once every member has been vetted.
import type { TarMember } from './tarball.js'

// The tar code (and zlib) is loaded by export and import only: a snapshot never needs it.
const loadTarball = () => import('./tarball.js')

export interface ImportResult {
  name: string
  ref: string
  commit: string
  tree: string
  files: number
  skipped: string[] // members outside the snapshot scope (e.g. .git/, _cache/)
}

function hostile(file: string, member: string, reason: string): AasError {
  return new AasError('TARBALL_INVALID', `${path.basename(file)}: member ${JSON.stringify(member)} ${reason}; nothing was imported.`, {
    hint: 'Only import tarballs written by the Python runner or by --export-snapshot; repack this one without that member.',
    data: { file, member, reason },
  })
}

// The vault-relative path of a member, or null for the root folder; throws on hostile names.
function memberPath(file: string, m: TarMember): string | null {
  const raw = m.name
  if (raw.includes('\0')) throw hostile(file, raw, 'has a NUL byte in its name')
  if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw)) throw hostile(file, raw, 'has an absolute path')
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.')
  if (parts.includes('..')) throw hostile(file, raw, 'has a .. component')
  return parts.length === 0 ? null : parts.join('/')
}

function inScope(p: string, rules: Awaited<ReturnType<typeof loadRules>>): boolean {
  const parts = p.split('/')
  for (let k = 1; k < parts.length; k++) if (isDirOutOfScope(parts.slice(0, k).join('/'), rules)) return false
  return isFileInScope(p, rules)
}

// A Python-runner tarball (or an export) becomes a snapshot ref. Every member header is
// vetted before any object is written, so a refused tarball leaves no trace.
export async function importSnapshot(store: Store, file: string): Promise<ImportResult> {
  const base = path.basename(file)
  if (!base.endsWith('.tar.gz')) throw invalidName(base)
  const name = base.slice(0, -'.tar.gz'.length)
  if (!isValidName(name)) throw invalidName(base)
  const ref = snapshotRef(name)
  if ((await store.resolveRef(ref)) !== null) {
    throw new AasError('SNAPSHOT_EXISTS', `Snapshot ${name} already exists.`, { hint: 'Rename the tarball to import it under another name.', data: { name, ref } })
  }
  const st = await isRegularFile(file)
  if (!st) throw new AasError('SNAPSHOT_NOT_FOUND', `${file} is not a file.`, { hint: 'Pass the path of a .tar.gz file.', data: { file } })
  const rules = await loadRules(store.agentsRoot)
  const { readTarGz, TarFormatError } = await loadTarball()

  // Pass 1: vet every header; decide what is kept.
  const kept = new Map<string, FileMode>()
  const sizes = new Map<string, number>()
  const seen = new Set<string>()
  const dirs = new Set<string>()
  const skipped: string[] = []
  try {
    for await (const m of readTarGz(file, { withContent: false })) {
      const p = memberPath(file, m)
      if (m.kind === 'hardlink') throw hostile(file, m.name, 'is a hard link')
      if (m.kind === 'char-device' || m.kind === 'block-device') throw hostile(file, m.name, 'is a device file')
      if (m.kind === 'fifo') throw hostile(file, m.name, 'is a fifo')
      if (m.kind === 'other') throw hostile(file, m.name, 'has an unsupported type')
      if (p === null) continue
      if (seen.has(p)) throw hostile(file, m.name, 'is a duplicate member')
      seen.add(p)
      if (m.kind === 'symlink') {
        if (m.linkname === '' || m.linkname.startsWith('/')) throw hostile(file, m.name, `is a link leaving the vault (-> ${m.linkname})`)
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(p), m.linkname))
        if (target === '..' || target.startsWith('../')) throw hostile(file, m.name, `is a link leaving the vault (-> ${m.linkname})`)
      }
      if (m.kind === 'directory') {
        dirs.add(p)
        continue
      }
      if (!inScope(p, rules)) {
        skipped.push(p)
        continue
      }
      kept.set(p, m.kind === 'symlink' ? '120000' : m.mode & 0o100 ? '100755' : '100644')
      sizes.set(p, m.kind === 'symlink' ? Buffer.byteLength(m.linkname) : m.size)
    }
  } catch (err) {
    if (err instanceof TarFormatError || (err instanceof Error && !(err instanceof AasError))) {
      throw new AasError('TARBALL_INVALID', `${base} is not a readable .tar.gz: ${err.message}; nothing was imported.`, {
        hint: 'Check that the file is a complete gzip-compressed tar archive.',
        data: { file, reason: err.message },
        cause: err,
      })
    }
    throw err
  }
  for (const p of [...kept.keys(), ...dirs]) {
    const parts = p.split('/')
    for (let k = 1; k < parts.length; k++) {
      const d = parts.slice(0, k).join('/')
      if (kept.has(d) || (seen.has(d) && !dirs.has(d))) throw hostile(file, p, `is below ${d}, which is not a folder`)
    }
  }

  // Pass 2: write the kept blobs, streaming.
  const order: string[] = []
  async function* contents(): AsyncGenerator<Buffer> {
    for await (const m of readTarGz(file)) {
      const p = memberPath(file, m)
      if (p === null || !kept.has(p) || m.kind === 'directory') continue
      order.push(p)
      yield m.kind === 'symlink' ? Buffer.from(m.linkname) : (m.content ?? Buffer.alloc(0))
    }
  }
  const oids = await store.writeBlobs(contents())
  const entries: TreeEntry[] = order.map((p, i) => ({ path: p, mode: kept.get(p) as FileMode, oid: oids[i] as string }))
  const blobSizes = new Map<string, number>()
  entries.forEach((e) => blobSizes.set(e.oid, sizes.get(e.path) ?? 0))
  const tree = await store.writeTree(entries)
  const parent = await latestSnapshotCommit(store)
  const bytesAdded = await bytesAddedSince(store, parent, blobSizes)
  const parsed = parseName(name)
  const timestamp = parsed?.timestamp ?? Math.floor(st.mtimeMs / 1000)
  const trailers: Record<string, string | number> = { 'Aas-Imported-From': base }
  if (parsed) trailers['Aas-Target'] = parsed.target
  trailers['Aas-Engine-Version'] = ENGINE_VERSION
  trailers['Aas-Files'] = entries.length
  trailers['Aas-Bytes-Added'] = bytesAdded
  const commit = await store.writeCommit({
    tree,
    parents: parent ? [parent.oid] : [],
    message: `Snapshot imported from ${base}\n\n${trailerBlock(trailers)}\n`,
    timestamp,
  })
  await store.updateRef(ref, commit, null)
  return { name, ref, commit, tree, files: entries.length, skipped }
}
