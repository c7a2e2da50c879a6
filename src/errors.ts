// One error class for every expected failure: a stable code, structured data,
// and a hint naming the fix. Tests assert codes and data, not prose.
export type AasErrorCode =
  | 'USAGE'
  | 'NOT_IMPLEMENTED'
  | 'AGENTS_ROOT_MISSING'
  | 'AGENTS_ROOT_INVALID'
  | 'IGNORE_INVALID'
  | 'SCRIPT_NAME_INVALID'
  | 'SCRIPT_VERSION_SKIP'
  | 'SCRIPT_DUPLICATE'
  | 'SCRIPT_LOAD_FAILED'
  | 'SCRIPT_INVALID'
  | 'SCRIPT_FAILED'
  | 'SCRIPT_NO_BUMP'
  | 'CHAIN_GAP'
  | 'NOT_ABOVE_CURRENT'
  | 'UNIT_UNREADABLE'
  | 'UNIT_WRITE_INVALID'
  | 'SCHEMA_INVALID'
  | 'LOCKED'
  | 'REF_MOVED'
  | 'REF_INVALID'
  | 'SNAPSHOT_NOT_FOUND'
  | 'SNAPSHOT_NAME_INVALID'
  | 'SNAPSHOT_EXISTS'
  | 'TARBALL_EXISTS'
  | 'STORE_CORRUPT'
  | 'STORE_FAILED'
  | 'TARBALL_INVALID'
  | 'CONCURRENT_CHANGE'
  | 'IO_FAILED'
  | 'PATH_UNSAFE'
  | 'RECOVERY_REQUIRED'
  | 'ROLLBACK_FOREIGN_CHANGES'
  | 'COMMIT_REFUSED'
  | 'DOCTOR_UNHEALTHY'

export interface AasErrorOptions {
  hint?: string
  data?: Record<string, unknown>
  cause?: unknown
}

export class AasError extends Error {
  override readonly name = 'AasError'
  readonly code: AasErrorCode
  readonly hint: string | undefined
  readonly data: Record<string, unknown>

  constructor(code: AasErrorCode, message: string, { hint, data = {}, cause }: AasErrorOptions = {}) {
    super(message, cause === undefined ? undefined : { cause })
    this.code = code
    this.hint = hint
    this.data = data
  }

  toJSON(): { code: AasErrorCode; message: string; hint?: string; data: Record<string, unknown> } {
    return { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}), data: this.data }
  }
}

export function isAasError(err: unknown, code?: AasErrorCode): err is AasError {
  return err instanceof AasError && (code === undefined || err.code === code)
}

// Node's fs errors carry a code and a path; keep both when wrapping.
export function describeFsError(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err) {
    const e = err as NodeJS.ErrnoException
    return `${e.code}${e.syscall ? ` (${e.syscall})` : ''}`
  }
  return err instanceof Error ? err.message : String(err)
}
