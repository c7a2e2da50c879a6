import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { deflate, deflateSync, inflateSync } from 'node:zlib'
import git from 'isomorphic-git'
import { AasError, describeFsError } from '../errors.js'
import { BaseStore, checkAasRef, refMoved } from './base-store.js'
import { checkOid, noStore } from './cli-store.js'
import { encodeCommit, hashObject, isFileMode, parseCommit, parseTree, type RawObject } from './git-objects.js'
import { initEmbeddedStore } from './locate.js'
import type { CommitInfo, CommitInput, RefEntry, StoreLocation, TreeEntry } from './store.js'

const deflateAsync = promisify(deflate)

// isomorphic-git, object level only: it reads loose and packed objects; writes are
// loose objects written here through a temp file and rename (isomorphic-git writes in
// place), and refs use git's own `<ref>.lock` protocol for compare-and-swap.
export class JsStore extends BaseStore {
  readonly backend = 'js' as const
  private readonly create: boolean
  private readonly cache: object = {}

  constructor(agentsRoot: string, location: StoreLocation, { create = true }: { create?: boolean } = {}) {
    super(agentsRoot, location)
    this.create = create
  }

  private get gitDir(): string {
    return this.location.gitDir
  }

  private async exists(): Promise<boolean> {
    try {
      await lstat(path.join(this.gitDir, 'HEAD'))
      return true
    } catch {
      return false
    }
  }

  protected async ensureWritable(): Promise<void> {
    if (this.location.kind === 'embedded' && !(await this.exists())) {
      if (!this.create) throw noStore(this.gitDir)
      await initEmbeddedStore(this.gitDir)
    }
    await mkdir(this.location.stateDir, { recursive: true })
  }

