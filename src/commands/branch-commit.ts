import { rm } from 'node:fs/promises'
import path from 'node:path'
import { AasError } from '../errors.js'
import { AAS_IDENT, safeConfigArgs } from '../git/git-env.js'
import { hasGitBinary } from '../git/open-store.js'
import { runGit } from '../git/run-git.js'
import type { Store } from '../git/store.js'
import type { FileMode } from '../vault/walk.js'
import type { JournalChange } from '../transaction/journal.js'

// `--commit` (docs/how-it-works.md, "The branch commit"): record a migration or a
// rollback as one commit on the user's current branch, touching only the given paths.
// The commit's tree is HEAD's tree with those paths replaced — never the index — so
// nothing the user staged is included; afterwards the index entries of exactly those
// paths follow the new commit.

export interface BranchCommitPlan {
  workTree: string
  prefix: string
  branch: string // refs/heads/…
  head: string | null // null on an unborn branch
  paths: string[] // vault-relative
}

interface IndexLine {
  mode: string
  oid: string
  stage: number
}

const repoPath = (plan: Pick<BranchCommitPlan, 'prefix'>, rel: string): string => (plan.prefix ? `${plan.prefix}/${rel}` : rel)

// git in the user's work tree: the user's own repository discovery, index and identity,
// but never a hook, filter or autocrlf conversion, and no inherited GIT_* variables.
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.toUpperCase().startsWith('GIT_')) env[k] = v
  return { ...env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', ...extra }
}

async function git(workTree: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; allowFail?: boolean } = {}) {
  return runGit([...safeConfigArgs(), ...args], {
    cwd: workTree,
    env: userEnv(opts.env),
    ...(opts.input === undefined ? {} : { input: opts.input }),
    ...(opts.allowFail ? { allowFail: true } : {}),
  })
}

function refused(reason: string, hint: string, data: Record<string, unknown> = {}): AasError {
  return new AasError('COMMIT_REFUSED', `--commit refused: ${reason}; nothing was changed.`, { hint, data })
}

function parseZ(out: Buffer): string[] {
  return out
    .toString('utf8')
    .split('\0')
    .filter((l) => l !== '')
}

// Check, before any live write, that a commit of these paths is possible and would hold
// only this command's work: a git vault, a branch checked out, and no uncommitted change
// (staged, unstaged or untracked) to any of the paths.
export async function prepareBranchCommit(store: Store, changes: readonly JournalChange[]): Promise<BranchCommitPlan> {
  const { location } = store
  if (location.kind !== 'repo' || !location.workTree) {
    throw refused(`${store.agentsRoot} is not inside a git work tree`, 'Run without --commit; snapshots are kept in _migrations/aas.git either way.', {
      agentsRoot: store.agentsRoot,
    })
  }
  if (!hasGitBinary()) throw refused('it needs the git binary, which is not on PATH', 'Install git, or run without --commit.')
  const workTree = location.workTree
  const sym = await git(workTree, ['symbolic-ref', '-q', 'HEAD'], { allowFail: true })
  if (sym.code !== 0)
    throw refused('HEAD is detached, so there is no current branch to commit to', 'Check out a branch (git switch <branch>), or run without --commit.')
  const branch = sym.stdout.toString('utf8').trim()
  const headRun = await git(workTree, ['rev-parse', '-q', '--verify', 'HEAD^{commit}'], { allowFail: true })
  const head = headRun.code === 0 ? headRun.stdout.toString('utf8').trim() : null
  const plan: BranchCommitPlan = { workTree, prefix: location.prefix, branch, head, paths: changes.map((c) => c.path) }
  const scope = location.prefix ? [location.prefix] : []

  const headEntries = new Map<string, { mode: string; oid: string }>()
  if (head) {
    for (const line of parseZ((await git(workTree, ['ls-tree', '-r', '-z', '--full-tree', 'HEAD', '--', ...scope])).stdout)) {
      const m = /^(\d+) \w+ ([0-9a-f]{40})\t(.*)$/s.exec(line)
      if (m) headEntries.set(m[3] as string, { mode: m[1] as string, oid: m[2] as string })
    }
  }
  const index = new Map<string, IndexLine[]>()
  for (const line of parseZ((await git(workTree, ['ls-files', '-s', '-z', '--full-name', '--', ...scope.map((s) => `:/${s}`)])).stdout)) {
    const m = /^(\d+) ([0-9a-f]{40}) (\d)\t(.*)$/s.exec(line)
    if (m) index.set(m[4] as string, [...(index.get(m[4] as string) ?? []), { mode: m[1] as string, oid: m[2] as string, stage: Number(m[3]) }])
  }
  const dirty: Array<{ path: string; reason: string }> = []
  for (const c of changes) {
    const p = repoPath(plan, c.path)
    const inHead = headEntries.get(p)
    const inIndex = index.get(p) ?? []
    const live = c.oldOid === null ? null : { mode: c.oldMode, oid: c.oldOid }
    if (inIndex.some((e) => e.stage !== 0)) dirty.push({ path: c.path, reason: 'has merge conflicts' })
    else if ((inIndex[0]?.oid ?? null) !== (inHead?.oid ?? null) || (inIndex[0]?.mode ?? null) !== (inHead?.mode ?? null))
      dirty.push({ path: c.path, reason: 'has staged changes' })
    else if ((live?.oid ?? null) !== (inHead?.oid ?? null) || (live?.mode ?? null) !== (inHead?.mode ?? null))
      dirty.push({ path: c.path, reason: inHead ? 'has uncommitted changes' : 'is not committed (untracked)' })
  }
  if (dirty.length > 0) {
    const shown = dirty.slice(0, 20).map((d) => `${d.path} ${d.reason}`)
    throw refused(
      `${dirty.length} of the paths it would commit ${dirty.length === 1 ? 'is' : 'are'} not clean on ${branch.replace('refs/heads/', '')}:\n  ${shown.join('\n  ')}${dirty.length > 20 ? '\n  …' : ''}`,
      'Commit or stash your changes to these files first (git status shows them), or run without --commit.',
      { branch, paths: dirty },
    )
  }
  return plan
}

