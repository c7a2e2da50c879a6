import { randomBytes } from 'node:crypto'
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { AasError, describeFsError, isAasError } from '../errors.js'
import { pathExists as exists } from '../fs-exists.js'
import type { CommitInfo, PreReadFile, RefCommit, SnapshotTreeResult, Store, TreeEntry } from '../git/store.js'
import { ENGINE_VERSION } from '../version.js'
import { isDirOutOfScope, isFileInScope, LEGACY_SNAPSHOTS_DIR } from '../vault/rules.js'
import { loadRules, type FileMode } from '../vault/walk.js'
import type { TarMember, TarWriteEntry } from './tarball.js'
import { SNAPSHOT_REF_PREFIX, snapshotRef } from '../git/refs.js'

// The tar code (and zlib) is loaded by export and import only: a snapshot never needs it.
const loadTarball = () => import('./tarball.js')


export interface Snapshot {
  name: string
  source: 'ref' | 'tarball' // a snapshot ref, or a Python-runner tarball not yet imported
  ref: string | null
  commit: string | null
  tree: string | null
  time: string // ISO 8601, UTC
  timestamp: number // seconds since the epoch
  target: number | null
  from: number | null
  runId: string | null
  files: number | null // null for a tarball not yet imported
  bytesAdded: number // bytes of new content against the previous snapshot (a tarball: its size)
  file: string | null // the tarball, for source 'tarball'
  importedFrom: string | null
}

export interface TakeSnapshotResult {
  name: string
  ref: string | null // null: taken without a ref (a dry run's base)
  commit: string
  tree: string
  files: number
  bytesAdded: number
  bytesHashed: number
  parent: string | null
  entries: TreeEntry[] // every file of the snapshot's tree, sorted by path
  trees: ReadonlySet<string> // the ids of its tree and of every tree below it
}

const NAME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})(\d{2})(\d{2})_pre_v(\d+)_migration(?:-\d+)?$/

export function snapshotBaseName(now: Date, target: number, label = `pre_v${target}_migration`): string {
  const iso = now.toISOString() // YYYY-MM-DDTHH:MM:SS.sssZ
  return `${iso.slice(0, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}_${label}`
}

function parseName(name: string): { timestamp: number; target: number } | null {
  const m = NAME_RE.exec(name)
  if (!m) return null
  const [, y, mo, d, h, mi, s, t] = m
  return { timestamp: Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000, target: Number(t) }
}

function legacyDir(store: Store): string {
  return path.join(store.agentsRoot, LEGACY_SNAPSHOTS_DIR)
}

async function isRegularFile(p: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const st = await lstat(p)
    return st.isFile() ? { size: st.size, mtimeMs: st.mtimeMs } : null
  } catch {
    return null
  }
}

const intOrNull = (v: string | undefined): number | null => (v !== undefined && /^\d+$/.test(v) ? Number(v) : null)

function fromCommit(name: string, ref: string, c: CommitInfo): Snapshot {
  const t = c.trailers
  return {
    name,
    source: 'ref',
    ref,
    commit: c.oid,
    tree: c.tree,
    time: new Date(c.timestamp * 1000).toISOString(),
    timestamp: c.timestamp,
    target: intOrNull(t['Aas-Target']),
    from: intOrNull(t['Aas-From']),
    runId: t['Aas-Run-Id'] ?? null,
    files: intOrNull(t['Aas-Files']),
    bytesAdded: intOrNull(t['Aas-Bytes-Added']) ?? 0,
    file: null,
    importedFrom: t['Aas-Imported-From'] ?? null,
  }
}

const newestFirst = (a: Snapshot, b: Snapshot): number => b.timestamp - a.timestamp || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0)

// Every snapshot, newest first: snapshot refs, then Python-runner tarballs not imported yet.
export async function listSnapshots(store: Store): Promise<Snapshot[]> {
  const out: Snapshot[] = []
  for (const { ref, oid } of await store.listRefs(SNAPSHOT_REF_PREFIX)) {
    out.push(fromCommit(ref.slice(SNAPSHOT_REF_PREFIX.length), ref, await store.readCommit(oid)))
  }
  const known = new Set(out.map((s) => s.name))
  let names: string[] = []
  try {
    names = await readdir(legacyDir(store))
  } catch {
    names = []
  }
  for (const fileName of names) {
    if (!fileName.endsWith('.tar.gz')) continue
    const name = fileName.slice(0, -'.tar.gz'.length)
    if (known.has(name) || !isValidName(name)) continue
    const file = path.join(legacyDir(store), fileName)
    const st = await isRegularFile(file)
    if (!st) continue
    const parsed = parseName(name)
    const timestamp = parsed?.timestamp ?? Math.floor(st.mtimeMs / 1000)
    out.push({
      name,
      source: 'tarball',
      ref: null,
      commit: null,
      tree: null,
      time: new Date(timestamp * 1000).toISOString(),
      timestamp,
      target: parsed?.target ?? null,
      from: null,
      runId: null,
      files: null,
      bytesAdded: st.size,
      file,
      importedFrom: null,
    })
  }
  return out.sort(newestFirst)
}

function isValidName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/.test(name) && !name.includes('..') && !name.endsWith('.lock')
}

function invalidName(input: string): AasError {
  return new AasError('SNAPSHOT_NAME_INVALID', `${JSON.stringify(input)} is not a snapshot name.`, {
    hint: 'Pass a name shown by `aas-migrate --list-snapshots` (e.g. 2026-08-12T143000_pre_v2_migration).',
    data: { name: input },
  })
}

