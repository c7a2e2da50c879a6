import { createHash, randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import {
  appendFileSync,
  chmodSync,
  closeSync,
  constants,
  existsSync,
  readFileSync,
  readSync,
  fchmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Dirent,
} from 'node:fs'
import { type FileHandle, open, readdir, rename, symlink, unlink } from 'node:fs/promises'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import type { FileMode } from '../vault/walk.js'

// Crash-safe writes into the live vault. Every write goes to a temp file in the
// same directory (a recognisable `.<name>.aas-tmp-<runid>`) and is renamed over the
// target, so a reader or a crash sees either the old or the new bytes, never a mix.
// No write ever goes through a symlinked directory: a vault-relative path cannot
// be turned into a write outside the vault by a link planted in it. The live write
// phase uses claimFileSync / placeNewSync / restoreClaimSync instead of a plain rename, so that a
// writer taking no lock is never overwritten (protocol: top of transaction.ts).

export interface WriteOptions {
  // The directory the path must stay inside; components below it must be real
  // directories (it may itself be a symlink). Default: every ancestor is checked.
  within?: string
  // Names the temp file, so leftovers can be tied to a run. Default: a per-process id.
  runId?: string
}

export interface WriteFileOptions extends WriteOptions {
  mode?: number | Exclude<FileMode, '120000'> // 0o644 / 0o755 or a git mode
  fsync?: boolean // fsync the temp file before the rename (default true)
  fsyncParent?: boolean // fsync the directory after the rename (default false: batch with fsyncDirs)
}

export interface WriteResult {
  path: string
  createdDirs: string[] // directories created for this write, outermost first (their parents need a fsync too)
}

export interface RemoveResult {
  removed: boolean // false when nothing was there
  prunedDirs: string[] // now-empty directories removed, innermost first
}

const TEMP_MARK = '.aas-tmp-'
const TEMP_NAME = /^\..+\.aas-tmp-[A-Za-z0-9_.-]+$/
const PROCESS_RUN_ID = randomBytes(6).toString('hex')

// The temp name for a target; long names are replaced by a digest so the temp
// name stays under the 255-byte limit of a file name.
export function tempNameFor(fileName: string, runId: string = PROCESS_RUN_ID): string {
  const id = runId.replace(/[^A-Za-z0-9_.-]/g, '_') || PROCESS_RUN_ID
  const direct = `.${fileName}${TEMP_MARK}${id}`
  if (Buffer.byteLength(direct) <= 255) return direct
  const digest = createHash('sha1').update(fileName).digest('hex').slice(0, 16)
  return `.${digest}${TEMP_MARK}${id.slice(0, 200)}`
}

export function isTempFileName(name: string): boolean {
  return TEMP_NAME.test(name)
}

export function modeBits(mode: number | Exclude<FileMode, '120000'>): number {
  if (mode === '100755') return 0o755
  if (mode === '100644') return 0o644
  return mode & 0o7777
}

// Write `content` to absPath atomically (temp + fsync + chmod + rename), creating
// missing parent directories, keeping the requested mode regardless of umask.
export async function writeFileAtomic(
  absPath: string,
  content: Buffer,
  { mode = 0o644, within, runId, fsync = true, fsyncParent = false }: WriteFileOptions = {},
): Promise<WriteResult> {
  const target = path.resolve(absPath)
  const createdDirs = await prepareParents(target, within, true)
  const temp = path.join(path.dirname(target), tempNameFor(path.basename(target), runId))
  const handle = await openTemp(temp)
  try {
    try {
      await handle.writeFile(content)
      await handle.chmod(modeBits(mode))
      if (fsync) await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, target)
  } catch (err) {
    await unlink(temp).catch(() => undefined)
    throw ioError('write', target, err)
  }
  if (fsyncParent) await fsyncDir(path.dirname(target))
  return { path: target, createdDirs }
}

// Replace whatever is at absPath with a symlink to `target` (bytes as git stores them),
// via a temp link and a rename; the link target is never resolved.
export async function replaceWithSymlink(
  absPath: string,
  target: Buffer | string,
  { within, runId, fsyncParent = false }: WriteOptions & { fsyncParent?: boolean } = {},
): Promise<WriteResult> {
  const linkPath = path.resolve(absPath)
  const createdDirs = await prepareParents(linkPath, within, true)
  const temp = path.join(path.dirname(linkPath), tempNameFor(path.basename(linkPath), runId))
  const targetBytes = typeof target === 'string' ? Buffer.from(target) : target
  try {
    try {
      await symlink(targetBytes, temp)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      await unlink(temp)
      await symlink(targetBytes, temp)
    }
    await rename(temp, linkPath)
  } catch (err) {
    await unlink(temp).catch(() => undefined)
    throw ioError('create symlink', linkPath, err)
  }
  if (fsyncParent) await fsyncDir(path.dirname(linkPath))
  return { path: linkPath, createdDirs }
}

// The name a live file is renamed to while the engine checks and replaces it (a
// temp-file name, so scans treat a leftover as engine debris, never as vault content).
export function claimNameFor(fileName: string, runId: string): string {
  return tempNameFor(fileName, `claim-${runId}`)
}

// The name a checked claim is renamed to while its inode is rewritten with the new
// bytes (claim-write.ts): unlike a claim, its bytes may be the old state, the new
// state or a mix of both, and recovery treats them so (resolveClaims, transaction.ts).
export function rewriteNameFor(fileName: string, runId: string): string {
  return tempNameFor(fileName, `rewrite-${runId}`)
}

// Rename the live file aside to its claim name (atomic): from here on, a writer that
// opens the path creates a new file instead of editing the claimed one. Null when
// nothing was there. Like all write-phase calls it is synchronous: for thousands of
// small files in a row, a thread-pool round trip per call costs more than the call. `verified`
// remembers directories already checked by this write phase (see prepareParentsSync).
export function claimFileSync(
  absPath: string,
  { within, runId, verified }: Required<Pick<WriteOptions, 'within' | 'runId'>> & { verified?: VerifiedDirs },
): string | null {
  const target = path.resolve(absPath)
  prepareParentsSync(target, within, false, verified)
  const claim = path.join(path.dirname(target), claimNameFor(path.basename(target), runId))
  try {
    renameSync(target, claim)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw ioError('claim', target, err)
  }
  return claim
}

// Put a claimed file back at absPath without dropping anything a writer wrote. A
// writer that takes no lock and appends (`>>`, O_APPEND|O_CREAT) while the file is
// claimed re-creates the path with only its new bytes; those are newer than the
// claim's, so they are taken aside and appended to the claim, and the claim goes back:
// the path ends with the file's bytes followed by the writer's. `ours` names the bytes
// the engine itself had placed at the path (its new state): dropped from the front of
// what is found there, never merged. Repeats while writers keep re-creating the path.
// A writer may still hold a taken-aside file open (opened just before it was taken):
// each is watched until it has stayed unchanged for QUIET_MS, and what it gains is
// appended at the path. Remaining window: a writer that holds such a file open longer.
export function restoreClaimSync(claim: string, absPath: string, { ours = null }: { ours?: OwnBytes | null } = {}): 'restored' | 'merged' {
  const taken: Array<{ file: string; consumed: number }> = []
  for (let attempt = 1; attempt <= 1000; attempt++) {
    try {
      linkSync(claim, absPath)
      unlinkSync(claim)
      if (taken.length === 0) return 'restored'
      drainTaken(taken, absPath)
      return 'merged'
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('restore', absPath, err)
    }
    const aside = `${claim}.${attempt}`
    try {
      renameSync(absPath, aside)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw ioError('restore', absPath, err)
    }
    let bytes: Buffer
    try {
      if (!lstatSync(aside).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EINVAL' })
      bytes = readFileSync(aside)
    } catch (err) {
      renameSync(aside, absPath)
      throw new AasError(
        'IO_FAILED',
        `Cannot restore ${absPath}: something other than a file was created there while it was being replaced (${describeFsError(err)}); the file's bytes are kept at ${claim}.`,
        {
          data: { file: absPath, claim },
          hint: `Move ${absPath} out of the way, rename ${claim} back to it, then run \`aas-migrate --status\`.`,
          cause: err,
        },
      )
    }
    taken.push({ file: aside, consumed: bytes.length })
    if (ours !== null && startsWithOurs(bytes, ours)) bytes = bytes.subarray(ours.length)
    ours = null
    appendFileSync(claim, bytes)
  }
  throw new AasError('IO_FAILED', `Cannot restore ${absPath}: a writer re-created it 1000 times in a row; the file's bytes are kept at ${claim}.`, {
    data: { file: absPath, claim },
    hint: `Stop the writer, append ${absPath} to ${claim}, rename ${claim} to ${absPath}, then run \`aas-migrate --status\`.`,
  })
}

const QUIET_MS = 25
const SLEEPER = new Int32Array(new SharedArrayBuffer(4))

// Append to absPath whatever writers still add to the taken-aside files, until none has
// changed for QUIET_MS; then the files go.
function drainTaken(taken: Array<{ file: string; consumed: number }>, absPath: string): void {
  let quietSince = Date.now()
  while (Date.now() - quietSince < QUIET_MS) {
    for (const t of taken) {
      const size = lstatSync(t.file).size
      if (size <= t.consumed) continue
      const fd = openSync(t.file, constants.O_RDONLY)
      try {
        const extra = Buffer.allocUnsafe(size - t.consumed)
        const n = readSync(fd, extra, 0, extra.length, t.consumed)
        appendFileSync(absPath, extra.subarray(0, n))
        t.consumed += n
      } finally {
        closeSync(fd)
      }
      quietSince = Date.now()
    }
    Atomics.wait(SLEEPER, 0, 0, 2)
  }
  for (const t of taken) unlinkQuiet(t.file)
}

// The engine's own bytes at a path: in memory, or (a big blob) by id and length.
export type OwnBytes = Buffer | { oid: string; length: number }

function startsWithOurs(bytes: Buffer, ours: OwnBytes): boolean {
  if (bytes.length < ours.length) return false
  if (Buffer.isBuffer(ours)) return bytes.subarray(0, ours.length).equals(ours)
  return createHash('sha1').update(`blob ${ours.length}\0`).update(bytes.subarray(0, ours.length)).digest('hex') === ours.oid
}

// `perm`: the permission bits to give a file instead of its git mode's 0o644 / 0o755
// (the bits of the file it replaces: see claimAndPlace in transaction.ts).
export type PlacedContent =
  | { kind: 'file'; content: Buffer; mode: Exclude<FileMode, '120000'>; perm?: number | undefined }
  | { kind: 'symlink'; target: Buffer }
  | { kind: 'prepared'; temp: string; perm?: number | undefined } // a temp file from prepareTempSync, already filled (big blobs)

// The parents of absPath made ready (checked, created) and the path of its temp file,
// free for a caller that fills it itself (a big blob streamed from the store) and then
// hands it to placeNewSync as { kind: 'prepared' } or renames it over absPath.
export function prepareTempSync(
  absPath: string,
  { within, runId, verified }: Required<Pick<WriteOptions, 'within' | 'runId'>> & { verified?: VerifiedDirs },
): { temp: string; createdDirs: string[] } {
  const target = path.resolve(absPath)
  const createdDirs = prepareParentsSync(target, within, true, verified)
  const temp = path.join(path.dirname(target), tempNameFor(path.basename(target), runId))
  unlinkQuiet(temp)
  return { temp, createdDirs }
}

// Create absPath with the given content only if nothing is there: temp file, then
// link(2), which fails with EEXIST instead of replacing a file a writer just created.
export function placeNewSync(
  absPath: string,
  what: PlacedContent,
  { within, runId, verified }: Required<Pick<WriteOptions, 'within' | 'runId'>> & { verified?: VerifiedDirs },
): WriteResult & { placed: boolean } {
  const target = path.resolve(absPath)
  const createdDirs = prepareParentsSync(target, within, true, verified)
  const temp = what.kind === 'prepared' ? what.temp : path.join(path.dirname(target), tempNameFor(path.basename(target), runId))
  try {
    if (what.kind === 'file') writeTempSync(temp, what.content, what.perm ?? modeBits(what.mode))
    else if (what.kind === 'prepared') {
      if (what.perm !== undefined) chmodSync(temp, what.perm)
    } else if (what.kind === 'symlink') {
      unlinkQuiet(temp)
      symlinkSync(what.target, temp)
    }
    try {
      linkSync(temp, target)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { path: target, createdDirs, placed: false }
      throw err
    }
    return { path: target, createdDirs, placed: true }
  } catch (err) {
    throw ioError('write', target, err)
  } finally {
    unlinkQuiet(temp)
  }
}

// Bits the process umask strips from a created file (read once; usually 0o022).
const UMASK = process.umask()

// A new temp file holding `content` with exactly `mode` (fchmod only when the umask
// would strip a bit of it). O_EXCL + O_NOFOLLOW: never writes through something planted.
function writeTempSync(temp: string, content: Buffer, mode: number): void {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
  let fd: number
  try {
    fd = openSync(temp, flags, mode)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create temp file', temp, err)
    // A leftover of an interrupted attempt of the same run: it is ours to replace.
    unlinkQuiet(temp)
    try {
      fd = openSync(temp, flags, mode)
    } catch (err2) {
      throw ioError('create temp file', temp, err2)
    }
  }
  try {
    for (let off = 0; off < content.length; ) off += writeSync(fd, content, off, content.length - off)
    if ((mode & UMASK) !== 0) fchmodSync(fd, mode)
  } finally {
    closeSync(fd)
  }
}

function unlinkQuiet(file: string): void {
  try {
    unlinkSync(file)
  } catch {
    // nothing there
  }
}

// Remove a file or symlink; nothing there is not an error. With pruneEmptyDirs,
// directories left empty are removed up to (not including) `within`, as git does.
export async function removeFile(absPath: string, options: Omit<WriteOptions, 'runId'> & { pruneEmptyDirs?: boolean } = {}): Promise<RemoveResult> {
  return removeFileSync(absPath, options)
}

export function removeFileSync(
  absPath: string,
  { within, pruneEmptyDirs = false, verified }: Omit<WriteOptions, 'runId'> & { pruneEmptyDirs?: boolean; verified?: VerifiedDirs } = {},
): RemoveResult {
  const target = path.resolve(absPath)
  const missingParent = prepareParentsSync(target, within, false, verified).length > 0
  if (missingParent) return { removed: false, prunedDirs: [] }
  let removed = true
  try {
    unlinkSync(target)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EISDIR' || (code === 'EPERM' && isDirectory(target))) {
      throw new AasError('IO_FAILED', `Cannot remove ${target}: it is a directory, expected a file`, {
        data: { file: target },
        hint: 'Move the directory out of the way, then run the command again.',
      })
    }
    if (code !== 'ENOENT') throw ioError('remove', target, err)
    removed = false
  }
  const prunedDirs: string[] = []
  if (pruneEmptyDirs && within !== undefined) {
    const stop = path.resolve(within)
    for (let dir = path.dirname(target); isStrictlyInside(dir, stop); dir = path.dirname(dir)) {
      try {
        rmdirSync(dir)
      } catch {
        break
      }
      verified?.delete(dir)
      prunedDirs.push(dir)
    }
  }
  return { removed, prunedDirs }
}

function isDirectory(p: string): boolean {
  try {
    return lstatSync(p).isDirectory()
  } catch {
    return false
  }
}

// Make a directory entry change (create, rename, unlink) durable.
export async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
    await handle.sync()
  } catch (err) {
    // Removed since (a directory left empty is pruned): its parent's fsync records that.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw ioError('fsync directory', dir, err)
  } finally {
    await handle?.close()
  }
}

