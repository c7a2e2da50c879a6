import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { AasError } from '../errors.js'
import { initEmbeddedStore } from '../git/locate.js'
import { checkRemoteArg, configuredRemoteUrl } from '../git/remote.js'
import type { Store } from '../git/store.js'

// Which remote the snapshots go to: `aas.remote` in the store's own config file,
// <store>/aas/config (git config syntax, so `git config -f` reads it). It lives beside the
// engine's other state, never in a user's .git/config, which the engine does not touch.

export const REMOTE_CONFIG_FILE = 'config'

export function remoteConfigPath(store: Store): string {
  return path.join(store.location.stateDir, REMOTE_CONFIG_FILE)
}

// The configured remote, or null.
export async function readConfiguredRemote(store: Store): Promise<string | null> {
  let text: string
  try {
    text = await readFile(remoteConfigPath(store), 'utf8')
  } catch {
    return null
  }
  let section = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    const head = /^\[([A-Za-z0-9.-]+)\]$/.exec(line)
    if (head) section = (head[1] as string).toLowerCase()
    const kv = /^remote\s*=\s*(.*)$/i.exec(line)
    if (section === 'aas' && kv) {
      const v = (kv[1] as string).trim().replace(/^"(.*)"$/, '$1')
      return v === '' ? null : v
    }
  }
  return null
}

// Sets aas.remote (a name, path or URL, normalised by resolveRemoteArg first).
export async function writeConfiguredRemote(store: Store, remote: string): Promise<void> {
  checkRemoteArg(remote)
  const file = remoteConfigPath(store)
  if (store.location.kind === 'embedded') await initEmbeddedStore(store.location.gitDir)
  await mkdir(path.dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, `[aas]\n\tremote = "${remote.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\n`)
  await rename(tmp, file)
}

// Removes aas.remote (every line of it in the [aas] section), keeping the rest of the
// file; written to a temp file and renamed over it, so a reader sees the old file or the
// new one. The file goes when nothing else is left in it. Returns the value removed, or
// null when none was set (the file is then left as it is).
export async function removeConfiguredRemote(store: Store): Promise<string | null> {
  const removed = await readConfiguredRemote(store)
  if (removed === null) return null
  const file = remoteConfigPath(store)
  const kept: string[] = []
  let section = ''
  for (const raw of (await readFile(file, 'utf8')).split('\n')) {
    const line = raw.trim()
    const head = /^\[([A-Za-z0-9.-]+)\]$/.exec(line)
    if (head) section = (head[1] as string).toLowerCase()
    if (section === 'aas' && /^remote\s*=/i.test(line)) continue
    kept.push(raw)
  }
  // A section left without a key is dropped with its header.
  const emptyAfter = (i: number): boolean => {
    for (const l of kept.slice(i + 1)) if (l.trim() !== '') return /^\s*\[/.test(l)
    return true
  }
  const lines = kept.filter((raw, i) => !(/^\s*\[aas\]\s*$/i.test(raw) && emptyAfter(i)))
  const text = lines.join('\n')
  if (text.trim() === '') {
    await rm(file, { force: true })
    return removed
  }
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, text.endsWith('\n') ? text : `${text}\n`)
  await rename(tmp, file)
  return removed
}

// A remote argument as git will be handed it: a configured remote of the store's
// repository or a URL as given; a path made absolute (git runs in the store, not in the
// caller's folder).
export async function resolveRemoteArg(store: Store, remote: string, cwd = process.cwd()): Promise<string> {
  checkRemoteArg(remote)
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(remote)) return remote
  if (store.backend === 'cli' && (await configuredRemoteUrl(store.location, remote)) !== null) return remote
  const colon = remote.indexOf(':')
  const slash = remote.indexOf('/')
  if (colon > 0 && (slash < 0 || colon < slash)) return remote // scp-like host:path
  return path.resolve(cwd, remote)
}

// The remote a command uses: the one given, else aas.remote, else `origin` when the
// store's repository has one; null when there is none.
export async function defaultRemote(store: Store): Promise<string | null> {
  const configured = await readConfiguredRemote(store)
  if (configured !== null) return configured
  if (store.backend === 'cli' && (await configuredRemoteUrl(store.location, 'origin')) !== null) return 'origin'
  return null
}

export function noRemote(store: Store, flag: string): AasError {
  return new AasError('REMOTE_MISSING', `No remote to use: ${flag} was given none, aas.remote is not set and the store has no remote named origin.`, {
    hint: `Pass one (e.g. ${flag} /mnt/backup/vault.git or a URL), or set it once with --remote REMOTE on any command.`,
    data: { gitDir: store.location.gitDir },
  })
}
