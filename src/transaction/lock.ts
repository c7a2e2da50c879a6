import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { link, lstat, open, readdir, readFile, unlink } from 'node:fs/promises'
import { hostname } from 'node:os'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import { VAULT_LOCK_TEMP_PREFIX } from '../vault/rules.js'

// Two kinds of lock. The vault lock (<agents_root>/.migration.lock) makes the engine
// the only writer among aas-migrate processes. Agent locks (<agent>/.lock, flock(2))
// are the ones atomic-agents agents take while they write; holding them keeps a
// running agent from editing a unit while the engine rewrites it.

export const VAULT_LOCK_FILE = '.migration.lock'
export const AGENT_LOCK_FILE = '.lock'

export interface LockHolder {
  pid: number
  host: string
  startedAt: string // ISO 8601
  command: string
  token?: string // identifies one acquisition, so release never removes another's lock
}

export type LockInspection =
  | { state: 'free'; path: string }
  | { state: 'held'; path: string; holder: LockHolder }
  | { state: 'stale'; path: string; holder?: LockHolder; reason: string; clearCommand: string }

export interface VaultLock {
  readonly path: string
  readonly holder: LockHolder
  // Removes the lock file if it is still ours; false when it was gone or replaced.
  release(): Promise<boolean>
}

export interface AcquireVaultLockOptions {
  command: string
  now?: () => Date
  // Replace a stale lock (its process is gone) instead of refusing. For recovery
  // after a crash, which leaves both a journal and a stale lock behind.
  breakStale?: boolean
}

