import { constants } from 'node:fs'
import { lstat, mkdir, open, readFile } from 'node:fs/promises'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'

// The audit log (docs/how-it-works.md, "The audit log"): one JSON line per run, refusal
// or rollback, appended to <agents_root>/_migrations/migration.jsonl. Each line carries the Python runner's
// fields with their names and types, so that the tools that read its file keep working,
// and ours under names of their own. Appends are one write(2) each with O_APPEND, so
// concurrent appenders never interleave inside a line; a crash can only tear the last
// line, which readers skip.

export const AUDIT_FILE = path.join('_migrations', 'migration.jsonl')

export interface AuditRecord {
  // The Python runner's record (its MigrationEvent):
  run_id: string
  timestamp: string // ISO 8601, UTC
  agents_root: string
  from_version: number // the vault's version before; -1 when the command stopped before it was known
  to_version: number // the target version; -1 when the command has none
  units_touched: number
  dry_run: boolean
  rolled_back: boolean
  error: string // the error's message; '' on success
  // Ours:
  command: string // the command line's action, e.g. '--to v2 --dry-run', '--rollback NAME'
  result: 'ok' | 'refused' | 'failed'
  error_code: string | null // the AasError code, null on success
  snapshot: string | null // snapshot name
  result_commit: string | null
  duration_ms: number
  [extra: string]: unknown // further fields are kept as given
}

export interface AuditReadResult {
  records: AuditRecord[]
  // Lines that are not a JSON object (a torn last line after a crash, or damage), 1-based.
  skipped: Array<{ line: number; text: string }>
}

export function auditPath(agentsRoot: string): string {
  return path.join(agentsRoot, AUDIT_FILE)
}

// Append one record durably. Starts a new line first when the file ends in a torn line.
export async function appendAudit(agentsRoot: string, record: AuditRecord): Promise<void> {
  const file = auditPath(agentsRoot)
  const dir = path.dirname(file)
  try {
    // Not recursive: a missing agents_root is an error, never created here.
    await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err
    })
    if ((await lstat(dir)).isSymbolicLink()) {
      throw new AasError('PATH_UNSAFE', `Refusing to write the audit log: ${dir} is a symlink`, {
        data: { file, symlink: dir },
        hint: `Replace the link ${dir} with a real directory, then run the command again.`,
      })
    }
    const handle = await open(file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o644)
    try {
      const { size } = await handle.stat()
      let prefix = ''
      if (size > 0) {
        const last = Buffer.alloc(1)
        await handle.read(last, 0, 1, size - 1)
        if (last[0] !== 0x0a) prefix = '\n'
      }
      await handle.write(Buffer.from(prefix + JSON.stringify(record) + '\n'))
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch (err) {
    if (err instanceof AasError) throw err
    throw new AasError('IO_FAILED', `Cannot append to the audit log ${file}: ${describeFsError(err)}`, {
      data: { file },
      hint: `Check that ${dir} is writable and the disk is not full.`,
      cause: err,
    })
  }
}

// Every record of the audit log, oldest first; unparseable lines are reported, not thrown.
export async function readAudit(agentsRoot: string): Promise<AuditReadResult> {
  const file = auditPath(agentsRoot)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], skipped: [] }
    throw new AasError('IO_FAILED', `Cannot read the audit log ${file}: ${describeFsError(err)}`, {
      data: { file },
      hint: `Check the permissions of ${file}.`,
      cause: err,
    })
  }
  const records: AuditRecord[] = []
  const skipped: AuditReadResult['skipped'] = []
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return
    try {
      const value: unknown = JSON.parse(line)
      if (value && typeof value === 'object' && !Array.isArray(value)) records.push(value as AuditRecord)
      else skipped.push({ line: i + 1, text: line })
    } catch {
      skipped.push({ line: i + 1, text: line })
    }
  })
  return { records, skipped }
}
