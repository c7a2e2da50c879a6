import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { constants as zlibConstants, createDeflate, createInflate, deflate, deflateSync, inflateSync } from 'node:zlib'
import type { PromiseFsClient, ReadObjectResult } from 'isomorphic-git'
import { AasError, describeFsError } from '../errors.js'
import { BaseStore, checkAasRef, refMoved, snapshotBlobInput, type SnapshotBlobSource, type SnapshotCommitPlan } from './base-store.js'
import { isBlobFileRef, notABlob, openBlobSink, openFileRef, shortBlob, STREAM_CHUNK_BYTES } from './blob-file.js'
import { checkOid, noStore } from './cli-store.js'
import { encodeCommit, hashObject, isFileMode, parseCommit, parseTree, type RawObject } from './git-objects.js'
import { initEmbeddedStore } from './locate.js'
import { type DeflatedBatch, PackDeflater } from './pack-deflater.js'
import { PackReader, packEntry } from './pack-read.js'
import {
  BIG_BLOB_BYTES,
  type BlobDestination,
  type BlobInput,
  type CommitInfo,
  type CommitInput,
  type ReadBlobToFileOptions,
  type RefCommit,
  type RefEntry,
  type StoreLocation,
  type TreeEntry,
} from './store.js'

const deflateAsync = promisify(deflate)

// The fs given to isomorphic-git. Each of its calls wraps the fs anew and probes it:
// readFile() with no arguments, to see whether it returns a promise (node:fs throws a
// TypeError, built and caught twice per call); a stat of the gitdir; the loose object
// file, before the packs (this store has just looked for it itself); and a listing of
// objects/pack. Reading 10,000 packed blobs, those probes took about 2.5 s of a 13 s
// rollback. Here the probe is answered without an error, the gitdir's stat and the pack
// listing are taken once (listed again when an object is not found: see readObject),
// and a loose object file that is absent fails from an existence check, without the
// error node:fs would build for it.
interface GitFs {
  fs: PromiseFsClient
  relist(): void
}

function gitFs(gitDir: string): GitFs {
  const p = fs.promises
  const absent = Object.assign(new Error('no such loose object'), { code: 'ENOENT' })
  const looseDir = path.join(gitDir, 'objects') + path.sep
  const packDir = path.join(gitDir, 'objects', 'pack')
  let dirStat: Promise<fs.Stats> | null = null
  let packs: Promise<string[]> | null = null
  const promises = {
    readFile: (file?: string, options?: unknown) => {
      if (file === undefined) return Promise.resolve(undefined)
      if (file.startsWith(looseDir) && file.length === looseDir.length + 41 && !fs.existsSync(file)) return Promise.reject(absent)
      return p.readFile(file, options as never)
    },
    stat: (file: string, options?: unknown) => (file === gitDir ? (dirStat ??= p.stat(gitDir)) : p.stat(file, options as never)),
    readdir: (dir: string, options?: unknown) => (dir === packDir && options === undefined ? (packs ??= p.readdir(packDir)) : p.readdir(dir, options as never)),
    writeFile: p.writeFile,
    mkdir: p.mkdir,
    rmdir: p.rmdir,
    unlink: p.unlink,
    lstat: p.lstat,
    readlink: p.readlink,
    symlink: p.symlink,
    rm: p.rm,
  }
  const wrapped = Object.defineProperty({}, 'promises', { value: promises, enumerable: true }) as GitFs['fs']
  return {
    fs: wrapped,
    relist: () => {
      packs = null
      dirStat = null
    },
  }
}

// isomorphic-git, object level only: it reads loose and packed objects; writes are
// loose objects written here through a temp file and rename (isomorphic-git writes in
// place), and refs use git's own `<ref>.lock` protocol for compare-and-swap.
export class JsStore extends BaseStore {
  readonly backend = 'js' as const
  private readonly create: boolean
  private readonly cache: object = {}
  private gitFsCache: GitFs | null = null
  private packsCache: PackReader | null = null

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