// Quote for a POSIX shell, so the printed command works for any path.
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`
}

export function vaultLockPath(agentsRoot: string): string {
  return path.join(agentsRoot, VAULT_LOCK_FILE)
}

// Take the vault lock. The file appears atomically with its content (written to a
// temp name, then link(2), which fails if the lock exists), so a reader never sees
// a half-written lock.
export async function acquireVaultLock(
  agentsRoot: string,
  { command, now = () => new Date(), breakStale = false }: AcquireVaultLockOptions,
): Promise<VaultLock> {
  const file = vaultLockPath(agentsRoot)
  const holder: LockHolder = { pid: process.pid, host: hostname(), startedAt: now().toISOString(), command, token: randomBytes(8).toString('hex') }
  const bytes = Buffer.from(JSON.stringify(holder) + '\n')
  if (breakStale) await breakStaleLock(agentsRoot)
  const temp = path.join(agentsRoot, `${VAULT_LOCK_TEMP_PREFIX}${holder.token}`)
  try {
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644)
    try {
      await handle.writeFile(bytes)
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await link(temp, file)
    } finally {
      await unlink(temp).catch(() => undefined)
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw lockedError(await inspectVaultLock(agentsRoot))
    throw new AasError('IO_FAILED', `Cannot create the vault lock ${file}: ${describeFsError(err)}`, {
      data: { file },
      hint: 'Check that agents_root exists and is writable, then run the command again.',
      cause: err,
    })
  }
  await removeStaleLockTemps(agentsRoot)
  return {
    path: file,
    holder,
    release: async () => {
      const current = await readLockFile(file)
      if (current.kind !== 'parsed' || current.holder.token !== holder.token || current.holder.pid !== holder.pid) return false
      try {
        await unlink(file)
        return true
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
        throw new AasError('IO_FAILED', `Cannot remove the vault lock ${file}: ${describeFsError(err)}`, {
          data: { file },
          hint: `Remove it by hand: rm ${shellQuote(file)}`,
          cause: err,
        })
      }
    },
  }
}

// A process killed between writing its lock temp and linking it leaves the temp behind
// (outside every snapshot: see isVaultLockTemp). The lock's holder removes those older
// than a minute; an acquirer's own temp lives for milliseconds.
const STALE_LOCK_TEMP_MS = 60_000

async function removeStaleLockTemps(agentsRoot: string): Promise<void> {
  const names = await readdir(agentsRoot).catch(() => [] as string[])
  for (const name of names) {
    if (!name.startsWith(VAULT_LOCK_TEMP_PREFIX)) continue
    const file = path.join(agentsRoot, name)
    const st = await lstat(file).catch(() => null)
    if (st?.isFile() && Date.now() - st.mtimeMs > STALE_LOCK_TEMP_MS) await unlink(file).catch(() => undefined)
  }
}

// Who holds the vault lock, read-only (for --status and --doctor).
export async function inspectVaultLock(agentsRoot: string): Promise<LockInspection> {
  const file = vaultLockPath(agentsRoot)
  const read = await readLockFile(file)
  const clearCommand = `rm ${shellQuote(file)}`
  if (read.kind === 'absent') return { state: 'free', path: file }
  if (read.kind === 'invalid') return { state: 'stale', path: file, reason: `the lock file is unreadable (${read.problem})`, clearCommand }
  const { holder } = read
  if (holder.host === hostname() && !processAlive(holder.pid)) {
    return { state: 'stale', path: file, holder, reason: `process ${holder.pid} on ${holder.host} is gone`, clearCommand }
  }
  return { state: 'held', path: file, holder }
}

// Remove a stale lock without racing another process doing the same: a second
// link(2)-created marker serialises breakers, and the lock is re-read under it.
async function breakStaleLock(agentsRoot: string): Promise<void> {
  const file = vaultLockPath(agentsRoot)
  const first = await inspectVaultLock(agentsRoot)
  if (first.state !== 'stale') return
  const before = await readFile(file).catch(() => null)
  const marker = path.join(agentsRoot, `${VAULT_LOCK_TEMP_PREFIX}breaking`)
  try {
    const handle = await open(marker, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644)
    await handle.close()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AasError('LOCKED', `Another process is clearing the stale vault lock ${file}`, {
        data: { file, marker },
        hint: `Wait and run the command again. If no aas-migrate process is running, remove the marker: rm ${shellQuote(marker)}`,
      })
    }
    throw new AasError('IO_FAILED', `Cannot create ${marker}: ${describeFsError(err)}`, { data: { file: marker }, cause: err })
  }
  try {
    const again = await inspectVaultLock(agentsRoot)
    const now = await readFile(file).catch(() => null)
    if (again.state === 'stale' && before !== null && now !== null && before.equals(now)) await unlink(file).catch(() => undefined)
  } finally {
    await unlink(marker).catch(() => undefined)
  }
}

type LockRead = { kind: 'absent' } | { kind: 'invalid'; problem: string } | { kind: 'parsed'; holder: LockHolder }

async function readLockFile(file: string): Promise<LockRead> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' }
    return { kind: 'invalid', problem: describeFsError(err) }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { kind: 'invalid', problem: 'not JSON' }
  }
  const v = value as Partial<LockHolder> | null
  if (!v || typeof v !== 'object' || !Number.isInteger(v.pid) || (v.pid as number) <= 0 || typeof v.host !== 'string') {
    return { kind: 'invalid', problem: 'no pid and host' }
  }
  return {
    kind: 'parsed',
    holder: {
      pid: v.pid as number,
      host: v.host,
      startedAt: typeof v.startedAt === 'string' ? v.startedAt : '',
      command: typeof v.command === 'string' ? v.command : '',
      ...(typeof v.token === 'string' ? { token: v.token } : {}),
    },
  }
}

// kill(pid, 0): ESRCH means no such process; EPERM means it exists under another user.
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function lockedError(inspection: LockInspection): AasError {
  if (inspection.state === 'stale') {
    return new AasError('LOCKED', `The vault lock ${inspection.path} is stale: ${inspection.reason}`, {
      data: { stale: true, file: inspection.path, ...(inspection.holder ? { holder: inspection.holder } : {}), clearCommand: inspection.clearCommand },
      hint: `No migration is running. Check with --status, then clear the lock: ${inspection.clearCommand}`,
    })
  }
  if (inspection.state === 'held') {
    const h = inspection.holder
    return new AasError(
      'LOCKED',
      `The vault is locked by pid ${h.pid} on ${h.host} (${h.command || 'unknown command'}, since ${h.startedAt || 'unknown time'})`,
      {
        data: { holder: h, file: inspection.path },
        hint: `Wait for that aas-migrate process to finish, then run the command again. ${inspection.path} is removed when it ends.`,
      },
    )
  }
  // The lock vanished between our attempt and the inspection: the holder just finished.
  return new AasError('LOCKED', `The vault lock ${inspection.path} was busy`, {
    data: { file: inspection.path },
    hint: 'Another aas-migrate process just finished; run the command again.',
  })
}

// ---- agent locks (flock(2) via util-linux flock, since Node has no flock) ----

export interface AgentLocks {
  readonly agents: string[] // the locked agent directories, in lock order
  release(): Promise<void>
}

const LOCK_TIMEOUT_EXIT = 75

// Lock every agent directory (sorted, so two lockers never deadlock), each by a
// `flock` child that holds <agent>/.lock until its stdin closes — also when this
// process dies, so a crash never leaves an agent locked. The lock file is created
// if missing (as agents do) and never deleted or replaced.
export async function acquireAgentLocks(agentDirs: readonly string[], { timeoutMs = 10_000 }: { timeoutMs?: number } = {}): Promise<AgentLocks> {
  const dirs = [...new Set(agentDirs.map((d) => path.resolve(d)))].sort()
  const deadline = Date.now() + timeoutMs
  const held: ChildProcess[] = []
  const releaseAll = async (): Promise<void> => {
    await Promise.all(held.splice(0).map(stopHolder))
  }
  try {
    for (const dir of dirs) held.push(await lockOne(dir, Math.max(0, deadline - Date.now())))
  } catch (err) {
    await releaseAll()
    throw err
  }
  return { agents: dirs, release: releaseAll }
}

// Run fn while holding the agent locks; they are released however fn ends.
export async function withAgentLocks<T>(agentDirs: readonly string[], { timeoutMs = 10_000 }: { timeoutMs?: number }, fn: () => Promise<T>): Promise<T> {
  const locks = await acquireAgentLocks(agentDirs, { timeoutMs })
  try {
    return await fn()
  } finally {
    await locks.release()
  }
}

function lockOne(agentDir: string, timeoutMs: number): Promise<ChildProcess> {
  const file = path.join(agentDir, AGENT_LOCK_FILE)
  const seconds = (timeoutMs / 1000).toFixed(3)
  return new Promise((resolve, reject) => {
    let child: ChildProcess
    try {
      child = spawn('flock', ['-E', String(LOCK_TIMEOUT_EXIT), '-w', seconds, file, '-c', 'echo locked; exec cat >/dev/null'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      })
    } catch (err) {
      reject(flockMissing(err))
      return
    }
    let out = ''
    let errText = ''
    let settled = false
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (!settled && out.includes('locked\n')) {
        settled = true
        // The holder must not keep this process alive, nor outlive it.
        child.unref()
        for (const s of [child.stdin, child.stdout, child.stderr] as Array<{ unref?: () => void } | null>) s?.unref?.()
        resolve(child)
      }
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      errText += chunk.toString()
    })
    child.on('error', (err) => {
      if (settled) return
      settled = true
      reject((err as NodeJS.ErrnoException).code === 'ENOENT' ? flockMissing(err) : ioLockError(file, describeFsError(err), err))
    })
    child.on('close', (code) => {
      if (settled) return
      settled = true
      if (code === LOCK_TIMEOUT_EXIT) {
        void readAgentLockPid(file).then((pid) => reject(agentLockedError(agentDir, file, timeoutMs, pid)))
      } else {
        reject(ioLockError(file, errText.trim() || `flock exited with ${code}`, undefined))
      }
    })
  })
}

function stopHolder(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve()
      return
    }
    // The holder was unref'd while held; waiting for it must keep this process alive,
    // or Node exits mid-command (status 13) with nothing else pending.
    child.ref()
    for (const s of [child.stdin, child.stdout, child.stderr] as Array<{ ref?: () => void } | null>) s?.ref?.()
    child.once('close', () => resolve())
    child.stdin?.end()
  })
}

// Agents may write their pid into the lock file (plain or as JSON {pid}); report it if so.
async function readAgentLockPid(file: string): Promise<number | null> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  try {
    const value = JSON.parse(trimmed) as { pid?: unknown }
    return Number.isInteger(value?.pid) ? (value.pid as number) : null
  } catch {
    return null
  }
}

function agentLockedError(agentDir: string, file: string, timeoutMs: number, pid: number | null): AasError {
  const agent = path.basename(agentDir)
  const who = pid === null ? 'another process' : `pid ${pid}`
  return new AasError('LOCKED', `Agent ${agent} is busy: ${who} holds ${file} (waited ${timeoutMs} ms)`, {
    data: { agent, agentDir, file, holderPid: pid, timeoutMs },
    hint: `Wait for agent ${agent} to finish writing (or stop it), then run the command again.`,
  })
}

function flockMissing(err: unknown): AasError {
  return new AasError('IO_FAILED', 'Cannot lock agent folders: the flock command was not found', {
    data: { command: 'flock' },
    hint: 'Install util-linux (it provides flock), e.g. apt-get install util-linux.',
    cause: err,
  })
}

function ioLockError(file: string, detail: string, cause: unknown): AasError {
  return new AasError('IO_FAILED', `Cannot lock ${file}: ${detail}`, {
    data: { file },
    hint: 'Check that the agent folder exists and is writable, then run the command again.',
    cause,
  })
}
