import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import git, { type GitHttpRequest, type GitHttpResponse, type HttpClient, type PromiseFsClient } from 'isomorphic-git'
import http from 'isomorphic-git/http/node'
import type { AasError } from '../errors.js'
import { AAS_REF_ROOT, isAasRef, SNAPSHOT_REF_PREFIX } from './refs.js'
import { displayRemote, type FetchedRefs, type PushOutcome, type RemoteRefUpdate, remoteFailed } from './remote.js'
import type { RefEntry, StoreLocation } from './store.js'

// The store's remotes through isomorphic-git, over http:// and https:// only (remote.ts
// refuses any other remote for this backend). The contract is remote.ts's, with one
// difference: isomorphic-git pushes one ref per request, so there is no atomic push of
// several refs. Each ref is its own compare-and-swap push; an interrupted push leaves
// the refs already sent (each complete: its objects go in the same request) and a
// re-run sends the rest. Credentials come from the URL (https://user:token@host/…);
// nothing is prompted for, and nothing is written to the repository's config.

const ZERO = '0'.repeat(40)
const OID = /^[0-9a-f]{40}$/

// The fs given to isomorphic-git for one remote operation: node's, except that
// - `<gitdir>/config` reads as the real file plus `config` (an in-memory remote section:
//   fetch writes the refs it fetched through `remote.<name>.fetch`, and the user's
//   .git/config is never written for it);
// - files below `discard` are neither written nor deleted (push records the ref it
//   pushed as refs/remotes/<remote>/<ref>, a remote-tracking ref the engine never writes),
//   and `<discard>HEAD` reads as `head()` says (see pushRefs), or as absent.
function remoteFs(
  gitDir: string,
  { config = '', discard = null, head = () => null }: { config?: string; discard?: string | null; head?: () => string | null },
): PromiseFsClient {
  const p = fs.promises
  const configFile = path.join(gitDir, 'config')
  const dropped = (file: string): boolean => discard !== null && path.resolve(file).startsWith(discard)
  const absent = (file: string) => Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' })
  // fetch rewrites the repository's shallow file (the same list, as no depth is asked);
  // the user's file stays as it is.
  const frozen = (file: string): boolean => path.resolve(file) === path.join(gitDir, 'shallow')
  const utf8 = (options: unknown): boolean =>
    options === 'utf8' || (typeof options === 'object' && options !== null && (options as { encoding?: string }).encoding === 'utf8')
  const promises = {
    readFile: async (file?: string, options?: unknown) => {
      if (file === undefined) return undefined // isomorphic-git's probe for a promise fs
      if (config !== '' && path.resolve(file) === configFile) {
        const real = await p.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return ''
          throw err
        })
        const text = `${real}\n${config}`
        return utf8(options) ? text : Buffer.from(text)
      }
      if (dropped(file)) {
        const text = path.resolve(file) === `${discard}HEAD` ? head() : null
        if (text === null) throw absent(file)
        return utf8(options) ? text : Buffer.from(text)
      }
      return p.readFile(file, options as never)
    },
    writeFile: (file: string, data: never, options?: never) => (dropped(file) || frozen(file) ? Promise.resolve() : p.writeFile(file, data, options)),
    unlink: (file: string) => (dropped(file) || frozen(file) ? Promise.resolve() : p.unlink(file)),
    mkdir: (dir: string, options?: never) => (dropped(dir) ? Promise.resolve(undefined) : p.mkdir(dir, options)),
    rmdir: p.rmdir,
    stat: p.stat,
    lstat: p.lstat,
    readdir: p.readdir,
    readlink: p.readlink,
    symlink: p.symlink,
  }
  return Object.defineProperty({}, 'promises', { value: promises, enumerable: true }) as PromiseFsClient
}

// isomorphic-git's fetch ends by looking up the remote's HEAD, and throws when there is
// none: a bare repository that holds only refs/aas/* has an unborn HEAD, which the
// server does not advertise. It throws after writing the fetched ref and before writing
// the pack, so the fetch would fail half-done. The client it is given therefore reads
// the ref advertisement of upload-pack and, when HEAD is missing from it, adds HEAD as
// the first ref's commit (a name only: what is fetched is the one ref asked for).
const fetchHttp: HttpClient = {
  async request(req: GitHttpRequest): Promise<GitHttpResponse> {
    const res = await http.request(req)
    if ((req.method ?? 'GET') !== 'GET' || !/\/info\/refs\?service=git-upload-pack$/.test(req.url) || res.statusCode !== 200) return res
    const chunks: Buffer[] = []
    for await (const c of res.body ?? []) chunks.push(Buffer.from(c))
    const body = withHead(Buffer.concat(chunks))
    return {
      ...res,
      body: (async function* () {
        yield new Uint8Array(body)
      })(),
    }
  },
}

