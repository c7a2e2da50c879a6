import { execFileSync } from 'node:child_process'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const fixturesDir = path.join(repoRoot, 'fixtures')

// A git environment with a fixed identity and no user or system config.
export const gitEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_'))),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Vault Owner',
  GIT_AUTHOR_EMAIL: 'owner@example.com',
  GIT_COMMITTER_NAME: 'Vault Owner',
  GIT_COMMITTER_EMAIL: 'owner@example.com',
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: gitEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

export interface TempVault {
  dir: string // the temp dir (the repo root when git: true and subdir is set)
  root: string // agents_root
  cleanup(): Promise<void>
}

export interface MakeVaultOptions {
  git?: boolean // make the vault a git repository with one commit of the fixture
  subdir?: string // put the vault in this sub-folder of the repository
  migrations?: string | string[] // fixture names under fixtures/migrations/ copied into _migrations/
}

// Copy a fixture into a fresh temp dir; optionally inside a git repository.
export async function makeVault(fixture: string | null, { git: useGit = false, subdir, migrations }: MakeVaultOptions = {}): Promise<TempVault> {
  const dir = await mkdtemp(path.join(tmpdir(), 'aas-test-'))
  const root = subdir ? path.join(dir, subdir) : dir
  if (fixture) await cp(path.join(fixturesDir, fixture), root, { recursive: true, dereference: true })
  if (migrations) {
    const names = Array.isArray(migrations) ? migrations : [migrations]
    for (const name of names) {
      await cp(path.join(fixturesDir, 'migrations', name), path.join(root, '_migrations', name))
    }
  }
  if (useGit) {
    git(dir, 'init', '-q', '-b', 'main')
    git(dir, 'config', 'commit.gpgSign', 'false')
    git(dir, 'config', 'gc.auto', '0')
    git(dir, 'config', 'core.autocrlf', 'false')
    git(dir, 'add', '-A')
    git(dir, 'commit', '-q', '--allow-empty', '-m', 'vault')
  }
  return { dir, root, cleanup: () => rm(dir, { recursive: true, force: true }) }
}
