import { openStore } from './git/open-store.js'
import type { BackendName } from './git/store.js'
import { resolveAgentsRoot } from './vault/agents-root.js'
import * as snapshots from './snapshots/snapshots.js'

// The library's snapshot calls take an options object with `agentsRoot`, like
// status/migrate/rollback/doctor; the engine's versions take an open Store.

export interface VaultOptions {
  agentsRoot?: string | undefined // default: $ATOMIC_AGENTS_ROOT, else ~/docs/agents
  env?: NodeJS.ProcessEnv
  backend?: BackendName // default: $AAS_GIT, else the git binary when on PATH, else isomorphic-git
}

async function storeFor({ agentsRoot, env = process.env, backend }: VaultOptions, create: boolean) {
  const root = await resolveAgentsRoot({ flag: agentsRoot, env })
  return openStore({ agentsRoot: root.path, create, ...(backend ? { backend } : {}) })
}

// Snapshots newest first, with Python-runner tarballs not yet imported.
export async function listSnapshots(options: VaultOptions = {}): Promise<snapshots.Snapshot[]> {
  return snapshots.listSnapshots(await storeFor(options, false))
}

export interface ExportSnapshotOptions extends VaultOptions {
  snapshot: string
  out?: string // default: <agents_root>/_migrations/snapshots/<name>.tar.gz
}

export async function exportSnapshot({ snapshot, out, ...options }: ExportSnapshotOptions): Promise<snapshots.ExportResult> {
  return snapshots.exportSnapshot(await storeFor(options, false), snapshot, out === undefined ? {} : { out })
}

export interface ImportSnapshotOptions extends VaultOptions {
  file: string // a .tar.gz in the Python runner's layout
}

export async function importSnapshot({ file, ...options }: ImportSnapshotOptions): Promise<snapshots.ImportResult> {
  return snapshots.importSnapshot(await storeFor(options, true), file)
}