// Make a file's bytes durable after a write done with fsync: false (batched durability).
export async function fsyncFile(absPath: string): Promise<void> {
  let handle: FileHandle | undefined
  try {
    handle = await open(absPath, constants.O_RDONLY | constants.O_NOFOLLOW)
    await handle.sync()
  } catch (err) {
    // A symlink carries no data of its own: its directory's fsync covers it.
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') return
    throw ioError('fsync', absPath, err)
  } finally {
    await handle?.close()
  }
}

// fsync many files then many directories, a few at a time (the batched end of a
// transaction). Past `syncfsAbove` paths, one syncfs(2) per file system (`sync -f`)
// makes everything durable at once instead, unless the machine holds so much other
// unwritten data that syncfs, which writes all of it, would cost more than the paths'
// own fsyncs; where syncfs is unavailable, per-path fsync.
export async function fsyncAll(
  { files = [], dirs = [] }: { files?: Iterable<string>; dirs?: Iterable<string> },
  { parallel = 8, syncfsAbove = 256, dirtyKb = unwrittenKb }: { parallel?: number; syncfsAbove?: number; dirtyKb?: () => number } = {},
): Promise<void> {
  const fileList = [...new Set(files)]
  const dirList = [...new Set(dirs)]
  const paths = fileList.length + dirList.length
  const syncfs = paths > syncfsAbove && dirtyKb() < paths * PATH_FSYNC_AS_DIRTY_KB
  if (syncfs && syncFileSystems([...dirList, ...new Set(fileList.map((f) => path.dirname(f)))])) return
  await forEachLimited(fileList, parallel, fsyncFile)
  await forEachLimited(dirList, parallel, fsyncDir)
}

