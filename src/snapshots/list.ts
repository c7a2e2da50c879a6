import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { AasError } from '../errors.js'
import { SNAPSHOT_REF_PREFIX } from '../git/refs.js'
import type { CommitInfo, Store } from '../git/store.js'
import { invalidName, isRegularFile, isValidName, legacyDir, parseName } from './names.js'

// Which snapshots exist: the snapshot refs, and Python-runner tarballs in
// _migrations/snapshots/ not imported yet; and which one a user's name means.

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