function indexInfo(plan: BranchCommitPlan, changes: readonly JournalChange[]): string {
  return changes
    .map((c) => (c.newOid === null ? `0 ${'0'.repeat(40)}\t${repoPath(plan, c.path)}` : `${c.newMode as FileMode} ${c.newOid}\t${repoPath(plan, c.path)}`))
    .map((l) => `${l}\0`)
    .join('')
}

// After the live write: one commit on the branch (compare-and-swap against the HEAD
// checked before), then the index entries of these paths moved to the new blobs.
export async function recordBranchCommit(
  store: Store,
  plan: BranchCommitPlan,
  changes: readonly JournalChange[],
  message: string,
): Promise<{ branch: string; commit: string }> {
  const tmpIndex = path.join(store.location.stateDir, `commit-index-${process.pid}`)
  const env = { GIT_INDEX_FILE: tmpIndex }
  try {
    if (plan.head) await git(plan.workTree, ['read-tree', plan.head], { env })
    else await git(plan.workTree, ['read-tree', '--empty'], { env })
    await git(plan.workTree, ['update-index', '-z', '--index-info'], { env, input: indexInfo(plan, changes) })
    const tree = (await git(plan.workTree, ['write-tree'], { env })).stdout.toString('utf8').trim()
    const ident = await git(plan.workTree, ['var', 'GIT_COMMITTER_IDENT'], { allowFail: true })
    const identEnv =
      ident.code === 0
        ? {}
        : { GIT_AUTHOR_NAME: AAS_IDENT.name, GIT_AUTHOR_EMAIL: AAS_IDENT.email, GIT_COMMITTER_NAME: AAS_IDENT.name, GIT_COMMITTER_EMAIL: AAS_IDENT.email }
    const commit = (await git(plan.workTree, ['commit-tree', tree, ...(plan.head ? ['-p', plan.head] : [])], { input: message, env: identEnv })).stdout
      .toString('utf8')
      .trim()
    const moved = await git(plan.workTree, ['update-ref', '-m', `aas-migrate: ${message.split('\n')[0]}`, plan.branch, commit, plan.head ?? '0'.repeat(40)], {
      allowFail: true,
    })
    if (moved.code !== 0) {
      throw new AasError('REF_MOVED', `${plan.branch} moved while the command ran; the vault was changed but not committed.`, {
        hint: `Commit the migrated files yourself (git add ${plan.prefix || '.'} && git commit), or roll back and run again.`,
        data: { ref: plan.branch, expected: plan.head, stderr: moved.stderr.trim() },
      })
    }
    await git(plan.workTree, ['update-index', '-z', '--index-info'], { input: indexInfo(plan, changes) })
    return { branch: plan.branch, commit }
  } finally {
    await rm(tmpIndex, { force: true })
  }
}
