import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { AasError } from '../errors.js'
import { AAS_REF_ROOT, isAasRef, TMP_REF_PREFIX } from './refs.js'
import { safeConfigArgs } from './git-env.js'
import { initEmbeddedStore } from './locate.js'
import { runGit, type GitRun } from './run-git.js'
import type { BackendName, RefEntry, StoreLocation } from './store.js'

// The store's git remotes: listing, pushing and fetching refs below refs/aas/ only (never
// a branch, tag or HEAD). One contract for both backends: the git binary below, which
// reaches any remote git can (the user's own transport set-up, credential helpers, SSH
// config and proxies apply as for any git push of theirs; hooks, auto-gc and FETCH_HEAD
// do not), and isomorphic-git (js-remote.ts), which speaks http:// and https:// only.

// Where the refs go: a store (either backend) or its location and backend.
export interface RemoteHost {
  readonly backend: BackendName
  readonly location: StoreLocation
}

export const isHttpRemote = (remote: string): boolean => /^https?:\/\//i.test(remote)

// The isomorphic-git backend reaches http(s) remotes only; anything else needs git.
export function checkRemoteSupported(backend: BackendName, remote: string): void {
  if (backend === 'cli' || isHttpRemote(remote)) return
  const shown = displayRemote(remote)
  throw new AasError(
    'REMOTE_UNSUPPORTED',
    `${shown} is not an http:// or https:// URL: with the isomorphic-git backend (AAS_GIT=js) snapshots go only to http(s) remotes; ${shown} needs the git binary (ssh, host:path, git://, file://, a path or a remote named in the repository's config).`,
    {
      hint: `Install git and run without AAS_GIT=js (or with AAS_GIT=cli), or give the remote as an http(s) URL (https://user:token@host/vault.git).`,
      data: { remote: shown, backend },
    },
  )
}

// A remote as it may be shown (messages, --json, the audit line): an http(s) URL's
// password, if it carries one, replaced by ***.
export function displayRemote(remote: string): string {
  return remote.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/@?#:]*):([^/@?#]*)@/, (_m, scheme: string, user: string) => `${scheme}${user}:***@`)
}

// text with the password of remote's URL (as written and percent-decoded) replaced by ***.
export function hideSecret(text: string, remote: string): string {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@?#:]*:([^/@?#]*)@/.exec(remote)
  let out = text.split(remote).join(displayRemote(remote))
  const secret = m?.[1]
  if (!secret) return out
  for (const s of new Set([secret, safeDecode(secret)])) if (s.length >= 3) out = out.split(s).join('***')
  return out
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

// Variables of the user's environment that say how to reach a remote: kept, while every
// other GIT_* variable is dropped (the engine may be started from a hook).
const TRANSPORT_ENV = new Set([
  'GIT_SSH',
  'GIT_SSH_COMMAND',
  'GIT_SSH_VARIANT',
  'GIT_ASKPASS',
  'GIT_SSL_CAINFO',
  'GIT_SSL_CAPATH',
  'GIT_SSL_NO_VERIFY',
  'GIT_PROXY_COMMAND',
  'GIT_CONFIG_GLOBAL',
  'GIT_CONFIG_NOSYSTEM',
])

export function remoteEnv(gitDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.toUpperCase().startsWith('GIT_') || TRANSPORT_ENV.has(k)) env[k] = v
  env.GIT_DIR = gitDir
  env.GIT_TERMINAL_PROMPT = '0'
  env.LC_ALL = 'C'
  return env
}

// A remote as the user gave it: a configured remote's name, a path or a URL; never an option.
export function checkRemoteArg(remote: string): void {
  if (remote === '' || remote.startsWith('-') || /[\0\n]/.test(remote)) {
    throw new AasError('USAGE', `${JSON.stringify(remote)} is not a remote.`, {
      hint: 'Pass the name of a remote of the vault repository (e.g. origin), a path to a bare repository, or a URL.',
      data: { remote },
    })
  }
}

// A transport failure, named by the remote (its password hidden) and what the transport said.
export function remoteFailed(remote: string, what: string, said: string, fix = `try \`git ls-remote ${displayRemote(remote)}\``): AasError {
  const shown = displayRemote(remote)
  const detail = hideSecret(said.trim(), remote)
  return new AasError('REMOTE_FAILED', `Cannot ${what} ${shown}: ${detail.split('\n').slice(-3).join(' ')}.`, {
    hint: `Check that ${shown} is reachable and that you may write to it (${fix}); the vault and its local snapshots were not changed.`,
    data: { remote: shown, stderr: detail },
  })
}

function gitFailed(remote: string, what: string, run: GitRun): AasError {
  return remoteFailed(remote, what, run.stderr.trim() || `git exited with ${run.code}`)
}

// In the store; outside any repository while the store does not exist yet (ls-remote).
function git(location: StoreLocation, args: string[], input?: string): Promise<GitRun> {
  const inStore = existsSync(path.join(location.gitDir, 'HEAD'))
  const env = remoteEnv(location.gitDir)
  if (!inStore) delete env.GIT_DIR
  const cwd = inStore ? location.gitDir : path.parse(location.gitDir).root
  return runGit([...safeConfigArgs(), ...args], { env, cwd, allowFail: true, ...(input === undefined ? {} : { input }) })
}

// The URL a configured remote of the store's repository stands for, or null when the
// name is not one (it is then used as a path or URL itself).
export async function configuredRemoteUrl(location: StoreLocation, name: string): Promise<string | null> {
  if (!existsSync(path.join(location.gitDir, 'HEAD'))) return null
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return null
  const run = await git(location, ['config', '--get', `remote.${name}.url`])
  return run.code === 0 ? run.stdout.toString('utf8').trim() : null
}

