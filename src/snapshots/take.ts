import path from 'node:path'
import { AasError, isAasError } from '../errors.js'
import { snapshotRef } from '../git/refs.js'
import type { PreReadFile, RefCommit, Store, TreeEntry } from '../git/store.js'
import { ENGINE_VERSION } from '../version.js'
import { bytesAddedSince, latestSnapshotCommit, trailerBlock } from './chain.js'
import { isRegularFile, legacyDir, snapshotBaseName } from './names.js'

// Taking a snapshot: the live vault's snapshot scope as a commit on a new snapshot ref.

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
  // Called with the commit once it is written and before its ref is set: a throw leaves
  // no ref (only unreferenced objects), e.g. when the vault is not the state expected.
  beforeRef?: (snap: { commit: string; tree: string; entries: readonly TreeEntry[] }) => Promise<void>
}

// Commit the snapshot scope of the live vault onto a new snapshot ref; its parent is
// the previous snapshot, so `git log refs/aas/snapshots/<name>` browses history.
export async function takeSnapshot(
  store: Store,
  { target, from, runId, now = new Date(), engineVersion = ENGINE_VERSION, onProgress, label, preRead, ref: setRef = true, beforeRef }: TakeSnapshotOptions,
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
  if (beforeRef) await beforeRef({ commit: res.commit, tree: res.tree, entries: res.entries })
  const { name, ref } = setRef ? await allocateRef(store, base, res.commit) : { name: base, ref: null }
  const parentOid = (parent as RefCommit | null)?.oid ?? null
  return {
    name,
    ref,
    commit: res.commit,
    tree: res.tree,
    files: res.files,
    bytesAdded,
    bytesHashed: res.bytesHashed,
    parent: parentOid,
    entries: res.entries,
    trees: res.trees,
  }
}
