import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { git } from './make-vault.js'

export interface GitState {
  head: string
  index: string | null // base64 of .git/index bytes
  refs: string // every ref except refs/aas/
  stash: string | null
  config: string
  packedRefs: string | null
}

async function readOrNull(file: string, encoding: 'utf8' | 'base64'): Promise<string | null> {
  try {
    return (await readFile(file)).toString(encoding)
  } catch {
    return null
  }
}

// What must be identical before and after any store operation in a user's repository.
export async function captureGitState(repoDir: string): Promise<GitState> {
  const gitDir = path.join(repoDir, '.git')
  const refs = git(repoDir, 'for-each-ref', '--format=%(refname) %(objectname)')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('refs/aas/'))
    .join('\n')
  const packed = await readOrNull(path.join(gitDir, 'packed-refs'), 'utf8')
  return {
    head: (await readFile(path.join(gitDir, 'HEAD'), 'utf8')) + ((await readOrNull(path.join(gitDir, 'ORIG_HEAD'), 'utf8')) ?? ''),
    index: await readOrNull(path.join(gitDir, 'index'), 'base64'),
    refs,
    stash: await readOrNull(path.join(gitDir, 'logs', 'refs', 'stash'), 'utf8'),
    config: await readFile(path.join(gitDir, 'config'), 'utf8'),
    packedRefs:
      packed === null
        ? null
        : packed
            .split('\n')
            .filter((l) => !l.includes(' refs/aas/'))
            .join('\n'),
  }
}
