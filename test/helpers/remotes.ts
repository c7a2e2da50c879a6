import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
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

export interface GitHttpServer {
  base: string // the folder whose bare repositories it serves
  url(repo: string, auth?: { user: string; password: string }): string // http(s)://[user:password@]127.0.0.1:PORT/<repo>
  requests: number // requests answered so far
  pushedBytes: number // bytes of the bodies of receive-pack requests (what pushes sent)
  stop(): Promise<void>
}

// `git http-backend` as a CGI behind a node http server on a free port of 127.0.0.1,
// serving (and accepting pushes to) every bare repository below base. With auth, every
// request needs that basic-auth user and password (401 otherwise). With tls, https.
export async function startGitHttpServer(
  base: string,
  { auth, tls }: { auth?: { user: string; password: string }; tls?: { key: string; cert: string } } = {},
): Promise<GitHttpServer> {
  const port = await freePort()
  const children = new Set<ChildProcess>()
  const state = { requests: 0, pushedBytes: 0 }
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`)
    if (auth) {
      const expected = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="vaults"' }).end()
        return
      }
    }
    const header = (name: string): string => {
      const v = req.headers[name]
      return Array.isArray(v) ? v.join(', ') : (v ?? '')
    }
    const child = spawn('git', ['http-backend'], {
      env: {
        ...gitEnv,
        GIT_PROJECT_ROOT: base,
        GIT_HTTP_EXPORT_ALL: '1',
        GIT_CONFIG_PARAMETERS: "'http.receivepack'='true'",
        PATH_INFO: decodeURIComponent(url.pathname),
        REQUEST_METHOD: req.method ?? 'GET',
        QUERY_STRING: url.search.replace(/^\?/, ''),
        CONTENT_TYPE: header('content-type'),
        CONTENT_LENGTH: header('content-length'),
        HTTP_CONTENT_ENCODING: header('content-encoding'),
        GIT_PROTOCOL: header('git-protocol'),
        REMOTE_USER: auth?.user ?? 'aas-test',
        REMOTE_ADDR: '127.0.0.1',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    children.add(child)
    child.once('exit', () => children.delete(child))
    child.stderr.resume()
    if (url.pathname.endsWith('/git-receive-pack')) req.on('data', (b: Buffer) => (state.pushedBytes += b.length))
    req.pipe(child.stdin)
    child.stdin.on('error', () => {}) // the backend may answer (404) without reading the body
    let head = Buffer.alloc(0)
    let headersDone = false
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk)
        return
      }
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n') >= 0 ? head.indexOf('\r\n\r\n') + 4 : head.indexOf('\n\n') >= 0 ? head.indexOf('\n\n') + 2 : -1
      if (end < 0) return
      headersDone = true
      let status = 200
      const headers: Record<string, string> = {}
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':')
        if (colon <= 0) continue
        const name = line.slice(0, colon).trim()
        const value = line.slice(colon + 1).trim()
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10)
        else headers[name] = value
      }
      res.writeHead(status, headers)
      res.write(head.subarray(end))
    })
    child.stdout.once('end', () => {
      if (!headersDone) res.writeHead(502).end()
      else res.end()
      state.requests++
    })
    res.once('close', () => {
      if (child.exitCode === null) child.kill('SIGKILL') // the client went away
    })
  }
  const server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  return {
    base,
    url: (repo, creds) =>
      `${tls ? 'https' : 'http'}://${creds ? `${encodeURIComponent(creds.user)}:${encodeURIComponent(creds.password)}@` : ''}127.0.0.1:${port}/${repo}`,
    get requests() {
      return state.requests
    },
    get pushedBytes() {
      return state.pushedBytes
    },
    stop: async () => {
      for (const c of children) c.kill('SIGKILL')
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

// A self-signed certificate for 127.0.0.1 (openssl), as files in dir: the key, and the
// certificate that is its own CA (for GIT_SSL_CAINFO and NODE_EXTRA_CA_CERTS).
export function makeCertificate(dir: string): { key: string; cert: string; caFile: string } {
  const keyFile = path.join(dir, 'key.pem')
  const caFile = path.join(dir, 'cert.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      caFile,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  )
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(caFile, 'utf8'), caFile }
}