// A protocol v1 ref advertisement with a HEAD line (see fetchHttp); unchanged when it
// has one, or no ref at all, or is not one.
export function withHead(adv: Buffer): Buffer {
  const lines: Array<{ start: number; end: number; text: string }> = []
  for (let at = 0; at + 4 <= adv.length; ) {
    const len = Number.parseInt(adv.subarray(at, at + 4).toString('latin1'), 16)
    if (Number.isNaN(len)) return adv
    const end = len === 0 ? at + 4 : at + len
    if (end > adv.length) return adv
    lines.push({ start: at, end, text: len === 0 ? '' : adv.subarray(at + 4, end).toString('latin1') })
    at = end
  }
  const refs = lines.filter((l) => /^[0-9a-f]{40} [^\0\n]+/.test(l.text))
  const first = refs[0]
  if (!first || refs.some((l) => / HEAD(\0|\n|$)/.test(l.text.slice(40, 46 + 1)))) return adv
  const oid = first.text.slice(0, 40)
  if (oid === ZERO) return adv // an empty repository: nothing to fetch
  const head = Buffer.from(`${oid} HEAD\n`, 'latin1')
  const pkt = Buffer.concat([Buffer.from((head.length + 4).toString(16).padStart(4, '0'), 'latin1'), head])
  return Buffer.concat([adv.subarray(0, first.end), pkt, adv.subarray(first.end)])
}

const errorCode = (err: unknown): string => String((err as { code?: unknown } | null)?.code ?? '')

// What isomorphic-git's failure says, as REMOTE_FAILED naming the remote and the fix.
function jsFailed(remote: string, what: string, err: unknown): AasError {
  const e = err as { message?: string; data?: { statusCode?: number; statusMessage?: string } }
  const status = errorCode(err) === 'HttpError' ? e.data?.statusCode : undefined
  const probe = `open ${displayRemote(remote).replace(/\/$/, '')}/info/refs?service=git-upload-pack`
  return status === 401 || status === 403
    ? remoteFailed(
        remote,
        what,
        `HTTP ${status} ${e.data?.statusMessage ?? ''}: the server wants credentials, or refused the ones given`.replace(/ {2}/, ' '),
        'give them in the URL: https://USER:TOKEN@host/vault.git',
      )
    : remoteFailed(remote, what, e.message ?? String(err), probe)
}

// Every ref of the remote below refs/aas/ (protocol v1; filtered here).
export async function listRemoteRefs(remote: string): Promise<RefEntry[]> {
  let refs: Array<{ ref: string; oid: string }>
  try {
    refs = await git.listServerRefs({ http, url: remote, protocolVersion: 1 })
  } catch (err) {
    throw jsFailed(remote, 'list the refs of', err)
  }
  return refs.filter((r) => isAasRef(r.ref) && OID.test(r.oid)).map((r) => ({ ref: r.ref, oid: r.oid }))
}

// One compare-and-swap push per update, in order. isomorphic-git sends as the old value
// the one its own discovery of the remote advertised, and git's receive-pack refuses the
// update when the ref has moved since; onPrePush cancels it before anything is sent when
// that advertised value is not the expected one. So each update is exactly a CAS on
// `expect`, and force (isomorphic-git's fast-forward check) is off only because of that.
// The local side is the commit itself: isomorphic-git takes a full object id where it
// takes a ref (no temporary local ref is needed). A rejected update does not stop the
// others; a failure of the transport does (the refs it had sent stay in `updated`).
export async function pushRefs(location: StoreLocation, remote: string, updates: readonly RemoteRefUpdate[]): Promise<PushOutcome> {
  const name = `aas-push-${randomBytes(6).toString('hex')}`
  let base: string | null = null
  const client = remoteFs(location.gitDir, {
    discard: path.join(location.gitDir, 'refs', 'remotes', name) + path.sep,
    head: () => (base === null ? null : `ref: refs/remotes/${name}/${base}\n`),
  })
  const rejected: PushOutcome['rejected'] = []
  const updated: string[] = []
  // The remote's refs by commit, kept up to date as refs are pushed (see remoteBase).
  let theirs: Map<string, string>
  try {
    theirs = new Map((await listRemoteRefs(remote)).map((r) => [r.oid, r.ref]))
  } catch (err) {
    return { ok: false, rejected, error: err as AasError, updated }
  }
  for (const u of updates) {
    const expect = u.expect ?? ZERO
    let stale: string | null = null
    base = u.oid === null ? null : await remoteBase(client, location.gitDir, u.oid, theirs)
    try {
      await git.push({
        fs: client,
        http,
        gitdir: location.gitDir,
        url: remote,
        remote: name,
        ref: u.oid ?? expect,
        remoteRef: u.ref,
        delete: u.oid === null,
        force: true,
        onPrePush: ({ remoteRef }) => {
          if (remoteRef.oid === expect) return true
          stale = remoteRef.oid
          return false
        },
      })
      updated.push(u.ref)
      if (u.oid !== null) theirs.set(u.oid, u.ref)
    } catch (err) {
      const code = errorCode(err)
      if (code === 'UserCanceledError' && stale !== null) {
        const there = stale === ZERO ? 'absent' : `at ${stale}`
        rejected.push({ ref: u.ref, reason: `stale info: it is ${there} there, expected ${u.expect === null ? 'absent' : u.expect}` })
      } else if (code === 'GitPushError') {
        const refs = (err as { data?: { result?: { refs?: Record<string, { error?: string }> } } }).data?.result?.refs ?? {}
        rejected.push({ ref: u.ref, reason: refs[u.ref]?.error ?? (err as Error).message })
      } else {
        return { ok: false, rejected, error: jsFailed(remote, 'push to', err), updated }
      }
    }
  }
  return { ok: rejected.length === 0, rejected, error: null, updated }
}