// The isomorphic-git side, loaded only when that backend is used (as js-store.ts is).
async function jsRemote(host: RemoteHost, remote: string): Promise<typeof import('./js-remote.js') | null> {
  checkRemoteArg(remote)
  checkRemoteSupported(host.backend, remote)
  return host.backend === 'js' ? import('./js-remote.js') : null
}

// Every ref of the remote below refs/aas/.
export async function listRemoteRefs(host: RemoteHost, remote: string): Promise<RefEntry[]> {
  const js = await jsRemote(host, remote)
  if (js) return js.listRemoteRefs(remote)
  const location = host.location
  const run = await git(location, ['ls-remote', '--refs', remote, `${AAS_REF_ROOT}*`])
  if (run.code !== 0) throw gitFailed(remote, 'list the refs of', run)
  const refs: RefEntry[] = []
  for (const line of run.stdout.toString('utf8').split('\n')) {
    const [oid, ref] = line.split('\t')
    if (oid && ref && isAasRef(ref)) refs.push({ oid, ref })
  }
  return refs
}

// One ref update of a push: `expect` null means the ref must not exist on the remote yet;
// `oid` null deletes it. Both are compare-and-swap on the remote (--force-with-lease).
export interface RemoteRefUpdate {
  ref: string
  oid: string | null
  expect: string | null
}

export interface PushOutcome {
  ok: boolean
  rejected: Array<{ ref: string; reason: string }> // empty when ok
  error: AasError | null // a failure of the transport itself (unreachable, no permission)
  // The refs the remote did update: every one when ok; none after a failed push of the
  // git binary (atomic); with isomorphic-git, the ones sent before the failure.
  updated: string[]
}

// The git binary: all updates or none (git push --atomic). isomorphic-git: one
// compare-and-swap push per ref, in the order given (js-remote.ts). Either way, a ref
// whose value on the remote is not the expected one is rejected, never overwritten.
export async function pushRefs(host: RemoteHost, remote: string, updates: readonly RemoteRefUpdate[]): Promise<PushOutcome> {
  checkRemoteArg(remote)
  for (const u of updates) if (!isAasRef(u.ref)) throw new AasError('REF_INVALID', `${u.ref} is not below ${AAS_REF_ROOT}.`, { data: { ref: u.ref } })
  if (updates.length === 0) return { ok: true, rejected: [], error: null, updated: [] }
  const js = await jsRemote(host, remote)
  if (js) return js.pushRefs(host.location, remote, updates)
  const location = host.location
  const args = ['push', '--atomic', '--porcelain', '--no-verify', '--no-recurse-submodules', remote]
  for (const u of updates) args.push(`--force-with-lease=${u.ref}:${u.expect ?? ''}`)
  for (const u of updates) args.push(`${u.oid ?? ''}:${u.ref}`)
  const run = await git(location, args)
  const rejected: PushOutcome['rejected'] = []
  for (const line of run.stdout.toString('utf8').split('\n')) {
    const [flag, spec, summary] = line.split('\t')
    if (flag === '!' && spec) rejected.push({ ref: spec.slice(spec.indexOf(':') + 1), reason: summary ?? '' })
  }
  if (run.code === 0) return { ok: true, rejected: [], error: null, updated: updates.map((u) => u.ref) }
  return { ok: false, rejected, error: rejected.length > 0 ? null : gitFailed(remote, 'push to', run), updated: [] }
}

// A private namespace for one fetch: refs/aas/tmp/fetch-<random>/ (the refs keep their
// name below refs/aas/ inside it).
export const fetchNamespace = (): string => `${TMP_REF_PREFIX}fetch-${randomBytes(6).toString('hex')}/`

// Fetch the remote's refs below each prefix (e.g. refs/aas/snapshots/) into a private
// namespace, never onto the refs they are named after: the caller creates those by
// compare-and-swap, so a local snapshot is never overwritten. Returns the fetched refs
// by their remote name with the temporary ref that holds each, and a cleanup.
export interface FetchedRefs {
  refs: Array<RefEntry & { tmp: string }>
  cleanup: () => Promise<void>
}

export async function fetchRefs(host: RemoteHost, remote: string, prefixes: readonly string[]): Promise<FetchedRefs> {
  const js = await jsRemote(host, remote)
  const location = host.location
  if (location.kind === 'embedded') await initEmbeddedStore(location.gitDir)
  await mkdir(location.stateDir, { recursive: true })
  const ns = fetchNamespace()
  if (js) return js.fetchRefs(location, remote, prefixes, ns)
  const specs = prefixes.map((p) => `+${p}*:${ns}${p.slice(AAS_REF_ROOT.length)}*`)
  const flags = ['--no-tags', '--no-write-fetch-head', '--no-auto-gc', '--no-prune', '--no-recurse-submodules', '--refmap=', '--quiet']
  const run = await git(location, ['fetch', ...flags, remote, ...specs])
  const cleanup = async (): Promise<void> => {
    const lines = (await git(location, ['for-each-ref', '--format=delete %(refname)', ns])).stdout.toString('utf8')
    if (lines.trim() !== '') await git(location, ['update-ref', '--stdin'], lines)
  }
  if (run.code !== 0) {
    await cleanup()
    throw gitFailed(remote, 'fetch from', run)
  }
  const list = await git(location, ['for-each-ref', '--format=%(objectname) %(refname)', ns])
  const refs: Array<RefEntry & { tmp: string }> = []
  for (const line of list.stdout.toString('utf8').split('\n')) {
    const sp = line.indexOf(' ')
    if (sp < 0) continue
    const tmp = line.slice(sp + 1)
    refs.push({ oid: line.slice(0, sp), tmp, ref: AAS_REF_ROOT + tmp.slice(ns.length) })
  }
  return { refs, cleanup }
}
