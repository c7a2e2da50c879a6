import { createHash } from 'node:crypto'
import { lstat, readdir, readFile, readlink } from 'node:fs/promises'
import path from 'node:path'

// Every file and symlink under a folder with its kind, mode and content hash, for
// whole-tree before/after comparisons. Engine bookkeeping can be excluded.
export type TreeState = Record<string, string>

export const ENGINE_FILES = (rel: string): boolean =>
  rel === '_migrations/aas.git' || rel.startsWith('_migrations/aas.git/') || rel === '_migrations/migration.jsonl'

export async function captureTree(root: string, { exclude = ENGINE_FILES }: { exclude?: (rel: string) => boolean } = {}): Promise<TreeState> {
  const out: TreeState = {}
  const walk = async (dir: string): Promise<void> => {
    for (const d of await readdir(path.join(root, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${d.name}` : d.name
      if (exclude(rel)) continue
      const abs = path.join(root, rel)
      const st = await lstat(abs)
      if (st.isDirectory()) {
        out[`${rel}/`] = `dir ${(st.mode & 0o777).toString(8)}`
        await walk(rel)
      } else if (st.isSymbolicLink()) {
        out[rel] = `link ${await readlink(abs)}`
      } else {
        out[rel] = `file ${(st.mode & 0o777).toString(8)} ${createHash('sha1')
          .update(await readFile(abs))
          .digest('hex')}`
      }
    }
  }
  await walk('')
  return out
}

// Only the files (no directory entries): directories that a rollback prunes or a
// migration creates are compared separately where it matters.
export function filesOf(state: TreeState): TreeState {
  return Object.fromEntries(Object.entries(state).filter(([k]) => !k.endsWith('/')))
}
