import type { Ignore } from 'ignore'

// The path rules of docs/how-it-works.md, "Units and versions" and "What is in a
// snapshot", as pure functions of a vault-relative POSIX path.
// The walker and the store both use them, so the unit set and the snapshot
// scope cannot drift apart.

export const MIGRATIONS_DIR = '_migrations'
export const EMBEDDED_STORE_DIR = '_migrations/aas.git'
export const AUDIT_LOG = '_migrations/migration.jsonl'
export const IGNORE_FILE = '_migrations/ignore'
export const LEGACY_SNAPSHOTS_DIR = '_migrations/snapshots'
export const LOCK_FILE = '.migration.lock'

const TOOL_DIRS = new Set(['_cache', '_dashboard', 'node_modules'])

export interface PathRules {
  ignore: Ignore | null
}

// The gitignore matcher is loaded only for a vault that has an ignore file: most have
// none, and loading it took 20 to 50 ms of a 10,000-note snapshot of about 1.1 s.
export async function makeRules(ignoreText: string | null): Promise<PathRules> {
  if (ignoreText === null) return { ignore: null }
  const { default: ignore } = await import('ignore')
  return { ignore: ignore().add(ignoreText) }
}

function ignored(rules: PathRules, rel: string, isDir: boolean): boolean {
  if (!rules.ignore) return false
  return rules.ignore.ignores(isDir ? `${rel}/` : rel)
}

// Whether a directory must not be descended into at all for the snapshot scope.
export function isDirOutOfScope(rel: string, rules: PathRules): boolean {
  const name = rel.slice(rel.lastIndexOf('/') + 1)
  if (name === '.git') return true
  if (TOOL_DIRS.has(name)) return true
  if (rel === EMBEDDED_STORE_DIR || rel === LEGACY_SNAPSHOTS_DIR) return true
  // The store being created (locate.ts initEmbeddedStore: built aside, then renamed in).
  if (rel.startsWith(`${EMBEDDED_STORE_DIR}.`) && rel.endsWith('.tmp')) return true
  return ignored(rules, rel, true)
}

// The vault lock's temp files (`.migration.lock.aas-tmp-<token>`, written and linked as
// the lock, or the marker of a breaker): part of the lock, like it never in a snapshot,
// also when a process killed between writing and linking one left it behind.
export const VAULT_LOCK_TEMP_PREFIX = `${LOCK_FILE}.aas-tmp-`

export function isVaultLockTemp(rel: string): boolean {
  return rel.startsWith(VAULT_LOCK_TEMP_PREFIX) && !rel.includes('/')
}

// Whether a file (or symlink) below in-scope directories is itself in the snapshot scope.
export function isFileInScope(rel: string, rules: PathRules): boolean {
  const slash = rel.lastIndexOf('/')
  const name = rel.slice(slash + 1)
  if (name === '.git') return false // a submodule's or worktree's gitfile
  if (rel === LOCK_FILE || rel === AUDIT_LOG || isVaultLockTemp(rel)) return false
  if (name === '.lock' || name.endsWith('.md.lock')) return false
  if (name.endsWith('.jsonl') && isUnderLogDir(rel)) return false
  return !ignored(rules, rel, false)
}

function isUnderLogDir(rel: string): boolean {
  const parts = rel.split('/')
  return parts.slice(0, -1).includes('log')
}

export type UnitType = 'memory' | 'wiki'

// The unit type of an in-scope regular file, or null when it is not a unit.
// Assumes the path is already in the snapshot scope.
export function unitTypeOf(rel: string): UnitType | null {
  // Segment by segment with indexOf (no split: the walk calls this for every file).
  const slash = rel.lastIndexOf('/')
  if (!rel.endsWith('.md')) return null
  const name = rel.slice(slash + 1)
  if (name === 'INDEX.md' || name.startsWith('INDEX_')) return null
  let type: UnitType | null = null
  for (let start = 0; start < slash; ) {
    const end = rel.indexOf('/', start)
    if (rel.charCodeAt(start) === 46 /* . */) return null
    const dir = rel.slice(start, end)
    if (dir === MIGRATIONS_DIR) return null
    if (dir === 'memory') type = 'memory'
    else if (dir === 'wiki') type = 'wiki'
    start = end + 1
  }
  return type
}
