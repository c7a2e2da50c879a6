import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { AasError, describeFsError } from '../errors.js'
import { snapshotRef } from '../git/refs.js'
import { BIG_BLOB_BYTES, type BlobInput, type Store, type TreeEntry } from '../git/store.js'
import { ENGINE_VERSION } from '../version.js'
import { isDirOutOfScope, isFileInScope } from '../vault/rules.js'
import { loadRules, type FileMode } from '../vault/walk.js'
import { bytesAddedSince, latestSnapshotCommit, trailerBlock } from './chain.js'
import { invalidName, isRegularFile, isValidName, parseName } from './names.js'
import type { TarEntry, TarMember } from './tarball.js'

// --import-snapshot: a Python-runner tarball (or an export) becomes a snapshot ref,
// once every member has been vetted.

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

function notReadable(file: string, err: Error): AasError {
  return new AasError('TARBALL_INVALID', `${path.basename(file)} is not a readable .tar.gz: ${err.message}; nothing was imported.`, {
    hint: 'Check that the file is a complete gzip-compressed tar archive.',
    data: { file, reason: err.message },
    cause: err,
  })
}

// The vault-relative path of a member, or null for the root folder; throws on a member
// that may not be imported: a hostile name or type, a link leaving the vault.
function vetMember(file: string, m: TarMember): string | null {
  const raw = m.name
  if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw)) throw hostile(file, raw, 'has an absolute path')
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.')
  if (parts.includes('..')) throw hostile(file, raw, 'has a .. component')
  if (m.kind === 'hardlink') throw hostile(file, raw, 'is a hard link')
  if (m.kind === 'char-device' || m.kind === 'block-device') throw hostile(file, raw, 'is a device file')
  if (m.kind === 'fifo') throw hostile(file, raw, 'is a fifo')
  if (m.kind === 'other') throw hostile(file, raw, 'has an unsupported type')
  const p = parts.length === 0 ? null : parts.join('/')
  if (m.kind === 'symlink' && p !== null) {
    const leaves = m.linkname === '' || m.linkname.startsWith('/')
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(p), m.linkname))
    if (leaves || target === '..' || target.startsWith('../')) throw hostile(file, raw, `is a link leaving the vault (-> ${m.linkname})`)
  }
  return p
}

function inScope(p: string, rules: Awaited<ReturnType<typeof loadRules>>): boolean {
  const parts = p.split('/')
  for (let k = 1; k < parts.length; k++) if (isDirOutOfScope(parts.slice(0, k).join('/'), rules)) return false
  return isFileInScope(p, rules)
}

const modeOf = (m: TarMember): FileMode => (m.kind === 'symlink' ? '120000' : m.mode & 0o100 ? '100755' : '100644')
const sizeOf = (m: TarMember): number => (m.kind === 'symlink' ? Buffer.byteLength(m.linkname) : m.size)

interface Kept {
  mode: FileMode
  size: number
}

// Pass 1: every header vetted, contents skipped; what is kept, in archive order.
async function vetTarball(
  file: string,
  members: AsyncIterable<TarEntry>,
  rules: Awaited<ReturnType<typeof loadRules>>,
): Promise<{ kept: Map<string, Kept>; skipped: string[] }> {
  const kept = new Map<string, Kept>()
  const seen = new Set<string>()
  const dirs = new Set<string>()
  const skipped: string[] = []
  for await (const m of members) {
    const p = vetMember(file, m)
    if (p === null) continue
    if (seen.has(p)) throw hostile(file, m.name, 'is a duplicate member')
    seen.add(p)
    if (m.kind === 'directory') dirs.add(p)
    else if (!inScope(p, rules)) skipped.push(p)
    else kept.set(p, { mode: modeOf(m), size: sizeOf(m) })
  }
  for (const p of [...kept.keys(), ...dirs]) {
    const parts = p.split('/')
    for (let k = 1; k < parts.length; k++) {
      const d = parts.slice(0, k).join('/')
      if (kept.has(d) || (seen.has(d) && !dirs.has(d))) throw hostile(file, p, `is below ${d}, which is not a folder`)
    }
  }
  return { kept, skipped }
}