// One path's fsync costs about what syncfs(2) spends writing this much of other dirty
// data (docs/how-it-works.md, "The journal and the fast-forward"; the measurements are in
// docs/performance.md's hand-written section). Measured on ext4 here: 500 fsyncs of
// 2 KB files, 8 at a time, took 79-93 ms and 5,000 took 0.8-1.6 s, while syncfs took
// 11-48 ms with nothing else to write and 157-179 ms with 200 MB more.
const PATH_FSYNC_AS_DIRTY_KB = 180

// The kernel's dirty and under-writeback page cache, in kB (Linux /proc/meminfo); 0
// where it cannot be read, which keeps syncfs.
function unwrittenKb(): number {
  let info: string
  try {
    info = readFileSync('/proc/meminfo', 'latin1')
  } catch {
    return 0
  }
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(info)?.[1] ?? 0)
  return kb('Dirty') + kb('Writeback')
}

// syncfs(2) of every file system holding one of `dirs`; false when any call failed.
function syncFileSystems(dirs: string[]): boolean {
  const byDevice = new Map<number, string>()
  for (const dir of new Set(dirs)) {
    try {
      const st = lstatSync(dir)
      if (!byDevice.has(st.dev)) byDevice.set(st.dev, dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false // a pruned directory needs nothing
    }
  }
  for (const dir of byDevice.values()) {
    const r = spawnSync(existsSync('/bin/sync') ? '/bin/sync' : 'sync', ['--file-system', dir], { stdio: 'ignore' })
    if (r.status !== 0) return false
  }
  return true
}

// Every leftover temp file under root (absolute paths, sorted). Does not follow
// symlinks and does not enter `.git`, `node_modules` or the embedded store.
export async function findTempFiles(root: string): Promise<string[]> {
  const found: string[] = []
  const base = path.resolve(root)
  const visit = async (dir: string): Promise<void> => {
    let entries: Dirent[]
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return
      throw ioError('read directory', dir, err)
    }
    for (const entry of entries) {
      const abs = path.join(dir, entry.name)
      if (entry.isDirectory()) {
        if (entry.name === '.git' || entry.name === 'node_modules') continue
        if (path.relative(base, abs) === path.join('_migrations', 'aas.git')) continue
        await visit(abs)
      } else if ((entry.isFile() || entry.isSymbolicLink()) && isTempFileName(entry.name)) {
        found.push(abs)
      }
    }
  }
  await visit(base)
  return found.sort()
}

