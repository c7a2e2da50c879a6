import { AasError, isAasError } from '../errors.js'
import { checkRemoteSupported, displayRemote, fetchRefs, listRemoteRefs, pushRefs } from '../git/remote.js'
import { PORTABLE_REF_PREFIXES, SNAPSHOT_REF_PREFIX } from '../git/refs.js'
import type { RefEntry, Store } from '../git/store.js'
import { listSnapshots, type Snapshot } from './list.js'
import { parseName } from './names.js'

// Snapshots off the machine (docs/how-it-works.md, "Snapshots on a remote"): the
// snapshot and run refs pushed to and fetched from a git remote. A name that exists on
// both sides with different commits is never overwritten on either side.

export interface DivergedRef {
  ref: string
  local: string
  remote: string
}

export interface TransferResult {
  ok: boolean
  remote: string // as shown: an http(s) URL's password hidden
  transferred: string[] // refs created (on the remote for a push, here for a fetch)
  upToDate: number // refs already on both sides with the same commit
  diverged: DivergedRef[] // the same name with another commit: left alone on both sides
  error: AasError | null
}

// REMOTE_UNSUPPORTED before anything is done: the isomorphic-git backend (AAS_GIT=js)
// reaches http(s) remotes only.
export function checkRemoteBackend(store: Store, remote: string): void {
  checkRemoteSupported(store.backend, remote)
}

async function localPortableRefs(store: Store): Promise<RefEntry[]> {
  const out: RefEntry[] = []
  for (const prefix of PORTABLE_REF_PREFIXES) out.push(...(await store.listRefs(prefix)))
  return out
}

function divergedError(url: string, diverged: DivergedRef[], pushing: boolean): AasError {
  const remote = displayRemote(url)
  const names = diverged.map((d) => d.ref)
  return new AasError(
    'SNAPSHOT_DIVERGED',
    `${names.length} ref${names.length === 1 ? '' : 's'} exist${names.length === 1 ? 's' : ''} here and on ${remote} with different commits and ${names.length === 1 ? 'was' : 'were'} left alone: ${names.slice(0, 10).join(', ')}${names.length > 10 ? ', …' : ''}.`,
    {
      hint: pushing
        ? `Nothing on ${remote} is ever overwritten. Compare them (git log <ref>) and, to keep both, delete or rename the remote one with git on ${remote}.`
        : 'Local snapshots are never overwritten by a fetch. Compare them (git log <ref>) and delete the local ref (git update-ref -d <ref>) only if the remote one is the one to keep.',
      data: { remote, refs: diverged },
    },
  )
}

// Oldest snapshot first, then the runs: with isomorphic-git (one push per ref), a
// snapshot's parent is then on the remote before it, so its history is not sent twice,
// and an interrupted push leaves a remote whose snapshots have their parents.
function pushOrder(a: RefEntry, b: RefEntry): number {
  const sa = a.ref.startsWith(SNAPSHOT_REF_PREFIX)
  const sb = b.ref.startsWith(SNAPSHOT_REF_PREFIX)
  if (sa !== sb) return sa ? -1 : 1
  return a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0
}

// --push-snapshots: every snapshot and run ref the remote lacks is created there, each
// update expecting the ref to be absent: one atomic push with the git binary, one push
// per ref with isomorphic-git (those sent before a failure stay, and are reported).
export async function pushSnapshots(store: Store, remote: string): Promise<TransferResult> {
  checkRemoteBackend(store, remote)
  const shown = displayRemote(remote)
  const local = (await localPortableRefs(store)).sort(pushOrder)
  const theirs = new Map((await listRemoteRefs(store, remote)).map((r) => [r.ref, r.oid]))
  const diverged: DivergedRef[] = []
  const create: RefEntry[] = []
  let upToDate = 0
  for (const r of local) {
    const there = theirs.get(r.ref)
    if (there === undefined) create.push(r)
    else if (there === r.oid) upToDate++
    else diverged.push({ ref: r.ref, local: r.oid, remote: there })
  }
  const out = await pushRefs(
    store,
    remote,
    create.map((r) => ({ ref: r.ref, oid: r.oid, expect: null })),
  )
  const transferred = out.updated
  if (out.error) {
    // The transport failed: with the git binary nothing was pushed (atomic); with
    // isomorphic-git the refs sent before it are there, complete, and reported.
    if (transferred.length === 0) throw out.error
    return { ok: false, remote: shown, transferred, upToDate, diverged, error: out.error }
  }
  if (!out.ok) {
    // Another push created some of these meanwhile: those with our commit count as there,
    // those with another as diverged; the rest were not pushed (with the git binary, none was).
    const now = new Map((await listRemoteRefs(store, remote)).map((r) => [r.ref, r.oid]))
    const sent = new Set(transferred)
    const missing: Array<{ ref: string; reason: string }> = []
    for (const r of create) {
      const there = now.get(r.ref)
      if (sent.has(r.ref)) continue
      if (there === r.oid) upToDate++
      else if (there !== undefined) diverged.push({ ref: r.ref, local: r.oid, remote: there })
      else missing.push(out.rejected.find((x) => x.ref === r.ref) ?? { ref: r.ref, reason: 'not pushed' })
    }
    const error = diverged.length > 0 ? divergedError(remote, diverged, true) : missing.length > 0 ? rejectedError(remote, missing, transferred.length) : null
    return { ok: error === null, remote: shown, transferred, upToDate, diverged, error }
  }
  const error = diverged.length > 0 ? divergedError(remote, diverged, true) : null
  return { ok: error === null, remote: shown, transferred, upToDate, diverged, error }
}

