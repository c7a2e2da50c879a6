import { hostname } from 'node:os'
import { AasError, asAasError } from '../errors.js'
import { LEASE_REF } from '../git/refs.js'
import { displayRemote, fetchRefs, listRemoteRefs, pushRefs } from '../git/remote.js'
import type { Store } from '../git/store.js'
import { checkRemoteBackend } from './remote.js'

// The cross-host lease (docs/how-it-works.md, "The lease"): the vault lock keeps two
// writers of one folder apart; clones of a vault on several machines that share a remote
// are kept apart by refs/aas/lease on that remote. It is created by a push that expects
// it absent and deleted by one that expects our commit, so exactly one holder wins, and
// a holder's lease is never removed by anyone but --break-lease.

export interface LeaseHolder {
  host: string
  pid: number
  command: string
  startedAt: string // ISO 8601
  agentsRoot: string
}

export interface Lease {
  remote: string
  commit: string
  holder: LeaseHolder
}

const TRAILERS: Record<keyof LeaseHolder, string> = {
  host: 'Aas-Lease-Host',
  pid: 'Aas-Lease-Pid',
  command: 'Aas-Lease-Command',
  startedAt: 'Aas-Lease-Started',
  agentsRoot: 'Aas-Lease-Vault',
}

const oneLine = (v: string | number): string => String(v).replace(/[\r\n]+/g, ' ')

export function describeHolder(h: LeaseHolder | null): string {
  return h ? `${h.host} (pid ${h.pid}, ${h.command}, since ${h.startedAt}, vault ${h.agentsRoot})` : 'an unknown holder'
}

function holderOf(t: Record<string, string>): LeaseHolder | null {
  if (t[TRAILERS.host] === undefined) return null
  return {
    host: t[TRAILERS.host] ?? '',
    pid: Number(t[TRAILERS.pid] ?? 0),
    command: t[TRAILERS.command] ?? '',
    startedAt: t[TRAILERS.startedAt] ?? '',
    agentsRoot: t[TRAILERS.agentsRoot] ?? '',
  }
}

// The holder a lease commit names (null when the commit cannot be fetched or read).
async function readHolder(store: Store, remote: string): Promise<{ commit: string; holder: LeaseHolder | null } | null> {
  const fetched = await fetchRefs(store, remote, [LEASE_REF])
  try {
    const lease = fetched.refs.find((r) => r.ref === LEASE_REF)
    if (!lease) return null
    return { commit: lease.oid, holder: holderOf((await store.readCommit(lease.oid)).trailers) }
  } finally {
    await fetched.cleanup()
  }
}

function leaseHeld(url: string, held: { commit: string; holder: LeaseHolder | null } | null): AasError {
  const remote = displayRemote(url)
  return new AasError('LEASE_HELD', `${LEASE_REF} on ${remote} is held by ${describeHolder(held?.holder ?? null)}: another run of this vault is in progress.`, {
    hint: `Wait for it to finish and run again. If that run is gone (its machine died), remove the lease with: aas-migrate --break-lease`,
    data: { remote, ref: LEASE_REF, commit: held?.commit ?? null, holder: held?.holder ?? null },
  })
}

// Takes the lease on remote for this process, or refuses naming its holder (LEASE_HELD).
export async function acquireLease(store: Store, remote: string, command: string, now = new Date()): Promise<Lease> {
  checkRemoteBackend(store, remote)
  const holder: LeaseHolder = { host: hostname(), pid: process.pid, command, startedAt: now.toISOString(), agentsRoot: store.agentsRoot }
  const tree = await store.writeTree([])
  const trailers = (Object.keys(TRAILERS) as Array<keyof LeaseHolder>).map((k) => `${TRAILERS[k]}: ${oneLine(holder[k])}`).join('\n')
  const commit = await store.writeCommit({ tree, parents: [], message: `aas-migrate lease\n\n${trailers}\n`, timestamp: Math.floor(now.getTime() / 1000) })
  const out = await pushRefs(store, remote, [{ ref: LEASE_REF, oid: commit, expect: null }])
  if (out.ok) return { remote, commit, holder }
  if (out.error) {
    throw new AasError('REMOTE_FAILED', `Cannot take the lease ${LEASE_REF} on ${displayRemote(remote)}: ${out.error.message}`, {
      hint: `Run again when ${displayRemote(remote)} can be reached; to run without a remote, remove aas.remote with: aas-migrate --unset-remote`,
      data: { ...out.error.data, ref: LEASE_REF },
      cause: out.error,
    })
  }
  throw leaseHeld(remote, await readHolder(store, remote).catch(() => null))
}

// Gives the lease back (a delete that expects our commit). Never throws.
export async function releaseLease(store: Store, lease: Lease): Promise<AasError | null> {
  try {
    const out = await pushRefs(store, lease.remote, [{ ref: LEASE_REF, oid: null, expect: lease.commit }])
    if (out.ok) return null
    return (
      out.error ??
      new AasError('LEASE_HELD', `${LEASE_REF} on ${displayRemote(lease.remote)} is no longer ours (it was broken or replaced); it was left as it is.`, {
        data: { remote: displayRemote(lease.remote), ref: LEASE_REF },
      })
    )
  } catch (err) {
    return asAasError(err)
  }
}

export interface LeaseState {
  remote: string // as shown: an http(s) URL's password hidden
  held: boolean
  commit: string | null
  holder: LeaseHolder | null
}

// Who holds the lease on remote, if anyone. fetch false: only what ls-remote says (the
// holder only when its commit is already here), writing nothing to the store.
export async function inspectLease(store: Store, remote: string, { fetch = true }: { fetch?: boolean } = {}): Promise<LeaseState> {
  checkRemoteBackend(store, remote)
  const shown = displayRemote(remote)
  const there = (await listRemoteRefs(store, remote)).find((r) => r.ref === LEASE_REF)
  if (!there) return { remote: shown, held: false, commit: null, holder: null }
  if (!fetch) {
    const local = await store.readCommit(there.oid).catch(() => null)
    return { remote: shown, held: true, commit: there.oid, holder: local ? holderOf(local.trailers) : null }
  }
  const read = await readHolder(store, remote).catch(() => null)
  return { remote: shown, held: true, commit: there.oid, holder: read?.commit === there.oid ? read.holder : null }
}

// --break-lease: removes the lease whatever its holder (shown first), by a delete that
// expects the commit just read, so a lease taken meanwhile by a new run stays.
export async function breakLease(store: Store, remote: string): Promise<LeaseState & { broken: boolean }> {
  const state = await inspectLease(store, remote)
  if (!state.held || state.commit === null) return { ...state, broken: false }
  const out = await pushRefs(store, remote, [{ ref: LEASE_REF, oid: null, expect: state.commit }])
  if (out.error) throw out.error
  if (!out.ok) throw leaseHeld(remote, { commit: state.commit, holder: state.holder })
  return { ...state, broken: true }
}