  private async writeLoose(type: 'blob' | 'tree' | 'commit', content: Buffer): Promise<string> {
    const oid = hashObject(type, content)
    const file = path.join(this.gitDir, 'objects', oid.slice(0, 2), oid.slice(2))
    if (await this.hasLoose(file)) return oid
    const data = await deflateAsync(Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content]))
    await mkdir(path.dirname(file), { recursive: true })
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
    try {
      await fs.promises.writeFile(tmp, data, { mode: 0o444 })
      await rename(tmp, file)
    } catch (err) {
      await rm(tmp, { force: true })
      throw new AasError('STORE_FAILED', `Cannot write object ${oid} into ${this.gitDir}: ${describeFsError(err)}.`, {
        hint: `Check free space and permissions of ${this.gitDir}.`,
        data: { gitDir: this.gitDir, oid },
        cause: err,
      })
    }
    return oid
  }

  private async hasLoose(file: string): Promise<boolean> {
    try {
      await stat(file)
      return true
    } catch {
      return false
    }
  }

  // A loose object read synchronously (one read and one inflate, no thread-pool round
  // trips); null when it is not loose, so isomorphic-git looks in the packs.
  private readLooseSync(oid: string): { type: string; content: Buffer } | null {
    let data: Buffer
    try {
      data = fs.readFileSync(path.join(this.gitDir, 'objects', oid.slice(0, 2), oid.slice(2)))
    } catch {
      return null
    }
    const raw = inflateSync(data)
    const sp = raw.indexOf(0x20)
    const nul = raw.indexOf(0, sp)
    const type = raw.toString('latin1', 0, sp)
    const content = raw.subarray(nul + 1)
    if (sp < 0 || nul < 0 || Number(raw.toString('latin1', sp + 1, nul)) !== content.length) throw new Error(`loose object ${oid} has a bad header`)
    return { type, content }
  }

  private async readRaw(oid: string): Promise<{ type: string; content: Buffer }> {
    checkOid(oid)
    try {
      const loose = this.readLooseSync(oid)
      if (loose) return loose
      const r = await git.readObject({ fs, gitdir: this.gitDir, oid, format: 'content', cache: this.cache })
      return { type: r.type, content: Buffer.from(r.object as Uint8Array) }
    } catch (err) {
      throw new AasError('STORE_CORRUPT', `Object ${oid} cannot be read from ${this.gitDir}: ${(err as Error).message}`, {
        hint: 'Run `aas-migrate --doctor`; the snapshot may have been deleted or the store damaged.',
        data: { oid, gitDir: this.gitDir },
        cause: err,
      })
    }
  }

  // Many loose objects written synchronously: each async step (stat, deflate, open,
  // write, close, rename) was a thread-pool round trip, seven per blob.
  async writeBlobs(source: AsyncIterable<Buffer>): Promise<string[]> {
    await this.ensureWritable()
    const oids: string[] = []
    const dirs = new Set<string>()
    for await (const content of source) oids.push(this.writeLooseSync('blob', content, dirs))
    return oids
  }

  private writeLooseSync(type: 'blob' | 'tree' | 'commit', content: Buffer, dirs: Set<string>): string {
    const oid = hashObject(type, content)
    const dir = path.join(this.gitDir, 'objects', oid.slice(0, 2))
    const file = path.join(dir, oid.slice(2))
    if (fs.existsSync(file)) return oid
    const data = deflateSync(Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content]))
    if (!dirs.has(dir)) {
      fs.mkdirSync(dir, { recursive: true })
      dirs.add(dir)
    }
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
    try {
      fs.writeFileSync(tmp, data, { mode: 0o444 })
      fs.renameSync(tmp, file)
    } catch (err) {
      fs.rmSync(tmp, { force: true })
      throw new AasError('STORE_FAILED', `Cannot write object ${oid} into ${this.gitDir}: ${describeFsError(err)}.`, {
        hint: `Check free space and permissions of ${this.gitDir}.`,
        data: { gitDir: this.gitDir, oid },
        cause: err,
      })
    }
    return oid
  }

  protected async writeRawTrees(trees: RawObject[]): Promise<void> {
    const dirs = new Set<string>()
    for (const t of trees) this.writeLooseSync('tree', t.content, dirs)
  }

  protected async hasObject(oid: string): Promise<boolean> {
    if (!(await this.exists())) return false
    if (fs.existsSync(path.join(this.gitDir, 'objects', oid.slice(0, 2), oid.slice(2)))) return true
    try {
      await git.readObject({ fs, gitdir: this.gitDir, oid, format: 'deflated', cache: this.cache })
      return true
    } catch {
      return false
    }
  }

  async writeBlob(content: Buffer): Promise<string> {
    await this.ensureWritable()
    return this.writeLoose('blob', content)
  }

  async writeCommit(input: CommitInput): Promise<string> {
    await this.ensureWritable()
    return this.writeLoose('commit', encodeCommit(input))
  }

  async readCommit(oid: string): Promise<CommitInfo> {
    const { type, content } = await this.readRaw(oid)
    if (type !== 'commit') throw new AasError('STORE_CORRUPT', `Object ${oid} is a ${type}, not a commit.`, { hint: 'Pass a commit id.', data: { oid } })
    return parseCommit(oid, content)
  }

  async listTree(treeish: string): Promise<TreeEntry[]> {
    let { type, content } = await this.readRaw(treeish)
    if (type === 'commit') ({ type, content } = await this.readRaw(parseCommit(treeish, content).tree))
    const out: TreeEntry[] = []
    const walk = async (prefix: string, body: Buffer): Promise<void> => {
      for (const item of parseTree(body)) {
        const p = prefix + item.name
        if (item.mode === '040000') await walk(`${p}/`, (await this.readRaw(item.oid)).content)
        else if (isFileMode(item.mode)) out.push({ path: p, mode: item.mode, oid: item.oid })
      }
    }
    await walk('', content)
    return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)))
  }

  async readBlob(oid: string): Promise<Buffer> {
    return (await this.readRaw(oid)).content
  }

  async *readBlobs(oids: string[]): AsyncIterable<{ oid: string; content: Buffer }> {
    for (const oid of oids) yield { oid, content: (await this.readRaw(oid)).content }
  }

  private async readPacked(): Promise<Map<string, string>> {
    const map = new Map<string, string>()
    let text: string
    try {
      text = await readFile(path.join(this.gitDir, 'packed-refs'), 'utf8')
    } catch {
      return map
    }
    for (const line of text.split('\n')) {
      const m = /^([0-9a-f]{40}) (refs\/\S+)$/.exec(line)
      if (m) map.set(m[2] as string, m[1] as string)
    }
    return map
  }

  private async readLoose(ref: string): Promise<string | null> {
    try {
      const text = (await readFile(path.join(this.gitDir, ref), 'utf8')).trim()
      return /^[0-9a-f]{40}$/.test(text) ? text : null
    } catch {
      return null
    }
  }

  async resolveRef(ref: string): Promise<string | null> {
    checkAasRef(ref, { write: false })
    return (await this.readLoose(ref)) ?? (await this.readPacked()).get(ref) ?? null
  }

  // git's lock protocol: create <file>.lock exclusively, check, then rename over.
  private async withLock<T>(file: string, fn: (lockFd: fs.promises.FileHandle, lockPath: string) => Promise<T>): Promise<T> {
    const lockPath = `${file}.lock`
    await mkdir(path.dirname(file), { recursive: true })
    let fd: fs.promises.FileHandle | null = null
    for (let attempt = 0; fd === null; attempt++) {
      try {
        fd = await open(lockPath, 'wx')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 50) {
          throw new AasError('STORE_FAILED', `Cannot lock ${lockPath}: ${describeFsError(err)}.`, {
            hint: `Another git process holds the lock; if none runs, remove ${lockPath}.`,
            data: { lock: lockPath },
            cause: err,
          })
        }
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    let renamed = false
    try {
      const result = await fn(fd, lockPath)
      renamed = true
      return result
    } finally {
      await fd.close().catch(() => {})
      if (!renamed || (await this.hasLoose(lockPath))) await rm(lockPath, { force: true })
    }
  }

  async updateRef(ref: string, newOid: string, expectedOld: string | null): Promise<void> {
    checkAasRef(ref, { write: true })
    checkOid(newOid)
    await this.ensureWritable()
    const file = path.join(this.gitDir, ref)
    await this.withLock(file, async (fd, lockPath) => {
      const actual = await this.resolveRef(ref)
      if (actual !== expectedOld) throw refMoved(ref, expectedOld, actual)
      await fd.writeFile(`${newOid}\n`)
      await fd.sync()
      await rename(lockPath, file)
    })
  }

  async deleteRef(ref: string, expectedOld: string): Promise<void> {
    checkAasRef(ref, { write: true })
    const file = path.join(this.gitDir, ref)
    await this.withLock(file, async () => {
      const actual = await this.resolveRef(ref)
      if (actual !== expectedOld) throw refMoved(ref, expectedOld, actual)
      const packed = await this.readPacked()
      if (packed.has(ref)) {
        const packedFile = path.join(this.gitDir, 'packed-refs')
        await this.withLock(packedFile, async (pfd, plock) => {
          const text = await readFile(packedFile, 'utf8')
          const lines = text.split('\n')
          const keep: string[] = []
          for (let i = 0; i < lines.length; i++) {
            const line = lines[i] as string
            if (line.endsWith(` ${ref}`)) {
              if (lines[i + 1]?.startsWith('^')) i++
              continue
            }
            keep.push(line)
          }
          await pfd.writeFile(keep.join('\n'))
          await pfd.sync()
          await rename(plock, packedFile)
        })
      }
      await rm(file, { force: true })
    })
  }

  async listRefs(prefix: string): Promise<RefEntry[]> {
    const found = new Map<string, string>()
    for (const [ref, oid] of await this.readPacked()) if (ref.startsWith(prefix)) found.set(ref, oid)
    const base = prefix.endsWith('/') ? prefix.slice(0, -1) : path.posix.dirname(prefix)
    const walk = async (rel: string): Promise<void> => {
      let names: fs.Dirent[]
      try {
        names = await readdir(path.join(this.gitDir, rel), { withFileTypes: true })
      } catch {
        return
      }
      for (const d of names) {
        const r = `${rel}/${d.name}`
        if (d.isDirectory()) await walk(r)
        else if (d.isFile() && !d.name.endsWith('.lock') && r.startsWith(prefix)) {
          const oid = await this.readLoose(r)
          if (oid) found.set(r, oid)
        }
      }
    }
    await walk(base)
    return [...found].map(([ref, oid]) => ({ ref, oid })).sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0))
  }
}