function rejectedError(url: string, rejected: Array<{ ref: string; reason: string }>, sent: number): AasError {
  const remote = displayRemote(url)
  return new AasError(
    'REMOTE_FAILED',
    `${remote} rejected the push: ${rejected.map((r) => `${r.ref} (${r.reason})`).join(', ')}; ${sent === 0 ? 'nothing was pushed' : `the other ${sent} ref${sent === 1 ? ' was' : 's were'} pushed`}.`,
    {
      hint: 'Run the command again; if it is refused again, check the remote with git ls-remote.',
      data: { remote, rejected },
    },
  )
}

// --fetch-snapshots: the remote's snapshot and run refs are fetched into a private
// namespace, then each one this store lacks is created by compare-and-swap.
export async function fetchSnapshots(store: Store, remote: string): Promise<TransferResult> {
  checkRemoteBackend(store, remote)
  const fetched = await fetchRefs(store, remote, PORTABLE_REF_PREFIXES)
  try {
    const mine = new Map((await localPortableRefs(store)).map((r) => [r.ref, r.oid]))
    const diverged: DivergedRef[] = []
    const transferred: string[] = []
    let upToDate = 0
    for (const r of fetched.refs) {
      const here = mine.get(r.ref)
      if (here === r.oid) upToDate++
      else if (here !== undefined) diverged.push({ ref: r.ref, local: here, remote: r.oid })
      else {
        try {
          await store.updateRef(r.ref, r.oid, null)
          transferred.push(r.ref)
        } catch (err) {
          if (!isAasError(err, 'REF_MOVED')) throw err
          const now = await store.resolveRef(r.ref)
          if (now === r.oid) upToDate++
          else diverged.push({ ref: r.ref, local: now ?? '', remote: r.oid })
        }
      }
    }
    const error = diverged.length > 0 ? divergedError(remote, diverged, false) : null
    return { ok: error === null, remote: displayRemote(remote), transferred, upToDate, diverged, error }
  } finally {
    await fetched.cleanup()
  }
}

export type SnapshotLocation = 'local' | 'remote' | 'both' | 'diverged'

export interface LocatedSnapshot extends Snapshot {
  location: SnapshotLocation
  remoteCommit: string | null // the commit the remote's ref points at, when it has one
}

export interface SnapshotListing {
  snapshots: LocatedSnapshot[]
  // The remote compared with, and why it could not be listed (the list is then local only).
  remote: { name: string; reachable: boolean; error: AasError | null } | null
}

// A snapshot only the remote has: what its name says (its commit is not here to read).
function remoteOnly(name: string, ref: string, oid: string): LocatedSnapshot {
  const parsed = parseName(name)
  const timestamp = parsed?.timestamp ?? 0
  return {
    name,
    source: 'ref',
    ref,
    commit: oid,
    tree: null,
    time: new Date(timestamp * 1000).toISOString(),
    timestamp,
    target: parsed?.target ?? null,
    from: null,
    runId: null,
    files: null,
    bytesAdded: 0,
    file: null,
    importedFrom: null,
    location: 'remote',
    remoteCommit: oid,
  }
}

// --list-snapshots: every snapshot, newest first, with where it is: here, on the remote,
// on both (the same commit), or diverged (the same name, another commit there).
export async function locateSnapshots(store: Store, remote: string | null): Promise<SnapshotListing> {
  const local = await listSnapshots(store)
  const located: LocatedSnapshot[] = local.map((s) => ({ ...s, location: 'local', remoteCommit: null }))
  if (remote === null) return { snapshots: located, remote: null }
  let theirs: RefEntry[]
  try {
    checkRemoteBackend(store, remote)
    theirs = (await listRemoteRefs(store, remote)).filter((r) => r.ref.startsWith(SNAPSHOT_REF_PREFIX))
  } catch (err) {
    if (!isAasError(err)) throw err
    return { snapshots: located, remote: { name: displayRemote(remote), reachable: false, error: err } }
  }
  const byName = new Map(located.map((s) => [s.name, s]))
  for (const r of theirs) {
    const name = r.ref.slice(SNAPSHOT_REF_PREFIX.length)
    const here = byName.get(name)
    if (!here) located.push(remoteOnly(name, r.ref, r.oid))
    else {
      here.remoteCommit = r.oid
      here.location = here.source === 'ref' && here.commit === r.oid ? 'both' : 'diverged'
    }
  }
  located.sort((a, b) => b.timestamp - a.timestamp || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0))
  return { snapshots: located, remote: { name: displayRemote(remote), reachable: true, error: null } }
}