// A user-supplied snapshot name (optionally NAME.tar.gz) checked against the known
// snapshots: never a path, a ref or an option.
export async function resolveSnapshotName(store: Store, input: string): Promise<Snapshot> {
  const name = input.endsWith('.tar.gz') ? input.slice(0, -'.tar.gz'.length) : input
  if (!isValidName(name)) throw invalidName(input)
  const all = await listSnapshots(store)
  const hit = all.find((s) => s.name === name)
  if (hit) return hit
  throw new AasError('SNAPSHOT_NOT_FOUND', `No snapshot named ${name}.`, {
    hint: 'Run `aas-migrate --list-snapshots` to see the snapshots you can use.',
    data: { name, known: all.map((s) => s.name) },
  })
}

// The newest snapshot (committer time; the first listed on a tie), the parent of the next.
async function latestSnapshotCommit(store: Store): Promise<RefCommit | null> {
  let best: RefCommit | null = null
  for (const c of await store.listRefCommits(SNAPSHOT_REF_PREFIX)) if (!best || c.timestamp > best.timestamp) best = c
  return best
}

// Bytes of the blobs not in the parent's tree. The store's previous snapshot tree comes
// with its blob ids (the stat cache), so the usual case lists no tree.
async function bytesAddedSince(store: Store, parent: RefCommit | null, sizes: Map<string, number>, previous: SnapshotTreeResult['previous'] = null): Promise<number> {
  let seen: ReadonlySet<string>
  if (!parent) seen = new Set()
  else if (previous && previous.tree === parent.tree) seen = previous.blobs
  else seen = new Set((await store.listTree(parent.tree)).map((e) => e.oid))
  let total = 0
  for (const [oid, size] of sizes) if (!seen.has(oid)) total += size
  return total
}

// Point refs/aas/snapshots/<base>[-k] at the commit, taking the first free name: the
// create is a compare-and-swap, so two snapshots in one second never collide.
async function allocateRef(store: Store, base: string, commit: string): Promise<{ name: string; ref: string }> {
  for (let k = 1; k < 10000; k++) {
    const name = k === 1 ? base : `${base}-${k}`
    if (await isRegularFile(path.join(legacyDir(store), `${name}.tar.gz`))) continue
    const ref = snapshotRef(name)
    try {
      await store.updateRef(ref, commit, null)
      return { name, ref }
    } catch (err) {
      if (!isAasError(err, 'REF_MOVED')) throw err
    }
  }
  throw new AasError('SNAPSHOT_EXISTS', `Too many snapshots named ${base}.`, { hint: 'Delete old snapshot refs.', data: { name: base } })
}

function trailerBlock(t: Record<string, string | number>): string {
  return Object.entries(t)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n')
}

export interface TakeSnapshotOptions {
  target: number
  from: number | null // null: an empty vault
  runId: string
  now?: Date
  engineVersion?: string
  onProgress?: (done: number, total: number) => void
  label?: string // name suffix instead of pre_v<target>_migration, e.g. 'pre_rollback' for a safety snapshot
  // Files the caller has already read, by vault-relative path: used instead of a second
  // read when the file's stat is unchanged since (see Store.writeVaultTree).
  preRead?: ReadonlyMap<string, PreReadFile>
  // false: set no snapshot ref. A dry run's base is reachable from its pending ref only, so
  // that previews do not fill --list-snapshots.
  ref?: boolean
}

// Commit the snapshot scope of the live vault onto a new snapshot ref; its parent is
// the previous snapshot, so `git log refs/aas/snapshots/<name>` browses history.
export async function takeSnapshot(
  store: Store,
  { target, from, runId, now = new Date(), engineVersion = ENGINE_VERSION, onProgress, label, preRead, ref: setRef = true }: TakeSnapshotOptions,
): Promise<TakeSnapshotResult> {
  // Listed while the vault is scanned; needed once the tree is known.
  const parentP = latestSnapshotCommit(store)
  parentP.catch(() => {})
  const base = snapshotBaseName(now, target, label)
  const title = label === undefined ? `Snapshot before migration to v${target}` : `Snapshot (${label.replace(/_/g, ' ')})`
  let parent: RefCommit | null = null
  let bytesAdded = 0
  // Tree and commit are written together; the ref comes last, so an interruption
  // leaves at most unreferenced objects, never a snapshot ref without its commit.
  const res = await store.writeVaultCommit({
    ...(onProgress ? { onProgress } : {}),
    ...(preRead ? { preRead } : {}),
    commit: async (tree) => {
      parent = await parentP
      bytesAdded = await bytesAddedSince(store, parent, tree.blobSizes, tree.previous)
      const message = `${title}\n\n${trailerBlock({
        'Aas-Run-Id': runId,
        'Aas-From': from ?? 'empty',
        'Aas-Target': target,
        'Aas-Engine-Version': engineVersion,
        'Aas-Files': tree.files,
        'Aas-Bytes-Added': bytesAdded,
      })}\n`
      return { parents: parent ? [parent.oid] : [], message, timestamp: Math.floor(now.getTime() / 1000) }
    },
  })
  const { name, ref } = setRef ? await allocateRef(store, base, res.commit) : { name: base, ref: null }
  const parentOid = (parent as RefCommit | null)?.oid ?? null
  return { name, ref, commit: res.commit, tree: res.tree, files: res.files, bytesAdded, bytesHashed: res.bytesHashed, parent: parentOid, entries: res.entries, trees: res.trees }
}

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
