import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, type Dirent, type Stats } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import { IGNORE_FILE, isDirOutOfScope, isFileInScope, makeRules, unitTypeOf, type PathRules, type UnitType } from './rules.js'

export type FileMode = '100644' | '100755' | '120000'

// One file of the snapshot scope, with the stat fields a stat cache needs.
export interface ScopeEntry {
  path: string // vault-relative, POSIX separators
  mode: FileMode
  size: number
  mtimeMs: number
  ctimeMs: number
  ino: number
  dev: number
  unitType: UnitType | null // set for units (regular *.md files under memory/ or wiki/)
}

export interface SkippedEntry {
  path: string
  reason: string
}

export interface VaultScan {
  root: string
  entries: ScopeEntry[] // sorted by path bytes, like a git index
  units: ScopeEntry[]
  skipped: SkippedEntry[] // sockets, fifos, devices, unreadable directories
  rules: PathRules
}

export interface ScanOptions {
  concurrency?: number
  onProgress?: (filesSeen: number) => void
  // When it returns false for a regular file, the file is not lstat-ed (see walkScope):
  // for a caller that needs only the paths of some files.
  statFile?: (rel: string) => boolean
}

export async function loadRules(root: string): Promise<PathRules> {
  let text: string | null = null
  try {
    text = await readFile(path.join(root, IGNORE_FILE), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AasError('IGNORE_INVALID', `${IGNORE_FILE} cannot be read: ${describeFsError(err)}.`, {
        hint: `Fix the permissions of ${path.join(root, IGNORE_FILE)} or remove it.`,
        data: { path: IGNORE_FILE },
        cause: err,
      })
    }
  }
  try {
    return await makeRules(text)
  } catch (err) {
    throw new AasError('IGNORE_INVALID', `${IGNORE_FILE} is not valid gitignore syntax: ${(err as Error).message}`, {
      hint: `Fix the pattern in ${path.join(root, IGNORE_FILE)}.`,
      data: { path: IGNORE_FILE },
      cause: err,
    })
  }
}

export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

// Walk the vault once: the snapshot scope (docs/how-it-works.md, "What is in a
// snapshot") and, within it, the units ("Units and versions").
// Symlinks are recorded, never followed. Directories are listed and files lstat-ed
// synchronously: from the page cache each call costs microseconds, while a thread-pool
// round trip per directory and the promises around it cost more than the calls on a
// loaded machine. (`concurrency` is accepted for compatibility and unused.)
export async function scanVault(root: string, { onProgress, statFile }: ScanOptions = {}): Promise<VaultScan> {
  const rules = await loadRules(root)
  const entries: ScopeEntry[] = []
  const skipped: SkippedEntry[] = []
  for (const batch of walkScope(root, rules, skipped, statFile ? { statFile } : {})) {
    for (const e of batch) {
      entries.push(e)
      if (onProgress && entries.length % 1000 === 0) onProgress(entries.length)
    }
  }
  sortByPath(entries)
  onProgress?.(entries.length)
  return { root, entries, units: entries.filter((e) => e.unitType !== null), skipped, rules }
}

// The walk of scanVault, one directory's files at a time and unsorted, for a caller
// that works on files while the walk goes on (a snapshot reads them meanwhile).
// units: false leaves every unitType null (a snapshot does not need them).
// statFile: when it returns false for a regular file, the file is not lstat-ed: its
// size, times, inode and device are NaN and its mode 100644 until the caller fills them
// in (see fillStat), e.g. from the fstat of the read it does anyway.
export function* walkScope(
  root: string,
  rules: PathRules,
  skipped: SkippedEntry[],
  { units = true, statFile }: { units?: boolean; statFile?: (rel: string) => boolean } = {},
): Generator<ScopeEntry[]> {
  const stack: string[] = ['']
  while (stack.length > 0) {
    const dir = stack.pop() as string
    const abs = dir === '' ? root : path.join(root, dir)
    let names: Dirent[]
    try {
      names = readdirSync(abs, { withFileTypes: true })
    } catch (err) {
      if (dir === '') {
        throw new AasError('AGENTS_ROOT_INVALID', `agents_root ${root} cannot be listed: ${describeFsError(err)}.`, {
          hint: 'Check the permissions of the folder.',
          data: { agentsRoot: root },
          cause: err,
        })
      }
      throw new AasError('IO_FAILED', `Cannot list ${dir}/: ${describeFsError(err)}.`, {
        hint: `Fix the permissions of ${abs} (or exclude it in ${IGNORE_FILE}) and run again.`,
        data: { path: dir },
        cause: err,
      })
    }
    const prefix = dir === '' ? '' : `${dir}/`
    const absPrefix = `${abs}${path.sep}`
    const batch: ScopeEntry[] = []
    for (const dirent of names) {
      const rel = prefix + dirent.name
      if (dirent.isDirectory()) {
        if (!isDirOutOfScope(rel, rules)) stack.push(rel)
        continue
      }
      if (!isFileInScope(rel, rules)) continue
      if (!dirent.isFile() && !dirent.isSymbolicLink()) {
        skipped.push({ path: rel, reason: 'not a regular file or symlink' })
        continue
      }
      if (statFile && dirent.isFile() && !statFile(rel)) {
        batch.push({ path: rel, mode: '100644', size: NaN, mtimeMs: NaN, ctimeMs: NaN, ino: NaN, dev: NaN, unitType: units ? unitTypeOf(rel) : null })
        continue
      }
      const st = lstatSync(absPrefix + dirent.name)
      const isLink = st.isSymbolicLink()
      const mode: FileMode = isLink ? '120000' : st.mode & 0o100 ? '100755' : '100644'
      batch.push({
        path: rel,
        mode,
        size: st.size,
        mtimeMs: st.mtimeMs,
        ctimeMs: st.ctimeMs,
        ino: st.ino,
        dev: st.dev,
        unitType: isLink || !units ? null : unitTypeOf(rel),
      })
    }
    if (batch.length > 0) yield batch
  }
}