// Remove every leftover temp file under root; returns what was removed.
export async function removeTempFiles(root: string): Promise<string[]> {
  const temps = await findTempFiles(root)
  for (const temp of temps) await removeFile(temp, { within: root })
  return temps
}

// Directories a write phase has already checked (real directories inside the vault),
// so each is checked once per phase rather than once per file. A directory swapped for
// a symlink by another process after its check is outside what this guards against:
// planted links are refused; a hostile process racing the engine is not modelled.
export type VerifiedDirs = Set<string>

// Check every directory between `within` and the target's parent: a symlink or a
// non-directory is refused; a missing one is created (create) or reported (returned).
async function prepareParents(target: string, within: string | undefined, create: boolean): Promise<string[]> {
  return prepareParentsSync(target, within, create)
}

function prepareParentsSync(target: string, within: string | undefined, create: boolean, verified?: VerifiedDirs): string[] {
  const base = within === undefined ? path.parse(target).root : path.resolve(within)
  if (!isStrictlyInside(target, base)) {
    throw new AasError('PATH_UNSAFE', `Refusing to write ${target}: it is not inside ${base}`, {
      data: { file: target, root: base },
      hint: 'Only paths inside the vault can be written; check the path for ".." components.',
    })
  }
  if (verified?.has(path.dirname(target))) return []
  const parts = path.relative(base, path.dirname(target)).split(path.sep).filter(Boolean)
  const missing: string[] = []
  const checked: string[] = []
  let dir = base
  for (const part of parts) {
    dir = path.join(dir, part)
    if (missing.length > 0) {
      missing.push(dir)
      continue
    }
    if (verified?.has(dir)) {
      checked.push(dir)
      continue
    }
    try {
      const st = lstatSync(dir)
      if (st.isSymbolicLink()) {
        throw new AasError('PATH_UNSAFE', `Refusing to write ${target}: ${dir} is a symlink`, {
          data: { file: target, symlink: dir },
          hint: `Writes never follow symlinked directories. Replace the link ${dir} with a real directory, or remove it, then run the command again.`,
        })
      }
      if (!st.isDirectory()) {
        throw new AasError('PATH_UNSAFE', `Refusing to write ${target}: ${dir} is not a directory`, {
          data: { file: target, notDirectory: dir },
          hint: `Move ${dir} out of the way, then run the command again.`,
        })
      }
      checked.push(dir)
    } catch (err) {
      if (err instanceof AasError) throw err
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('inspect', dir, err)
      missing.push(dir)
    }
  }
  if (create) {
    for (const m of missing) {
      try {
        mkdirSync(m)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create directory', m, err)
        if (!lstatSync(m).isDirectory()) throw ioError('create directory', m, err)
      }
    }
  }
  if (verified && (create || missing.length === 0)) for (const d of [...checked, ...missing]) verified.add(d)
  return missing
}

async function openTemp(temp: string) {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
  try {
    return await open(temp, flags, 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create temp file', temp, err)
    // A leftover of an interrupted attempt of the same run: it is ours to replace.
    await unlink(temp).catch(() => undefined)
    try {
      return await open(temp, flags, 0o600)
    } catch (err2) {
      throw ioError('create temp file', temp, err2)
    }
  }
}

function isStrictlyInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child)
  return rel !== '' && !rel.startsWith('..' + path.sep) && rel !== '..' && !path.isAbsolute(rel)
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      await fn(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

function ioError(action: string, file: string, err: unknown): AasError {
  if (err instanceof AasError) return err
  return new AasError('IO_FAILED', `Cannot ${action} ${file}: ${describeFsError(err)}`, {
    data: { file, errno: (err as NodeJS.ErrnoException | undefined)?.code },
    hint: 'Check permissions and free space on the vault file system, then run the command again.',
    cause: err,
  })
}
