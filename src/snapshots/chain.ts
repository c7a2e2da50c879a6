import type { RefCommit, SnapshotTreeResult, Store } from '../git/store.js'
import { SNAPSHOT_REF_PREFIX } from '../git/refs.js'

// The chain of snapshots: each snapshot commit's parent is the newest snapshot before
// it, and its message ends with trailers (Aas-Run-Id, Aas-Target, Aas-Bytes-Added, …).

// The newest snapshot (committer time; the first listed on a tie), the parent of the next.
export async function latestSnapshotCommit(store: Store): Promise<RefCommit | null> {
  let best: RefCommit | null = null
  for (const c of await store.listRefCommits(SNAPSHOT_REF_PREFIX)) if (!best || c.timestamp > best.timestamp) best = c
  return best
}

// Bytes of the blobs not in the parent's tree. The store's previous snapshot tree comes
// with its blob ids (the stat cache), so the usual case lists no tree.
export async function bytesAddedSince(
  store: Store,
  parent: RefCommit | null,
  sizes: Map<string, number>,
  previous: SnapshotTreeResult['previous'] = null,
): Promise<number> {
  let seen: ReadonlySet<string>
  if (!parent) seen = new Set()
  else if (previous && previous.tree === parent.tree) seen = previous.blobs
  else seen = new Set((await store.listTree(parent.tree)).map((e) => e.oid))
  let total = 0
  for (const [oid, size] of sizes) if (!seen.has(oid)) total += size
  return total
}

// The trailers at the end of a snapshot commit message, in the given order.
export function trailerBlock(t: Record<string, string | number>): string {
  return Object.entries(t)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n')
}
