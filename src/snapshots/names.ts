import { lstat } from 'node:fs/promises'
import path from 'node:path'
import { AasError } from '../errors.js'
import type { Store } from '../git/store.js'
import { LEGACY_SNAPSHOTS_DIR } from '../vault/rules.js'

// Snapshot names (YYYY-MM-DDTHHMMSS_pre_v<target>_migration[-k], UTC), which names a
// user may pass, and where a Python-runner tarball of a name lives.

const NAME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})(\d{2})(\d{2})_pre_v(\d+)_migration(?:-\d+)?$/

export function snapshotBaseName(now: Date, target: number, label = `pre_v${target}_migration`): string {
  const iso = now.toISOString() // YYYY-MM-DDTHH:MM:SS.sssZ
  return `${iso.slice(0, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}_${label}`
}

export function parseName(name: string): { timestamp: number; target: number } | null {
  const m = NAME_RE.exec(name)
  if (!m) return null
  const [, y, mo, d, h, mi, s, t] = m
  return { timestamp: Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000, target: Number(t) }
}

export function isValidName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/.test(name) && !name.includes('..') && !name.endsWith('.lock')
}

export function invalidName(input: string): AasError {
  return new AasError('SNAPSHOT_NAME_INVALID', `${JSON.stringify(input)} is not a snapshot name.`, {
    hint: 'Pass a name shown by `aas-migrate --list-snapshots` (e.g. 2026-08-12T143000_pre_v2_migration).',
    data: { name: input },
  })
}

// The folder of legacy (Python-runner) tarballs and of default exports.
export function legacyDir(store: Store): string {
  return path.join(store.agentsRoot, LEGACY_SNAPSHOTS_DIR)
}

export async function isRegularFile(p: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const st = await lstat(p)
    return st.isFile() ? { size: st.size, mtimeMs: st.mtimeMs } : null
  } catch {
    return null
  }
}