  protected async makeWritable(): Promise<void> {
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
  // trips); null when it is not loose, so isomorphic-git looks in the packs; 'big' when
  // its file is above BIG_BLOB_BYTES, to be streamed (readBigLoose).
  private readLooseSync(oid: string): { type: string; content: Buffer } | 'big' | null {
    let data: Buffer
    const fd = this.openLooseSync(oid)
    if (fd === null) return null
    try {
      if (fs.fstatSync(fd).size > BIG_BLOB_BYTES) return 'big'
      data = fs.readFileSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    const raw = inflateSync(data)
    const sp = raw.indexOf(0x20)
    const nul = raw.indexOf(0, sp)
    const type = raw.toString('latin1', 0, sp)
    const content = raw.subarray(nul + 1)
    if (sp < 0 || nul < 0 || Number(raw.toString('latin1', sp + 1, nul)) !== content.length) throw new Error(`loose object ${oid} has a bad header`)
    return { type, content }
  }

  // isomorphic-git's readObject through gitFs: an object not found is looked for once
  // more with objects/pack listed again (a pack written since the listing).
  // isomorphic-git is loaded on first use (most runs never need it: about 60 ms of CPU).
  private async readObject(oid: string, format: 'content' | 'deflated'): Promise<ReadObjectResult> {
    this.gitFsCache ??= gitFs(this.gitDir)
    const git = (await import('isomorphic-git')).default
    const read = (): Promise<ReadObjectResult> => git.readObject({ fs: (this.gitFsCache as GitFs).fs, gitdir: this.gitDir, oid, format, cache: this.cache })
    try {
      return await read()
    } catch (err) {
      if ((err as { code?: string }).code !== 'NotFoundError') throw err
      this.gitFsCache.relist()
      return read()
    }
  }

  // The store's packs read here (pack-read.ts); what they cannot give, isomorphic-git.
  private get packs(): PackReader {
    this.packsCache ??= new PackReader(path.join(this.gitDir, 'objects', 'pack'))
    return this.packsCache
  }

  private async readRaw(oid: string): Promise<{ type: string; content: Buffer }> {
    checkOid(oid)
    try {
      // An object is the same bytes wherever it is: the packs listed so far first (most
      // of a snapshot's objects, found in memory), then loose, then packs listed again.
      // A packed copy that fails its check is read loose if it is there too (as git does).
      const [listed, damaged] = this.listedOrError(() => this.packs.read(oid, { relist: false }))
      if (listed) return listed
      const loose = this.readLooseSync(oid)
      if (loose === 'big') return await this.readBigLoose(oid)
      if (loose) return loose
      if (damaged) throw damaged
      const packed = this.packs.read(oid)
      if (packed) return packed
      const r = await this.readObject(oid, 'content')
      return { type: r.type, content: Buffer.from(r.object as Uint8Array) }
    } catch (err) {
      throw new AasError('STORE_CORRUPT', `Object ${oid} cannot be read from ${this.gitDir}: ${(err as Error).message}`, {
        hint: 'Run `aas-migrate --doctor`; the snapshot may have been deleted or the store damaged.',
        data: { oid, gitDir: this.gitDir },
        cause: err,
      })
    }
  }

  // A loose object whose deflated file is above BIG_BLOB_BYTES, inflated as a stream
  // into one buffer of its exact size: it is in memory once, never as deflated bytes
  // plus inflated pieces. (A smaller file inflating to a big object, such as a file of
  // zeros, takes the one-piece path.)
  private async readBigLoose(oid: string): Promise<{ type: string; content: Buffer }> {
    let type = ''
    let content = Buffer.alloc(0)
    let filled = 0
    const { size, bytes } = await this.inflateLoose(
      this.loosePath(oid),
      (t, len) => {
        type = t
        content = Buffer.allocUnsafe(len)
      },
      (chunk) => {
        chunk.copy(content, filled)
        filled += chunk.length
      },
    )
    if (bytes !== size) throw new Error(`loose object ${oid} ended after ${bytes} of its ${size} bytes`)
    return { type, content }
  }

  // Many blobs: the first few as loose objects written synchronously (each async step
  // was a thread-pool round trip), and once there are more than PACK_AFTER, the rest
  // into one pack written here (a loose file per blob costs several file operations
  // each, most of a cold snapshot). A file reference or a large buffer is streamed into
  // a loose object instead (hashed and deflated chunk by chunk), so packs hold small
  // blobs only and a big blob can always be streamed out again.
  async writeBlobs(source: AsyncIterable<BlobInput>): Promise<string[]> {
    await this.ensureWritable()
    const oids: string[] = []
    const dirs = new Set<string>()
    const small: Buffer[] = [] // the first ones, until it is clear a pack pays
    let pack: PackWriter | null = null
    try {
      await this.pipeToStore(source, oids, small, (p) => (pack = p))
    } catch (err) {
      ;(pack as PackWriter | null)?.abort()
      throw err
    }
    if (!pack) {
      this.fillSmall(oids, small, (b) => this.writeLooseSync('blob', b, dirs))
      return oids
    }
    try {
      await (pack as PackWriter).finish()
    } catch (err) {
      ;(pack as PackWriter).abort()
      throw this.packFailed(err)
    }
    return oids
  }

  // A pack to write into, skipping what the store's packs (listed now) already hold.
  private newPack(): PackWriter {
    const packs = this.packs
    packs.refresh()
    return new PackWriter(path.join(this.gitDir, 'objects', 'pack'), (oid) => packs.inListedPack(oid))
  }

  private addToPack(pack: PackWriter, blob: Buffer): string {
    try {
      return pack.add('blob', blob)
    } catch (err) {
      throw this.packFailed(err)
    }
  }

  private packFailed(err: unknown): AasError {
    return new AasError('STORE_FAILED', `Cannot write a pack into ${this.gitDir}: ${describeFsError(err)}.`, {
      hint: `Check free space and permissions of ${this.gitDir}.`,
      data: { gitDir: this.gitDir },
      cause: err,
    })
  }

  private async pipeToStore(source: AsyncIterable<BlobInput>, oids: string[], small: Buffer[], started: (p: PackWriter) => void): Promise<void> {
    let pack: PackWriter | null = null
    let turned = performance.now()
    // Past DEFLATE_THREAD_AFTER blobs, the rest are hashed and deflated on a thread of
    // their own, in batches (their slots in oids filled as each comes back, in order).
    let inline = 0
    let deflater: PackDeflater | null = null
    let batch: Buffer[] = []
    let slots: number[] = []
    let batchBytes = 0
    const inflight: Array<{ slots: number[]; done: Promise<DeflatedBatch> }> = []
    const land = async (): Promise<void> => {
      const next = inflight.shift() as { slots: number[]; done: Promise<DeflatedBatch> }
      let got: DeflatedBatch
      try {
        got = await next.done
        ;(pack as PackWriter).addDeflated(got)
        ;(deflater as PackDeflater).recycle(got)
      } catch (err) {
        throw this.packFailed(err)
      }
      next.slots.forEach((slot, k) => (oids[slot] = got.oids[k] as string))
    }
    const send = async (): Promise<void> => {
      if (batch.length > 0) {
        const done = (deflater as PackDeflater).deflate(batch)
        done.catch(() => undefined) // awaited in order by land(); a failure after an earlier one is not unhandled
        inflight.push({ slots, done })
      }
      batch = []
      slots = []
      batchBytes = 0
      while (inflight.length > DEFLATE_IN_FLIGHT) await land()
    }
    try {
      for await (const item of source) {
        // Blobs held in memory come without a turn of the event loop; deflating them here
        // takes the main thread for as long as the source lasts, while the chain's
        // workers wait for their next batch.
        if (performance.now() - turned > TURN_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve))
          turned = performance.now()
        }
        if (isBlobFileRef(item)) {
          const file = await openFileRef(item)
          try {
            oids.push(await this.writeLooseStream(item.size, file.chunks()))
          } finally {
            await file.close()
          }
        } else if (item.length > BIG_BLOB_BYTES) {
          oids.push(await this.writeLooseStream(item.length, bufferChunks(item)))
        } else if (pack) {
          if (deflater === null && inline >= DEFLATE_THREAD_AFTER) deflater = new PackDeflater(path.join(this.gitDir, 'objects', 'pack'))
          if (deflater === null) {
            oids.push(this.addToPack(pack, item))
            inline++
            continue
          }
          slots.push(oids.length)
          oids.push('') // filled when its batch comes back
          batch.push(item)
          batchBytes += item.length
          if (batch.length >= DEFLATE_BATCH || batchBytes >= DEFLATE_BATCH_BYTES) await send()
        } else {
          oids.push('') // filled below
          small.push(item)
          if (small.length > PACK_AFTER) {
            const p = (pack = this.newPack())
            started(p)
            inline = small.length
            this.fillSmall(oids, small, (b) => this.addToPack(p, b))
          }
        }
      }
      if (deflater) await send()
      while (inflight.length > 0) await land()
    } finally {
      await deflater?.close()
    }
  }

