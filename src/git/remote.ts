import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { AasError } from '../errors.js'
import { AAS_REF_ROOT, isAasRef, TMP_REF_PREFIX } from './refs.js'
import { safeConfigArgs } from './git-env.js'
import { initEmbeddedStore } from './locate.js'
import { runGit, type GitRun } from './run-git.js'
import type { RefEntry, StoreLocation } from './store.js'

// The store's git remotes, through the git binary: listing, pushing and fetching refs
// below refs/aas/ only (never a branch, tag or HEAD). The user's own transport set-up
// (credential helpers, SSH config, proxies) applies as for any git push of theirs; hooks,
// auto-gc and FETCH_HEAD do not.

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

function remoteFailed(remote: string, what: string, run: GitRun): AasError {
  const stderr = run.stderr.trim()
  return new AasError('REMOTE_FAILED', `Cannot ${what} ${remote}: ${stderr.split('\n').slice(-3).join(' ') || `git exited with ${run.code}`}.`, {
    hint: `Check that ${remote} is reachable and that you may write to it (try \`git ls-remote ${remote}\`); the vault and its local snapshots were not changed.`,
    data: { remote, stderr },
  })
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

// Every ref of the remote below refs/aas/.
export async function listRemoteRefs(location: StoreLocation, remote: string): Promise<RefEntry[]> {
  checkRemoteArg(remote)
  const run = await git(location, ['ls-remote', '--refs', remote, `${AAS_REF_ROOT}*`])
  if (run.code !== 0) throw remoteFailed(remote, 'list the refs of', run)
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
}

// All updates or none (git push --atomic); a ref whose value on the remote is not the
// expected one is rejected, never overwritten.
export async function pushRefs(location: StoreLocation, remote: string, updates: readonly RemoteRefUpdate[]): Promise<PushOutcome> {
  checkRemoteArg(remote)
  if (updates.length === 0) return { ok: true, rejected: [], error: null }
  for (const u of updates) if (!isAasRef(u.ref)) throw new AasError('REF_INVALID', `${u.ref} is not below ${AAS_REF_ROOT}.`, { data: { ref: u.ref } })
  const args = ['push', '--atomic', '--porcelain', '--no-verify', '--no-recurse-submodules', remote]
  for (const u of updates) args.push(`--force-with-lease=${u.ref}:${u.expect ?? ''}`)
  for (const u of updates) args.push(`${u.oid ?? ''}:${u.ref}`)
  const run = await git(location, args)
  const rejected: PushOutcome['rejected'] = []
  for (const line of run.stdout.toString('utf8').split('\n')) {
    const [flag, spec, summary] = line.split('\t')
    if (flag === '!' && spec) rejected.push({ ref: spec.slice(spec.indexOf(':') + 1), reason: summary ?? '' })
  }
  if (run.code === 0) return { ok: true, rejected: [], error: null }
  return { ok: false, rejected, error: rejected.length > 0 ? null : remoteFailed(remote, 'push to', run) }
}

// Fetch the remote's refs below each prefix (e.g. refs/aas/snapshots/) into a private
// namespace, never onto the refs they are named after: the caller creates those by
// compare-and-swap, so a local snapshot is never overwritten. Returns the fetched refs
// by their remote name with the temporary ref that holds each, and a cleanup.
export async function fetchRefs(
  location: StoreLocation,
  remote: string,
  prefixes: readonly string[],
): Promise<{ refs: Array<RefEntry & { tmp: string }>; cleanup: () => Promise<void> }> {
  checkRemoteArg(remote)
  if (location.kind === 'embedded') await initEmbeddedStore(location.gitDir)
  await mkdir(location.stateDir, { recursive: true })
  const ns = `${TMP_REF_PREFIX}fetch-${randomBytes(6).toString('hex')}/`
  const specs = prefixes.map((p) => `+${p}*:${ns}${p.slice(AAS_REF_ROOT.length)}*`)
  const flags = ['--no-tags', '--no-write-fetch-head', '--no-auto-gc', '--no-prune', '--no-recurse-submodules', '--refmap=', '--quiet']
  const run = await git(location, ['fetch', ...flags, remote, ...specs])
  const cleanup = async (): Promise<void> => {
    const lines = (await git(location, ['for-each-ref', '--format=delete %(refname)', ns])).stdout.toString('utf8')
    if (lines.trim() !== '') await git(location, ['update-ref', '--stdin'], lines)
  }
  if (run.code !== 0) {
    await cleanup()
    throw remoteFailed(remote, 'fetch from', run)
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
