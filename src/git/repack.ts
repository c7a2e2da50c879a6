import { readdir, lstat } from 'node:fs/promises'
import path from 'node:path'
import { gitChildEnv, safeConfigArgs } from './git-env.js'
import { runGit, storeFailed } from './run-git.js'
import type { StoreLocation } from './store.js'

// Getting the space of deleted refs back in the embedded store (never in a user's
// repository: that is their `git gc` to run). Objects that became unreachable are
// dropped only once they are older than the grace period: a dry run writes its base
// snapshot before the ref that keeps it, and may be running while this runs.

export const PRUNE_GRACE = '10.minutes.ago'

async function sizeOf(dir: string): Promise<number> {
  let total = 0
  let entries: import('node:fs').Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return 0
  }
  for (const e of entries) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) total += await sizeOf(p)
    else if (e.isFile()) total += (await lstat(p)).size
  }
  return total
}

// Repack what is reachable into one pack, unreachable objects older than the grace
// period dropped (newer ones kept in a cruft pack), then loose ones likewise; returns the
// bytes of objects/ before and after.
export async function repackEmbeddedStore(location: StoreLocation): Promise<{ before: number; after: number }> {
  if (location.kind !== 'embedded') throw new Error('repackEmbeddedStore: only the embedded store is repacked')
  const objects = path.join(location.gitDir, 'objects')
  const before = await sizeOf(objects)
  const env = gitChildEnv({ gitDir: location.gitDir, indexFile: path.join(location.stateDir, 'index') })
  const run = (args: string[]) => runGit([...safeConfigArgs(), ...args], { env, cwd: location.gitDir, allowFail: true })
  for (const args of [
    ['repack', '-a', '-d', '-q', '--cruft', `--cruft-expiration=${PRUNE_GRACE}`],
    ['prune', `--expire=${PRUNE_GRACE}`],
  ]) {
    const r = await run(args)
    if (r.code !== 0) throw storeFailed(args, r.stderr)
  }
  return { before, after: await sizeOf(objects) }
}