// Sorts by path bytes (UTF-8), as git orders an index. Strings without surrogates or
// characters from U+E000 up compare in UTF-16 code units exactly as in UTF-8 bytes, so
// only other paths need their bytes.
export function sortByPath<T extends { path: string }>(items: T[]): T[] {
  if (!items.some((e) => /[\ud800-\uffff]/.test(e.path))) return items.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const keyed = items.map((e) => ({ e, key: Buffer.from(e.path) }))
  keyed.sort((a, b) => Buffer.compare(a.key, b.key))
  keyed.forEach((k, i) => (items[i] = k.e))
  return items
}

// The bytes a snapshot records for an entry: file content, or a symlink's target.
// Read synchronously (small files from the page cache: four thread-pool round trips
// per file were most of a cold snapshot); O_NONBLOCK so a FIFO planted since the
// walk cannot hang the read.
export async function readEntryBytes(root: string, entry: Pick<ScopeEntry, 'path' | 'mode'>): Promise<Buffer> {
  return readEntryBytesSync(root, entry)
}

export function readEntryBytesSync(root: string, entry: Pick<ScopeEntry, 'path' | 'mode'>): Buffer {
  const abs = path.join(root, entry.path)
  if (entry.mode === '120000') return readlinkSync(abs, { encoding: 'buffer' })
  return readRegularFileSync(abs)
}

// Whether an entry of walkScope still lacks its stat (see statFile there).
export function lacksStat(e: ScopeEntry): boolean {
  return Number.isNaN(e.size)
}

// The stat fields of a regular file's entry, from an (f)stat of it.
export function fillStat(e: ScopeEntry, st: Stats): void {
  e.mode = st.mode & 0o100 ? '100755' : '100644'
  e.size = st.size
  e.mtimeMs = st.mtimeMs
  e.ctimeMs = st.ctimeMs
  e.ino = st.ino
  e.dev = st.dev
}

// readEntryBytesSync into buf at off, without allocating: the length read, or -1 when
// the entry has more than max bytes (nothing is written then; read it whole instead).
// onStat sees the fstat of the regular file opened, before it is read.
export function readEntryIntoSync(
  root: string,
  entry: Pick<ScopeEntry, 'path' | 'mode'>,
  buf: Buffer,
  off: number,
  max: number,
  onStat?: (st: Stats) => void,
): number {
  const abs = path.join(root, entry.path)
  if (entry.mode === '120000') {
    const target = readlinkSync(abs, { encoding: 'buffer' })
    return target.length > max ? -1 : target.copy(buf, off)
  }
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw Object.assign(new Error(`EINVAL: not a regular file, read '${abs}'`), { code: 'EINVAL', path: abs })
    onStat?.(st)
    if (st.size > max) return -1
    let got = 0
    while (got < st.size) {
      const n = readSync(fd, buf, off + got, st.size - got, null)
      if (n === 0) break
      got += n
    }
    return got
  } finally {
    closeSync(fd)
  }
}

// A regular file's bytes, refusing (EINVAL) anything else found at the path: one open,
// one fstat, reads to its size (readFileSync would fstat it again), one close.
// O_NONBLOCK: a FIFO planted since the walk cannot hang the read.
export function readRegularFileSync(abs: string): Buffer {
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw Object.assign(new Error(`EINVAL: not a regular file, read '${abs}'`), { code: 'EINVAL', path: abs })
    // As readFileSync(fd) reads (the size from this fstat, not another one; an empty
    // file read to its end), and no longer than the file turns out to be.
    if (st.size === 0) return readFileSync(fd)
    const buf = Buffer.allocUnsafe(st.size)
    let got = 0
    while (got < st.size) {
      const n = readSync(fd, buf, got, st.size - got, null)
      if (n === 0) break
      got += n
    }
    return got === st.size ? buf : buf.subarray(0, got)
  } finally {
    closeSync(fd)
  }
}
