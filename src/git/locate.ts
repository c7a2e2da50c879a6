import { randomBytes } from 'node:crypto'
import { mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import { EMBEDDED_STORE_DIR } from '../vault/rules.js'
import { pathExists as exists } from '../fs-exists.js'
import type { StoreLocation } from './store.js'

// Where the store lives (docs/how-it-works.md, "The store and its refs"). Decided from
// the file system alone, so both backends agree and no git binary is needed: an existing
// embedded store wins (its history stays reachable), else the enclosing git work tree,
// else a new embedded store.
export async function locateStore(agentsRoot: string): Promise<StoreLocation> {
  let root: string
  try {
    root = await realpath(agentsRoot)
  } catch (err) {
    throw new AasError('AGENTS_ROOT_MISSING', `agents_root ${agentsRoot} does not exist: ${describeFsError(err)}.`, {
      hint: 'Pass --agents-root PATH with the folder that holds your agents.',
      data: { agentsRoot },
      cause: err,
    })
  }
  const embedded = path.join(root, EMBEDDED_STORE_DIR)
  if (await exists(path.join(embedded, 'HEAD'))) return embeddedLocation(embedded)
  const repo = await findWorkTree(root)
  if (repo) {
    const prefix = path.relative(repo.workTree, root).split(path.sep).join('/')
    return { kind: 'repo', gitDir: repo.gitDir, workTree: repo.workTree, prefix, stateDir: path.join(repo.gitDir, 'aas') }
  }
  return embeddedLocation(embedded)
}

function embeddedLocation(gitDir: string): StoreLocation {
  return { kind: 'embedded', gitDir, workTree: null, prefix: '', stateDir: path.join(gitDir, 'aas') }
}

// Like git's discovery: the nearest ancestor with a .git folder or gitfile; for a linked
// worktree the common dir (objects and refs are shared there).
async function findWorkTree(start: string): Promise<{ workTree: string; gitDir: string } | null> {
  if (start.split(path.sep).includes('.git')) return null
  for (let dir = start; ; ) {
    const dotGit = path.join(dir, '.git')
    let st: Stats | null
    try {
      st = await stat(dotGit)
    } catch {
      st = null
    }
    if (st?.isDirectory() && (await exists(path.join(dotGit, 'HEAD')))) return { workTree: dir, gitDir: await commonDir(dotGit) }
    if (st?.isFile()) {
      const text = await readFile(dotGit, 'utf8')
      const m = /^gitdir: (.+)$/m.exec(text)
      if (m) return { workTree: dir, gitDir: await commonDir(path.resolve(dir, (m[1] as string).trim())) }
    }
    const parent = path.dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

async function commonDir(gitDir: string): Promise<string> {
  try {
    const rel = (await readFile(path.join(gitDir, 'commondir'), 'utf8')).trim()
    return await realpath(path.resolve(gitDir, rel))
  } catch {
    return realpath(gitDir)
  }
}

const NEUTRAL_ATTRIBUTES = '* -text -filter -ident -working-tree-encoding -diff -merge\n'

// Create the embedded bare repository atomically (built in a temp dir, then renamed),
// with attributes neutralised and the store excluded from itself.
export async function initEmbeddedStore(gitDir: string): Promise<void> {
  if (await exists(path.join(gitDir, 'HEAD'))) return
  const tmp = `${gitDir}.${randomBytes(6).toString('hex')}.tmp`
  try {
    for (const d of ['objects/info', 'objects/pack', 'refs/heads', 'refs/tags', 'info', 'aas']) await mkdir(path.join(tmp, d), { recursive: true })
    await writeFile(path.join(tmp, 'HEAD'), 'ref: refs/heads/main\n')
    await writeFile(path.join(tmp, 'config'), '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n\tautocrlf = false\n[gc]\n\tauto = 0\n')
    await writeFile(path.join(tmp, 'description'), 'aas-migrate snapshot store\n')
    await writeFile(path.join(tmp, 'info', 'attributes'), NEUTRAL_ATTRIBUTES)
    await writeFile(path.join(tmp, 'info', 'exclude'), `/${EMBEDDED_STORE_DIR}/\n`)
    await mkdir(path.dirname(gitDir), { recursive: true })
    try {
      await rename(tmp, gitDir)
    } catch (err) {
      if (!(await exists(path.join(gitDir, 'HEAD')))) throw err // otherwise another process won the race
    }
  } catch (err) {
    throw new AasError('STORE_FAILED', `Cannot create the store ${gitDir}: ${describeFsError(err)}.`, {
      hint: `Check that ${path.dirname(gitDir)} is writable.`,
      data: { gitDir },
      cause: err,
    })
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}