// isomorphic-git sends, for a new ref, every object of the commit's tree, unless the
// remote's HEAD (as refs/remotes/<remote>/HEAD names it here) is a ref of the remote
// whose objects this store has: those are left out of the pack. pushRefs makes that
// HEAD the remote's ref of the pushed commit's parent (a snapshot's previous snapshot,
// a run's snapshot), so a push sends what changed since, as git would.
async function remoteBase(client: PromiseFsClient, gitdir: string, oid: string, theirs: ReadonlyMap<string, string>): Promise<string | null> {
  try {
    const { commit } = await git.readCommit({ fs: client, gitdir, oid })
    for (const parent of commit.parent) {
      const ref = theirs.get(parent)
      if (ref !== undefined) return ref
    }
  } catch {
    // not a commit of this store: nothing is left out
  }
  return null
}

async function hasObject(client: PromiseFsClient, gitdir: string, oid: string): Promise<boolean> {
  try {
    await git.readObject({ fs: client, gitdir, oid, format: 'deflated' })
    return true
  } catch (err) {
    if (errorCode(err) === 'NotFoundError') return false
    throw err
  }
}

// The newest snapshot here, told to the remote as an object we have: a fetched snapshot
// is most often a descendant of it, so its objects are not sent again.
async function newestLocalSnapshot(client: PromiseFsClient, gitdir: string): Promise<string | null> {
  const names = await git.listRefs({ fs: client, gitdir, filepath: SNAPSHOT_REF_PREFIX.slice(0, -1) }).catch(() => [] as string[])
  const newest = names.sort().pop()
  return newest === undefined ? null : SNAPSHOT_REF_PREFIX + newest
}

// isomorphic-git fetches one ref per request. The newest snapshots first: each snapshot's
// parent is the one before it, so once the newest is here the older ones of its chain
// are too, and their refs are created without a request; then the runs and the rest.
function fetchOrder(a: RefEntry, b: RefEntry): number {
  const sa = a.ref.startsWith(SNAPSHOT_REF_PREFIX)
  const sb = b.ref.startsWith(SNAPSHOT_REF_PREFIX)
  if (sa !== sb) return sa ? -1 : 1
  return sa ? (a.ref < b.ref ? 1 : a.ref > b.ref ? -1 : 0) : a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0
}

// The remote's refs below each prefix into the private namespace ns, as remote.ts's
// fetchRefs. A ref whose commit is already here is created without a request (a commit
// in the store has all its objects); the others are fetched one by one, each telling the
// remote the last commit fetched (or the newest local snapshot) as one it need not send.
export async function fetchRefs(location: StoreLocation, remote: string, prefixes: readonly string[], ns: string): Promise<FetchedRefs> {
  const gitdir = location.gitDir
  const name = `aas-fetch-${randomBytes(6).toString('hex')}`
  const client = remoteFs(gitdir, { config: `[remote "${name}"]\n\tfetch = +${AAS_REF_ROOT}*:${ns}*\n` })
  const refFile = (ref: string): string => path.join(gitdir, ...ref.split('/'))
  const cleanup = (): Promise<void> => rm(refFile(ns.slice(0, -1)), { recursive: true, force: true })
  try {
    const wanted = (await listRemoteRefs(remote)).filter((r) => prefixes.some((p) => r.ref.startsWith(p))).sort(fetchOrder)
    const refs: FetchedRefs['refs'] = []
    let have = await newestLocalSnapshot(client, gitdir)
    for (const r of wanted) {
      const tmp = ns + r.ref.slice(AAS_REF_ROOT.length)
      if (await hasObject(client, gitdir, r.oid)) {
        await mkdir(path.dirname(refFile(tmp)), { recursive: true })
        await writeFile(refFile(tmp), `${r.oid}\n`)
      } else {
        try {
          await git.fetch({
            fs: client,
            http: fetchHttp,
            gitdir,
            url: remote,
            remote: name,
            ref: have ?? r.ref,
            remoteRef: r.ref,
            singleBranch: true,
            tags: false,
          })
        } catch (err) {
          if (errorCode(err) === 'NotFoundError' && (err as { data?: { what?: string } }).data?.what === r.ref) continue // deleted there meanwhile
          throw jsFailed(remote, 'fetch from', err)
        }
      }
      const oid = (await readFile(refFile(tmp), 'utf8').catch(() => '')).trim()
      if (!OID.test(oid)) continue
      refs.push({ ref: r.ref, oid, tmp })
      have = tmp
    }
    return { refs, cleanup }
  } catch (err) {
    await cleanup()
    throw err
  }
}