  // The ids of the blobs held back in `small`, written by `write`, into the empty slots of oids (in order).
  private fillSmall(oids: string[], small: Buffer[], write: (b: Buffer) => string): void {
    let k = 0
    for (let i = 0; i < oids.length && k < small.length; i++) if (oids[i] === '') oids[i] = write(small[k++] as Buffer)
    small.length = 0
  }

  // A blob of `size` bytes from a stream of chunks into a loose object: deflated into a
  // temp file under objects/ (git's tmp_obj_ prefix, which git gc cleans) while hashed,
  // then renamed to its name once the id is known. Level 1, as git's
  // core.looseCompression default. The stream must deliver exactly `size` bytes.
  private async writeLooseStream(size: number, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<string> {
    const objects = path.join(this.gitDir, 'objects')
    const tmp = path.join(objects, `tmp_obj_${randomBytes(6).toString('hex')}`)
    const hash = createHash('sha1').update(`blob ${size}\0`)
    let count = 0
    async function* body(): AsyncGenerator<Buffer> {
      yield Buffer.from(`blob ${size}\0`)
      for await (const chunk of chunks) {
        count += chunk.length
        if (count > size) throw new Error(`blob stream longer than its ${size} bytes`)
        hash.update(chunk)
        yield chunk
      }
      if (count !== size) throw new Error(`blob stream ended after ${count} of its ${size} bytes`)
    }
    let oid = ''
    try {
      await mkdir(objects, { recursive: true })
      await pipeline(body(), createDeflate({ level: 1 }), fs.createWriteStream(tmp, { flags: 'wx', mode: 0o444 }))
      oid = hash.digest('hex')
      const file = path.join(objects, oid.slice(0, 2), oid.slice(2))
      if (await this.hasLoose(file)) {
        await rm(tmp, { force: true })
        return oid
      }
      await mkdir(path.dirname(file), { recursive: true })
      await rename(tmp, file)
      return oid
    } catch (err) {
      await rm(tmp, { force: true })
      if (err instanceof AasError) throw err
      throw new AasError('STORE_FAILED', `Cannot write a ${size}-byte blob into ${this.gitDir}: ${describeFsError(err)}.`, {
        hint: `Check free space and permissions of ${this.gitDir}.`,
        data: { gitDir: this.gitDir, ...(oid ? { oid } : {}) },
        cause: err,
      })
    }
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

  protected async writeSnapshotObjects(source: SnapshotBlobSource, finish: (oids: string[]) => Promise<SnapshotCommitPlan>): Promise<string> {
    async function* inputs(): AsyncGenerator<BlobInput> {
      for await (const b of source) yield snapshotBlobInput(b)
    }
    // The ids are the ones computed here from the bytes written, never a caller's.
    const plan = await finish(await this.writeBlobs(inputs()))
    await this.writeRawTrees(plan.newTrees)
    return this.writeLooseSync('commit', plan.commit, new Set())
  }

  // A few trees as loose objects; more into one pack (a vault of 270 folders wrote 270
  // loose files and their fan-out folders per commit: 0.46 s of a 6.5 s --to).
  protected async writeRawTrees(trees: RawObject[]): Promise<void> {
    const dirs = new Set<string>()
    if (trees.length <= PACK_AFTER) {
      for (const t of trees) this.writeLooseSync('tree', t.content, dirs)
      return
    }
    const pack = this.newPack()
    try {
      for (const t of trees) pack.add('tree', t.content)
      await pack.finish()
    } catch (err) {
      pack.abort()
      throw this.packFailed(err)
    }
  }

  protected async hasObject(oid: string): Promise<boolean> {
    if (!(await this.exists())) return false
    if (fs.existsSync(path.join(this.gitDir, 'objects', oid.slice(0, 2), oid.slice(2)))) return true
    if (this.packs.has(oid)) return true
    try {
      await this.readObject(oid, 'deflated')
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
    const { type, content } = await this.released(() => this.readRaw(oid))
    if (type !== 'commit') throw new AasError('STORE_CORRUPT', `Object ${oid} is a ${type}, not a commit.`, { hint: 'Pass a commit id.', data: { oid } })
    return parseCommit(oid, content)
  }

  async listTree(treeish: string): Promise<TreeEntry[]> {
    return this.released(() => this.listTreeOpen(treeish))
  }

  private async listTreeOpen(treeish: string): Promise<TreeEntry[]> {
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
    return (await this.released(() => this.readRaw(oid))).content
  }

  async *readBlobs(oids: string[]): AsyncIterable<{ oid: string; content: Buffer }> {
    try {
      for (const oid of oids) yield { oid, content: (await this.readRaw(oid)).content }
    } finally {
      this.packsCache?.release()
    }
  }

  // A read that leaves no pack file open behind it (a store has no close()).
  private async released<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read()
    } finally {
      this.packsCache?.release()
    }
  }

  // What the packs listed so far answer, or the error of a damaged copy there.
  private listedOrError<T>(read: () => T | null): [T | null, unknown] {
    try {
      return [read(), null]
    } catch (err) {
      return [null, err]
    }
  }

  // The loose object's file opened for reading; null when it is not loose (most blobs of
  // a snapshot are packed). Asked first whether it exists: a failed open builds an error
  // with its stack, about 6 µs against 1 µs, for each of 10,000 blobs a rollback reads.
  private openLooseSync(oid: string): number | null {
    const file = this.loosePath(oid)
    if (!fs.existsSync(file)) return null
    try {
      return fs.openSync(file, 'r')
    } catch {
      return null // removed since (git gc packed it)
    }
  }

  private loosePath(oid: string): string {
    return path.join(this.gitDir, 'objects', oid.slice(0, 2), oid.slice(2))
  }

  // A loose blob is inflated as a stream into the destination. A packed one is read
  // whole (pack-read.ts, or isomorphic-git for a delta): this store packs only
  // blobs of at most BIG_BLOB_BYTES (bigger ones stay loose), so a big blob is packed
  // only when git itself packed the store (git gc, or a vault repository's own packs).
  async readBlobToFile(oid: string, dest: BlobDestination, { onSize, onData }: ReadBlobToFileOptions = {}): Promise<number> {
    checkOid(oid)
    const file = this.loosePath(oid)
    if (!(await this.hasLoose(file))) {
      const { type, content } = await this.released(() => this.readRaw(oid))
      if (type !== 'blob') throw notABlob(oid, type, this.gitDir)
      const sink = await openBlobSink(dest)
      try {
        onSize?.(content.length)
        onData?.(content)
        await sink.write(content)
        await sink.close()
      } catch (err) {
        await sink.abort()
        throw err
      }
      return content.length
    }
    const sink = await openBlobSink(dest)
    try {
      const { size, bytes } = await this.inflateLoose(
        file,
        (type, len) => {
          if (type !== 'blob') throw notABlob(oid, type, this.gitDir)
          onSize?.(len)
        },
        async (chunk) => {
          onData?.(chunk)
          await sink.write(chunk)
        },
      )
      if (bytes !== size) throw shortBlob(oid, bytes, size, this.gitDir)
      await sink.close()
      return bytes
    } catch (err) {
      await sink.abort()
      throw this.unreadable(oid, err)
    }
  }

  private unreadable(oid: string, err: unknown): AasError {
    if (err instanceof AasError) return err
    return new AasError('STORE_CORRUPT', `Object ${oid} cannot be read from ${this.gitDir}: ${(err as Error).message}`, {
      hint: 'Run `aas-migrate --doctor`; the snapshot may have been deleted or the store damaged.',
      data: { oid, gitDir: this.gitDir },
      cause: err,
    })
  }

  // A loose object inflated as a stream from its file: onHeader once with its type and
  // size, then onData with each piece of its content, in order. Resolves to the size the
  // header announced and the bytes that followed; failures are thrown as they come.
  private async inflateLoose(
    file: string,
    onHeader: (type: string, size: number) => void,
    onData: (chunk: Buffer) => void | Promise<void>,
  ): Promise<{ size: number; bytes: number }> {
    const raw = fs.createReadStream(file, { highWaterMark: STREAM_CHUNK_BYTES })
    const inflated = createInflate()
    raw.on('error', (err) => inflated.destroy(err))
    raw.pipe(inflated)
    let size = -1
    let bytes = 0
    try {
      let head: Buffer = Buffer.alloc(0)
      for await (const chunk of inflated as AsyncIterable<Buffer>) {
        let data = chunk
        if (size < 0) {
          head = head.length === 0 ? data : Buffer.concat([head, data])
          const nul = head.indexOf(0)
          if (nul < 0) {
            if (head.length > 64) throw new Error('bad header')
            continue
          }
          const [type, len] = head.toString('latin1', 0, nul).split(' ')
          if (type === undefined || !/^\d+$/.test(len ?? '')) throw new Error('bad header')
          size = Number(len)
          onHeader(type, size)
          data = head.subarray(nul + 1)
        }
        if (bytes + data.length > size) throw new Error(`longer than its ${size} bytes`)
        if (data.length === 0) continue
        await onData(data)
        bytes += data.length
      }
    } finally {
      raw.destroy()
    }
    if (size < 0) throw new Error('empty object file')
    return { size, bytes }
  }

  // A loose object's size from its header: only the first few hundred bytes are read
  // and inflated. A packed one's from its pack header, a delta's by reading it whole.
  async blobSizes(oids: string[]): Promise<Map<string, number>> {
    return this.released(() => this.blobSizesOpen(oids))
  }

  private async blobSizesOpen(oids: string[]): Promise<Map<string, number>> {
    const sizes = new Map<string, number>()
    for (const oid of oids) {
      if (sizes.has(oid)) continue
      checkOid(oid)
      // As readRaw looks: a damaged header in a listed pack is read again (and thrown) last.
      const [listed] = this.listedOrError(() => this.packedHeader(oid, false))
      const head = listed ?? this.looseHeaderSync(oid) ?? this.packedHeader(oid, true)
      if (head) {
        if (head.type !== 'blob') throw notABlob(oid, head.type, this.gitDir)
        sizes.set(oid, head.size)
        continue
      }
      const { type, content } = await this.readRaw(oid)
      if (type !== 'blob') throw notABlob(oid, type, this.gitDir)
      sizes.set(oid, content.length)
    }
    return sizes
  }

  private packedHeader(oid: string, relist: boolean): { type: string; size: number } | null {
    try {
      return this.packs.header(oid, { relist })
    } catch (err) {
      throw this.unreadable(oid, err)
    }
  }

  private looseHeaderSync(oid: string): { type: string; size: number } | null {
    const fd = this.openLooseSync(oid)
    if (fd === null) return null
    try {
      for (let want = 256; ; want *= 4) {
        const buf = Buffer.allocUnsafe(want)
        const n = fs.readSync(fd, buf, 0, want, 0)
        // A prefix of the stream inflates to a prefix of the object (sync flush: no
        // error for the missing end).
        const raw = inflateSync(buf.subarray(0, n), { finishFlush: zlibConstants.Z_SYNC_FLUSH })
        const nul = raw.indexOf(0)
        if (nul >= 0) {
          const [type, len] = raw.toString('latin1', 0, nul).split(' ')
          if (type === undefined || !/^\d+$/.test(len ?? '')) break
          return { type, size: Number(len) }
        }
        if (n < want) break
      }
    } catch (err) {
      throw new AasError('STORE_CORRUPT', `Object ${oid} cannot be read from ${this.gitDir}: ${(err as Error).message}`, {
        hint: 'Run `aas-migrate --doctor`; the snapshot may have been deleted or the store damaged.',
        data: { oid, gitDir: this.gitDir },
        cause: err,
      })
    } finally {
      fs.closeSync(fd)
    }
    throw new AasError('STORE_CORRUPT', `Loose object ${oid} in ${this.gitDir} has a bad header.`, {
      hint: 'Run `aas-migrate --doctor`; the store is damaged.',
      data: { oid, gitDir: this.gitDir },
    })
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

  async listRefCommits(prefix: string): Promise<RefCommit[]> {
    const out: RefCommit[] = []
    for (const { ref, oid } of await this.listRefs(prefix)) {
      const c = await this.readCommit(oid)
      out.push({ ref, oid, tree: c.tree, timestamp: c.timestamp })
    }
    return out
  }
}

// Blobs held back before a pack is started instead of loose objects.
const PACK_AFTER = 64
// Blobs deflated on the main thread before the rest go to a deflating thread
// (pack-deflater.ts; its start costs more than deflating a few hundred notes), the
// blobs and bytes of a batch sent to it, and the batches it may hold at once.
const DEFLATE_THREAD_AFTER = 512
const DEFLATE_BATCH = 256
const DEFLATE_BATCH_BYTES = 1 << 20
const DEFLATE_IN_FLIGHT = 4
// The longest the pack writer keeps the main thread before a turn of the event loop.
const TURN_MS = 5
const PACK_TYPE = { commit: 1, tree: 2, blob: 3 } as const

// A pack (version 2) and its index (version 2) written without git: objects deflated
// one by one into objects/pack/tmp_pack_*, then the header's count and the trailing
// checksum, then the index; both renamed to pack-<checksum>.* (the pack first, as git
// does, so an index never names a missing pack). Until then readers see nothing.
// An object the store's packs already hold (`packed`) is not written again, as git
// fast-import does not: a rollback's safety snapshot of a migrated vault finds every
// blob in the run's pack. A pack left with no object is not written at all.
class PackWriter {
  private readonly dir: string
  private readonly tmp: string
  private fd: number
  private offset = 12
  private readonly ids = new Map<string, { offset: number; crc: number }>()
  private buf = Buffer.allocUnsafe(1 << 20)
  private used = 0

  constructor(
    dir: string,
    private readonly packed: (oid: string) => boolean,
  ) {
    this.dir = dir
    fs.mkdirSync(dir, { recursive: true })
    this.tmp = path.join(dir, `tmp_pack_${randomBytes(6).toString('hex')}`)
    this.fd = fs.openSync(this.tmp, 'wx+', 0o444)
    this.put(Buffer.alloc(12)) // the header, written at the end
  }

  // Small pieces are gathered in `buf`; a large one (a batch of entries from the
  // deflating thread) is written as it is, after what was gathered.
  private put(b: Buffer): void {
    if (this.used + b.length > this.buf.length) this.flush()
    if (b.length >= this.buf.length >> 2) {
      this.flush()
      writeAll(this.fd, b, b.length)
      return
    }
    this.used += b.copy(this.buf, this.used)
  }

  private flush(): void {
    writeAll(this.fd, this.buf, this.used)
    this.used = 0
  }

  add(type: keyof typeof PACK_TYPE, content: Buffer): string {
    const oid = hashObject(type, content)
    if (this.ids.has(oid) || this.packed(oid)) return oid
    const { head, body, crc } = packEntry(PACK_TYPE[type], content)
    this.ids.set(oid, { offset: this.offset, crc })
    this.put(head)
    this.put(body)
    this.offset += head.length + body.length
    return oid
  }

  // Entries made on the deflating thread (pack-deflater.ts), less any already written.
  // Consecutive entries kept are put as one piece.
  addDeflated(batch: DeflatedBatch): void {
    let at = 0
    let run = -1 // where the entries kept since the last one skipped start, or -1
    for (const [k, size] of batch.sizes.entries()) {
      if (size === 0) continue
      const oid = batch.oids[k] as string
      if (this.ids.has(oid)) {
        if (run >= 0) this.put(batch.entries.subarray(run, at))
        run = -1
      } else {
        this.ids.set(oid, { offset: this.offset, crc: batch.crcs[k] as number })
        this.offset += size
        if (run < 0) run = at
      }
      at += size
    }
    if (run >= 0) this.put(batch.entries.subarray(run, at))
  }

  async finish(): Promise<void> {
    if (this.ids.size === 0) return this.abort()
    this.flush()
    const header = Buffer.alloc(12)
    header.write('PACK', 0, 'latin1')
    header.writeUInt32BE(2, 4)
    header.writeUInt32BE(this.ids.size, 8)
    fs.writeSync(this.fd, header, 0, 12, 0)
    // the checksum covers the whole file: read it back (from the page cache)
    const sum = createHash('sha1')
    const chunk = Buffer.allocUnsafe(1 << 20)
    for (let at = 0; at < this.offset; ) {
      const n = fs.readSync(this.fd, chunk, 0, Math.min(chunk.length, this.offset - at), at)
      if (n === 0) throw new Error(`pack ${this.tmp} ended early`)
      sum.update(chunk.subarray(0, n))
      at += n
    }
    const packSum = sum.digest()
    fs.writeSync(this.fd, packSum, 0, 20, this.offset)
    fs.fsyncSync(this.fd)
    fs.closeSync(this.fd)
    this.fd = -1

    const sorted = [...this.ids.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    const n = sorted.length
    const big = sorted.filter(([, v]) => v.offset >= 0x80000000)
    const idx = Buffer.alloc(8 + 1024 + n * 28 + big.length * 8 + 40)
    idx.writeUInt32BE(0xff744f63, 0)
    idx.writeUInt32BE(2, 4)
    const fan = new Array<number>(256).fill(0)
    for (const [oid] of sorted) (fan[parseInt(oid.slice(0, 2), 16)] as number)++
    let total = 0
    for (let i = 0; i < 256; i++) idx.writeUInt32BE((total += fan[i] as number), 8 + i * 4)
    let at = 8 + 1024
    for (const [oid] of sorted) at += idx.write(oid, at, 'hex')
    for (const [, v] of sorted) at = idx.writeUInt32BE(v.crc >>> 0, at)
    let k = 0
    for (const [, v] of sorted) at = idx.writeUInt32BE(v.offset >= 0x80000000 ? (0x80000000 | k++) >>> 0 : v.offset, at)
    for (const [, v] of big) {
      idx.writeUInt32BE(Math.floor(v.offset / 0x100000000), at)
      idx.writeUInt32BE(v.offset >>> 0, at + 4)
      at += 8
    }
    at += packSum.copy(idx, at)
    createHash('sha1').update(idx.subarray(0, at)).digest().copy(idx, at)
    const name = path.join(this.dir, `pack-${packSum.toString('hex')}`)
    const tmpIdx = `${this.tmp}.idx`
    const idxFd = fs.openSync(tmpIdx, 'wx', 0o444)
    try {
      fs.writeSync(idxFd, idx)
      fs.fsyncSync(idxFd)
    } finally {
      fs.closeSync(idxFd)
    }
    fs.renameSync(this.tmp, `${name}.pack`)
    fs.renameSync(tmpIdx, `${name}.idx`)
  }

  abort(): void {
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
    fs.rmSync(this.tmp, { force: true })
    fs.rmSync(`${this.tmp}.idx`, { force: true })
  }
}

function writeAll(fd: number, b: Buffer, length: number): void {
  let done = 0
  while (done < length) done += fs.writeSync(fd, b, done, length - done)
}

function* bufferChunks(buf: Buffer): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += STREAM_CHUNK_BYTES) yield buf.subarray(i, i + STREAM_CHUNK_BYTES)
}