async function collect(chunks: AsyncIterable<Buffer>, size: number): Promise<Buffer> {
  const all: Buffer[] = []
  for await (const c of chunks) all.push(c)
  return Buffer.concat(all, size)
}

// Pass 2: the kept members' contents, for store.writeBlobs, in the order of `kept`. A
// member above BIG_BLOB_BYTES is streamed to a scratch file (listed in `scratch`, for the
// caller to remove) and handed over as a file, never held in memory whole. A member
// that differs from pass 1 (the file changed in between) fails.
async function* blobInputs(
  file: string,
  members: AsyncIterable<TarEntry>,
  kept: Map<string, Kept>,
  scratchDir: string,
  scratch: string[],
): AsyncGenerator<BlobInput> {
  const { TarFormatError } = await loadTarball()
  const expected = [...kept]
  let i = 0
  for await (const m of members) {
    const p = vetMember(file, m)
    if (p === null || m.kind === 'directory' || !kept.has(p)) continue
    const [want, was] = expected[i++] ?? []
    if (p !== want || modeOf(m) !== was?.mode || sizeOf(m) !== was.size)
      throw new TarFormatError(`${m.name} differs from the first read: the file changed meanwhile`)
    if (m.kind === 'symlink') yield Buffer.from(m.linkname)
    else if (m.size <= BIG_BLOB_BYTES) yield await collect(m.content(), m.size)
    else {
      // Pulled by writeBlobs, so the store (and scratchDir's parent) exists by now.
      if (scratch.length === 0) await mkdir(scratchDir, { recursive: true })
      const tmp = path.join(scratchDir, `import-${randomBytes(6).toString('hex')}.blob`)
      scratch.push(tmp)
      await pipeline(Readable.from(m.content()), createWriteStream(tmp, { flags: 'wx', mode: 0o600 }))
      yield { path: tmp, size: m.size }
    }
  }
  if (i !== expected.length) throw new TarFormatError(`${expected.length - i} members are missing on the second read: the file changed meanwhile`)
}

// Pass 2 into the store: the blob ids of the kept members, in the order of `kept`.
async function writeKeptBlobs(store: Store, file: string, kept: Map<string, Kept>): Promise<string[]> {
  const { readTarGz, TarFormatError } = await loadTarball()
  const scratchDir = store.location.stateDir
  const scratch: string[] = []
  try {
    return await store.writeBlobs(blobInputs(file, readTarGz(file), kept, scratchDir, scratch))
  } catch (err) {
    if (err instanceof TarFormatError) throw notReadable(file, err)
    if (err instanceof AasError || !(err instanceof Error)) throw err
    throw new AasError('IO_FAILED', `Cannot import ${path.basename(file)}: ${describeFsError(err)}; nothing was imported.`, {
      hint: `Check free space and permissions of ${scratchDir}.`,
      data: { file, dir: scratchDir },
      cause: err,
    })
  } finally {
    await Promise.all(scratch.map((f) => rm(f, { force: true })))
  }
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
    throw new AasError('SNAPSHOT_EXISTS', `Snapshot ${name} already exists.`, {
      hint: 'Rename the tarball to import it under another name.',
      data: { name, ref },
    })
  }
  const st = await isRegularFile(file)
  if (!st) throw new AasError('SNAPSHOT_NOT_FOUND', `${file} is not a file.`, { hint: 'Pass the path of a .tar.gz file.', data: { file } })
  const rules = await loadRules(store.agentsRoot)
  const { readTarGz } = await loadTarball()

  let vetted: Awaited<ReturnType<typeof vetTarball>>
  try {
    vetted = await vetTarball(file, readTarGz(file, { withContent: false }), rules)
  } catch (err) {
    throw err instanceof Error && !(err instanceof AasError) ? notReadable(file, err) : err
  }
  const { kept, skipped } = vetted
  const oids = await writeKeptBlobs(store, file, kept)
  const entries: TreeEntry[] = [...kept].map(([p, k], i) => ({ path: p, mode: k.mode, oid: oids[i] as string }))
  const blobSizes = new Map<string, number>()
  entries.forEach((e) => blobSizes.set(e.oid, kept.get(e.path)?.size ?? 0))
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
