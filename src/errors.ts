// One error class for every expected failure: a stable code, structured data,
// and a hint naming the fix. Tests assert codes and data, not prose.
export type AasErrorCode =
  | 'USAGE'
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
  | 'INTERNAL'
  | 'PYTHON_UNAVAILABLE'
  | 'ATOMIC_VALIDATORS_UNUSABLE'
  | 'PREVIEW_NOT_FOUND'
  | 'PREVIEW_UNUSABLE'
  | 'PREVIEW_STALE'
  | 'PREVIEW_SCRIPT_CHANGED'
  | 'PREVIEW_APPLIED'
  | 'REMOTE_MISSING'
  | 'REMOTE_UNSUPPORTED'
  | 'REMOTE_FAILED'
  | 'SNAPSHOT_DIVERGED'
  | 'LEASE_HELD'

// What each code means for the vault and the audit line's `result`. A refusal: the
// command declined, because of the request or the vault's state, and changed nothing
// (at most it wrote a snapshot). A failure: something went wrong while it worked; the
// vault is still exactly before or exactly after, never in between.
export type AasErrorKind = 'refusal' | 'failure'

export const ERROR_KINDS: Readonly<Record<AasErrorCode, AasErrorKind>> = {
  USAGE: 'refusal',
  AGENTS_ROOT_MISSING: 'refusal',
  AGENTS_ROOT_INVALID: 'refusal',
  IGNORE_INVALID: 'refusal',
  SCRIPT_NAME_INVALID: 'refusal',
  SCRIPT_VERSION_SKIP: 'refusal',
  SCRIPT_DUPLICATE: 'refusal',
  SCRIPT_LOAD_FAILED: 'failure',
  SCRIPT_INVALID: 'failure',
  SCRIPT_FAILED: 'failure',
  SCRIPT_NO_BUMP: 'failure',
  CHAIN_GAP: 'refusal',
  NOT_ABOVE_CURRENT: 'refusal',
  UNIT_UNREADABLE: 'refusal',
  UNIT_WRITE_INVALID: 'failure',
  SCHEMA_INVALID: 'failure',
  LOCKED: 'refusal',
  REF_MOVED: 'failure',
  REF_INVALID: 'refusal',
  SNAPSHOT_NOT_FOUND: 'refusal',
  SNAPSHOT_NAME_INVALID: 'refusal',
  SNAPSHOT_EXISTS: 'refusal',
  TARBALL_EXISTS: 'refusal',
  STORE_CORRUPT: 'failure',
  STORE_FAILED: 'failure',
  TARBALL_INVALID: 'refusal',
  CONCURRENT_CHANGE: 'refusal',
  IO_FAILED: 'failure',
  PATH_UNSAFE: 'refusal',
  RECOVERY_REQUIRED: 'refusal',
  ROLLBACK_FOREIGN_CHANGES: 'refusal',
  COMMIT_REFUSED: 'refusal',
  DOCTOR_UNHEALTHY: 'failure',
  INTERNAL: 'failure',
  PYTHON_UNAVAILABLE: 'refusal',
  ATOMIC_VALIDATORS_UNUSABLE: 'refusal',
  PREVIEW_NOT_FOUND: 'refusal',
  PREVIEW_UNUSABLE: 'refusal',
  PREVIEW_STALE: 'refusal',
  PREVIEW_SCRIPT_CHANGED: 'refusal',
  PREVIEW_APPLIED: 'refusal',
  REMOTE_MISSING: 'refusal',
  REMOTE_UNSUPPORTED: 'refusal',
  REMOTE_FAILED: 'failure',
  SNAPSHOT_DIVERGED: 'refusal',
  LEASE_HELD: 'refusal',
}

export function isRefusal(err: AasError): boolean {
  return ERROR_KINDS[err.code] === 'refusal'
}

export interface AasErrorOptions {
  hint?: string
  data?: Record<string, unknown>
  cause?: unknown
}

/**
 * The one error class of aas-migrate. Every expected failure is an `AasError` with a stable
 * `code` ({@link AasErrorCode}), structured `data` (the file, unit or ref concerned), a `hint`
 * naming the fix and, when it wraps another error, `cause`. `migrate` and `rollback` return
 * it in their result (`error`, `errors`); `status`, `doctor`, `listSnapshots`,
 * `exportSnapshot` and `importSnapshot` reject with it. Branch on `code`, not on the message.
 * @example
 * try {
 *   await exportSnapshot({ agentsRoot: '/srv/agents', snapshot: '2026-12-01T101500_pre_v2_migration' })
 * } catch (err) {
 *   if (!(err instanceof AasError)) throw err
 *   console.error(`${err.code}: ${err.message}`, err.hint ?? '') // e.g. SNAPSHOT_NOT_FOUND
 * }
 */
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

/**
 * Whether `err` is an {@link AasError}, and, when `code` is given, one with that code.
 * @example
 * const snapshots = await listSnapshots({ agentsRoot: '/srv/agents' }).catch((err: unknown) => {
 *   if (isAasError(err, 'AGENTS_ROOT_MISSING')) return [] // no vault here yet
 *   throw err
 * })
 */
export function isAasError(err: unknown, code?: AasErrorCode): err is AasError {
  return err instanceof AasError && (code === undefined || err.code === code)
}

// Anything thrown that is not an AasError is a bug of ours: it is reported as INTERNAL,
// with the original as its cause, never relabelled as an expected failure.
export function asAasError(err: unknown): AasError {
  if (err instanceof AasError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new AasError('INTERNAL', `Internal error: ${message}`, {
    hint: 'This is a bug in aas-migrate; please report it with this message and the output of `aas-migrate --doctor`. The vault is exactly as before or exactly migrated: run `aas-migrate --status` to see which.',
    data: err instanceof Error && err.stack ? { stack: err.stack } : {},
    cause: err,
  })
}

// Node's fs errors carry a code and a path; keep both when wrapping.
export function describeFsError(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err) {
    const e = err as NodeJS.ErrnoException
    return `${e.code}${e.syscall ? ` (${e.syscall})` : ''}`
  }
  return err instanceof Error ? err.message : String(err)
}
