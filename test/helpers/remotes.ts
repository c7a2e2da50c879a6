import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { git, gitEnv } from './make-vault.js'

// Real git remotes on this machine for the snapshot push/fetch tests: bare repositories
// (by path or file:// URL) and a git daemon on 127.0.0.1 serving them over git://.

export interface BareRemote {
  dir: string // the bare repository
  url: string // file:// URL of it
  refs(): Record<string, string> // every ref of it, name → oid
  cleanup(): Promise<void>
}

export async function makeBareRemote(name = 'vault.git', parent?: string): Promise<BareRemote> {
  const base = parent ?? (await mkdtemp(path.join(tmpdir(), 'aas-remote-')))
  const dir = path.join(base, name)
  git(base, 'init', '-q', '--bare', dir)
  return {
    dir,
    url: `file://${dir}`,
    refs: () => refsOf(dir),
    cleanup: () => rm(parent ? dir : base, { recursive: true, force: true }),
  }
}

export function refsOf(gitDir: string): Record<string, string> {
  const out = git(gitDir, 'for-each-ref', '--format=%(refname) %(objectname)')
  return Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split(' ') as [string, string]),
  )
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export interface GitDaemon {
  base: string // the folder it serves
  url(repo: string): string // git://127.0.0.1:PORT/<repo>
  stop(): Promise<void>
}

// `git daemon` serving every repository below base, push enabled, on a free port of
// 127.0.0.1; resolves once it answers.
export async function startGitDaemon(base: string): Promise<GitDaemon> {
  const port = await freePort()
  const child: ChildProcess = spawn(
    'git',
    ['daemon', '--reuseaddr', '--export-all', '--enable=receive-pack', '--listen=127.0.0.1', `--port=${port}`, `--base-path=${base}`, base],
    { env: gitEnv, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  }
  for (let i = 0; !(await canConnect(port)); i++) {
    if (child.exitCode !== null || i > 200) {
      await stop()
      throw new Error(`git daemon did not start: ${stderr}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { base, url: (repo) => `git://127.0.0.1:${port}/${repo}`, stop }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1', () => {
      c.destroy()
      resolve(true)
    })
    c.on('error', () => resolve(false))
  })
}
