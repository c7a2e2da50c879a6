import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
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
    return makeRules(text)
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

// Walk the vault once: the snapshot scope (SPEC §1) and, within it, the units.
// Symlinks are recorded, never followed; directories are read with bounded concurrency.
export async function scanVault(root: string, { concurrency = 32, onProgress }: ScanOptions = {}): Promise<VaultScan> {
  const rules = await loadRules(root)
  const entries: ScopeEntry[] = []
  const skipped: SkippedEntry[] = []
  const queue: string[] = ['']
  let active = 0
  let seen = 0

  await new Promise<void>((resolve, reject) => {
    let failed = false
    const pump = (): void => {
      if (failed) return
      if (queue.length === 0 && active === 0) return resolve()
      while (active < concurrency && queue.length > 0) {
        const dir = queue.pop() as string
        active++
        readDir(dir)
          .then(() => {
            active--
            pump()
          })
          .catch((err) => {
            failed = true
            reject(err)
          })
      }
    }
    const readDir = async (dir: string): Promise<void> => {
      const abs = dir === '' ? root : path.join(root, dir)
      let names
      try {
        names = await readdir(abs, { withFileTypes: true })
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
      for (const dirent of names) {
        const rel = dir === '' ? dirent.name : `${dir}/${dirent.name}`
        if (dirent.isDirectory()) {
          if (!isDirOutOfScope(rel, rules)) queue.push(rel)
          continue
        }
        if (!isFileInScope(rel, rules)) continue
        if (!dirent.isFile() && !dirent.isSymbolicLink()) {
          skipped.push({ path: rel, reason: 'not a regular file or symlink' })
          continue
        }
        // lstat from the page cache costs microseconds; a thread-pool round trip per
        // file costs far more on a loaded machine, so stat synchronously.
        const st = lstatSync(path.join(root, rel))
        const isLink = st.isSymbolicLink()
        const mode: FileMode = isLink ? '120000' : st.mode & 0o100 ? '100755' : '100644'
        entries.push({
          path: rel,
          mode,
          size: st.size,
          mtimeMs: st.mtimeMs,
          ctimeMs: st.ctimeMs,
          ino: st.ino,
          dev: st.dev,
          unitType: isLink ? null : unitTypeOf(rel),
        })
        seen++
        if (onProgress && seen % 1000 === 0) onProgress(seen)
      }
    }
    pump()
  })

  entries.sort((a, b) => comparePaths(a.path, b.path))
  onProgress?.(seen)
  return { root, entries, units: entries.filter((e) => e.unitType !== null), skipped, rules }
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

// A regular file's bytes, refusing (EINVAL) anything else found at the path.
export function readRegularFileSync(abs: string): Buffer {
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error(`EINVAL: not a regular file, read '${abs}'`), { code: 'EINVAL', path: abs })
    return readFileSync(fd)
  } finally {
    closeSync(fd)
  }
}
