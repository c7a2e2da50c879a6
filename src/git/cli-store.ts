import { createHash, randomBytes, type Hash } from 'node:crypto'
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs'
import { lstat, mkdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import type { SimpleGit } from 'simple-git'
import { AasError } from '../errors.js'
import {
  BaseStore,
  checkAasRef,
  refMoved,
  snapshotBlobInput,
  ZERO_OID,
  type SnapshotBlob,
  type SnapshotBlobSource,
  type SnapshotCommitPlan,
} from './base-store.js'
import { isBlobFileRef, STREAM_CHUNK_BYTES, missingObject, notABlob, openBlobSink, openFileRef, shortBlob } from './blob-file.js'
import { gitChildEnv, safeConfigArgs } from './git-env.js'
import { encodeCommit, isFileMode, parseCommit, parseTree, type RawObject } from './git-objects.js'
import { initEmbeddedStore } from './locate.js'
import { runGit, spawnGit, storeFailed } from './run-git.js'
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
import { TMP_REF_PREFIX } from './refs.js'

const NEWLINE = Buffer.from('\n')
// Pack windows git maps while reading objects: small, so streaming a blob of hundreds
// of MB out of a pack never has it mapped whole (the default window is 1 GiB), nor a
// long read of many blobs the whole pack.
const PACK_WINDOW = ['-c', 'core.packedGitWindowSize=8m', '-c', 'core.packedGitLimit=32m']
const EMPTY = Buffer.alloc(0)
// Blobs below this are gathered into one pipe write; larger ones are written alone.
// Batch buffers in use at most: how far the reading may run ahead of git. Four of
// 256 KiB took a cold 10,000-note snapshot from a median 1.10 s to 0.95 s (seven
// runs each, interleaved) against six of 1 MiB. git was less far behind once the
// last file had been read (about 145 ms to its exit, from about 190), and the reads
// themselves took less time (smaller buffers probably stay in the CPU's caches).
// Four of 512 KiB or of 64 KiB were slower.
const BATCH_BYTES = 1 << 18
const SLABS = 4
// Object ids written to `cat-file --batch` at a time (41 bytes each).
const FEED_IDS = 10_000
// Room for a fast-import blob header (`blob\nmark :N\ndata SIZE\n`) before a file read into a batch.
const HEADER_ROOM = 64

const ENV_NAMES = [
  'GIT_DIR',
  'GIT_INDEX_FILE',
  'GIT_AUTHOR_NAME',
  'GIT_AUTHOR_EMAIL',
  'GIT_COMMITTER_NAME',
  'GIT_COMMITTER_EMAIL',
  'GIT_AUTHOR_DATE',
  'GIT_COMMITTER_DATE',
  'GIT_TERMINAL_PROMPT',
  'GIT_OPTIONAL_LOCKS',
]

// The git binary: simple-git for short plumbing calls, spawn for streams
// (fast-import, cat-file --batch). Every call is scrubbed and hook-, filter- and
// autocrlf-free, with the private index under <gitDir>/aas/.
export class CliStore extends BaseStore {
  readonly backend = 'cli' as const
  private readonly create: boolean

  constructor(agentsRoot: string, location: StoreLocation, { create = true }: { create?: boolean } = {}) {
    super(agentsRoot, location)
    this.create = create
  }

  private env(timestamp?: number): NodeJS.ProcessEnv {
    return gitChildEnv({
      gitDir: this.location.gitDir,
      indexFile: path.join(this.location.stateDir, 'index'),
      ...(timestamp === undefined ? {} : { timestamp }),
    })
  }

  // A failing git call names the store it ran in; damaged objects are STORE_CORRUPT.
  private git(args: string[], opts: { input?: Buffer | string; allowFail?: boolean } = {}) {
    return runGit([...safeConfigArgs(), ...args], { env: this.env(), cwd: this.location.gitDir, ...opts }).catch((err: unknown) => {
      throw this.wrapGitError(err)
    })
  }

  private wrapGitError(err: unknown): unknown {
    const gitDir = this.location.gitDir
    if (!(err instanceof AasError) || err.code !== 'STORE_FAILED') return err
    const corrupt = /bad file|bad object|missing|corrupt|not a valid object|unable to read/i.test(String(err.data.stderr ?? ''))
    return new AasError(corrupt ? 'STORE_CORRUPT' : 'STORE_FAILED', `${err.message} (store ${gitDir})`, {
      hint: corrupt
        ? `The store ${gitDir} is damaged: run \`git -C ${gitDir} fsck\` and \`aas-migrate --doctor\`; nothing in the vault was changed.`
        : (err.hint ?? ''),
      data: { ...err.data, gitDir },
      cause: err,
    })
  }

  // Loaded on first use, so commands that never read refs (and the script worker) skip its import.
  private async simple(): Promise<SimpleGit> {
    const { simpleGit } = await import('simple-git')
    const cfg = safeConfigArgs().filter((_, i) => i % 2 === 1)
    return simpleGit({
      baseDir: this.location.gitDir,
      config: cfg,
      allowEnvironment: ENV_NAMES,
      unsafe: { allowUnsafeHooksPath: true, allowUnsafeConfigPaths: true, allowUnsafeFsMonitor: true },
    }).env(minimalEnv(this.env()))
  }

  private async exists(): Promise<boolean> {
    try {
      await lstat(path.join(this.location.gitDir, 'HEAD'))
      return true
    } catch {
      return false
    }
  }

  protected async makeWritable(): Promise<void> {
    if (this.location.kind === 'embedded' && !(await this.exists())) {
      if (!this.create) throw noStore(this.location.gitDir)
      await initEmbeddedStore(this.location.gitDir)
    }
    await mkdir(this.location.stateDir, { recursive: true })
  }

  // fast-import writing into a single pack (loose objects below fastimport.unpackLimit).
  private spawnFastImport(extra: string[]): ReturnType<typeof spawnGit> {
    const env = { ...this.env(), MALLOC_TOP_PAD_: '268435456' }
    // pack.depth=0: no delta search against the previous blob; compression level 1:
    // together half the time of the defaults for small notes. Blobs up to
    // BIG_BLOB_BYTES are taken in one piece (for 10,000 notes 9% less CPU than
    // streaming each, bigFileThreshold=1), bigger ones are streamed, never held whole.
    // unpackLimit=0 keeps even a small import as a pack: no unpack-objects pass, and a
    // big blob is never a loose object, which git maps into memory whole to read.
    const tuning = ['-c', 'pack.depth=0', '-c', `core.bigFileThreshold=${BIG_BLOB_BYTES}`, '-c', 'pack.compression=1', '-c', 'fastimport.unpackLimit=0']
    return spawnGit([...safeConfigArgs(), ...tuning, 'fast-import', '--quiet', '--done', ...extra], { env, cwd: this.location.gitDir })
  }

  // Pipes blobs into fast-import as marks :1..:n, returning n. Files and small blobs
  // are written into a few reused buffers of BATCH_BYTES (files are read straight into
  // them: no buffer per file, no copy), each queued without waiting for git, so git works
  // through one while the next is filled; a buffer comes back once git has taken it. A
  // blob of BATCH_BYTES or more is written on its own and a file reference is piped from
  // disk in chunks. onBlob sees every blob's bytes (or chunks) in order when given.
  // A synchronous source (a vault walk) is pulled without a promise per blob.
  private async pipeBlobs(fi: ReturnType<typeof spawnGit>, source: SnapshotBlobSource, onBlob?: BlobObserver): Promise<number> {
    const stdin = fi.child.stdin
    const free: Buffer[] = []
    let made = 0
    let waiting: (() => void) | null = null
    let failed: Error | null = null
    const release = (slab: Buffer) => (err?: Error | null) => {
      if (err) failed = err
      free.push(slab)
      const w = waiting
      waiting = null
      w?.()
    }
    const take = async (): Promise<Buffer> => {
      for (;;) {
        if (failed) throw storeFailed(['fast-import'], failed.message)
        const slab = free.pop()
        if (slab) return slab
        if (made < SLABS) {
          made++
          return Buffer.allocUnsafe(BATCH_BYTES)
        }
        await new Promise<void>((resolve) => (waiting = resolve))
      }
    }
    let slab = await take()
    let used = 0
    const flush = async (): Promise<void> => {
      if (used === 0) return
      stdin.write(slab.subarray(0, used), release(slab))
      // let the event loop run once, so the queued bytes reach git while the next
      // buffer is filled
      await new Promise<void>((resolve) => setImmediate(resolve))
      slab = await take()
      used = 0
    }
    const header = (n: number, size: number): string => `blob\nmark :${n}\ndata ${size}\n`
    let n = 0
    const syncIt = Symbol.iterator in source ? (source as Iterable<SnapshotBlob>)[Symbol.iterator]() : null
    const asyncIt = syncIt ? null : (source as AsyncIterable<SnapshotBlob>)[Symbol.asyncIterator]()
    let finished = false
    try {
      for (;;) {
        const r = syncIt ? syncIt.next() : await (asyncIt as AsyncIterator<SnapshotBlob>).next()
        if (r.done) {
          finished = true
          break
        }
        const v = r.value
        n++
        if (v.input === null) {
          // Read straight into the buffer after a header announcing the scan's size; a
          // file that is too big for what is left goes into a fresh buffer, a file too big
          // for any is read whole.
          let got = -1
          for (let attempt = 0; attempt < 2 && got < 0; attempt++) {
            if (attempt === 1) await flush()
            const room = BATCH_BYTES - used - HEADER_ROOM - 1
            if (room >= 0) got = v.readInto(slab, used + HEADER_ROOM, room)
          }
          if (got >= 0) {
            const h = header(n, got)
            const at = used + HEADER_ROOM
            used += slab.write(h, used, 'latin1')
            slab.copyWithin(used, at, at + got)
            const bytes = slab.subarray(used, used + got)
            used += got
            slab[used++] = 0x0a
            onBlob?.start(n, got, v.oid)
            onBlob?.data(bytes)
            onBlob?.end(n)
            if (used >= BATCH_BYTES - HEADER_ROOM - 1) await flush()
            continue
          }
        }
        const input = snapshotBlobInput(v)
        if (isBlobFileRef(input)) {
          // Opened before `data <size>` is sent: a size changed since the scan fails here.
          const file = await openFileRef(input)
          try {
            await flush()
            await fi.write(header(n, input.size))
            onBlob?.start(n, input.size, v.oid)
            let sent = 0
            try {
              for await (const chunk of file.chunks()) {
                onBlob?.data(chunk)
                await fi.write(chunk)
                sent += chunk.length
              }
            } catch (err) {
              await completeCutShortBlob(fi, input.size - sent)
              throw err
            }
            await fi.write(NEWLINE)
          } finally {
            await file.close()
          }
          onBlob?.end(n)
        } else {
          const h = header(n, input.length)
          if (used + h.length + input.length + 1 > BATCH_BYTES) await flush()
          if (h.length + input.length + 1 > BATCH_BYTES) {
            await fi.write(h)
            await fi.write(input)
            await fi.write(NEWLINE)
          } else {
            used += slab.write(h, used, 'latin1')
            used += input.copy(slab, used)
            slab[used++] = 0x0a
          }
          onBlob?.start(n, input.length, v.oid)
          onBlob?.data(input)
          onBlob?.end(n)
        }
      }
    } finally {
      // like a for-of left early: let the source clean up
      if (!finished) {
        if (syncIt) syncIt.return?.()
        else await asyncIt?.return?.()
      }
    }
    await flush()
    if (failed) throw storeFailed(['fast-import'], (failed as Error).message)
    return n
  }

  // One fast-import pass writes every blob into a single pack; marks give the ids back in order.
  async writeBlobs(source: AsyncIterable<BlobInput>): Promise<string[]> {
    await this.ensureWritable()
    const it = source[Symbol.asyncIterator]()
    const first: IteratorResult<BlobInput> = await it.next()
    if (first.done) return []
    const marksFile = path.join(this.location.stateDir, `marks-${randomBytes(6).toString('hex')}.txt`)
    const fi = this.spawnFastImport([`--export-marks=${marksFile}`])
    async function* all(): AsyncGenerator<SnapshotBlob> {
      for (let r: IteratorResult<BlobInput> = first; !r.done; r = await it.next()) yield { input: r.value, oid: null }
    }
    try {
      const n = await this.pipeBlobs(fi, all())
      await fi.write('done\n')
      fi.child.stdin.end()
      await fi.done
      const oids = new Array<string>(n)
      for (const line of (await readFile(marksFile, 'utf8')).split('\n')) {
        const m = /^:(\d+) ([0-9a-f]{40})$/.exec(line)
        if (m) oids[Number(m[1]) - 1] = m[2] as string
      }
      for (let i = 0; i < n; i++) if (!oids[i]) throw storeFailed(['fast-import'], `no id for blob ${i + 1}`)
      return oids
    } catch (err) {
      await this.abandonFastImport(fi)
      throw err
    } finally {
      await rm(marksFile, { force: true })
    }
  }

  // A vault snapshot in one fast-import pass: the blobs, then the commit of the tree
  // (built by fast-import from the previous snapshot's tree and the changes, or from
  // every file), on a throwaway ref that is reset before the end, so no ref is written.
  // The ids of the blobs are computed here as they are piped (the commit message needs
  // them before git is done); the commit id git reports must be the one computed here
  // from those ids, which proves every blob and tree id.
  protected async writeSnapshotObjects(source: SnapshotBlobSource, finish: (oids: string[]) => Promise<SnapshotCommitPlan>): Promise<string> {
    await this.ensureWritable()
    const fi = this.spawnFastImport([])
    const out: Buffer[] = []
    fi.child.stdout.on('data', (b: Buffer) => out.push(b))
    const oids: string[] = []
    // Every blob's id, hashed from the bytes piped (a caller's id is taken as given:
    // the commit id check below catches a wrong one).
    let hash: Hash | null = null
    let given: string | null = null
    const onBlob: BlobObserver = {
      start(_n, size, known) {
        given = known
        hash = known ? null : createHash('sha1').update(`blob ${size}\0`)
      },
      data(chunk) {
        hash?.update(chunk)
      },
      end() {
        oids.push(hash ? hash.digest('hex') : (given as string))
      },
    }
    try {
      const n = await this.pipeBlobs(fi, source, onBlob)
      if (oids.length !== n) throw storeFailed(['fast-import'], `hashed ${oids.length} of ${n} blobs`)
      const plan = await finish(oids)
      const marks = new Map<string, number>()
      oids.forEach((oid, i) => marks.set(oid, i + 1))
      const ref = (v: string): string => {
        const m = marks.get(v)
        return m === undefined ? v : `:${m}`
      }
      const commit = plan.commit
      const split = commit.indexOf('\n\n')
      const head = commit.toString('utf8', 0, split).split('\n')
      const body = commit.subarray(split + 2)
      const tmpRef = `${TMP_REF_PREFIX}snapshot-${randomBytes(6).toString('hex')}`
      const lines: string[] = [`commit ${tmpRef}`, `mark :${n + 1}`]
      for (const h of head) if (h.startsWith('author ') || h.startsWith('committer ')) lines.push(h)
      await fi.write(`${lines.join('\n')}\ndata ${body.length}\n`)
      await fi.write(body)
      const ops: string[] = ['']
      head.filter((h) => h.startsWith('parent ')).forEach((h, i) => ops.push(`${i === 0 ? 'from' : 'merge'} ${h.slice(7)}`))
      if (plan.base) {
        ops.push(`M 040000 ${plan.base.tree} ""`)
        for (const p of plan.base.removed) ops.push(`D ${fastImportPath(p)}`)
        for (const e of plan.base.changed) ops.push(`M ${e.mode} ${ref(e.oid)} ${fastImportPath(e.path)}`)
      } else {
        ops.push('deleteall')
        for (const e of plan.entries) ops.push(`M ${e.mode} ${ref(e.oid)} ${fastImportPath(e.path)}`)
      }
      ops.push('', `reset ${tmpRef}`, '', `get-mark :${n + 1}`, 'done', '')
      await fi.write(ops.join('\n'))
      fi.child.stdin.end()
      await fi.done
      const got = Buffer.concat(out).toString('latin1').trim()
      if (got !== plan.oid) throw storeFailed(['fast-import'], `snapshot commit id mismatch: expected ${plan.oid}, git wrote ${got || 'nothing'}`)
      return got
    } catch (err) {
      await this.abandonFastImport(fi)
      throw this.wrapGitError(err)
    }
  }

  // Stop a fast-import after a failure by ending its input rather than killing it (a
  // killed one leaves objects/pack/tmp_pack_*, as large as what it had received). The
  // input is at a command boundary (pipeBlobs completes a blob cut short), so `done`
  // ends the pass normally: the blobs written so far stay as unreachable objects in a
  // sound pack, which gc prunes. Only when git is already gone is the `done` lost; its
  // crash report is removed then.
  private async abandonFastImport(fi: ReturnType<typeof spawnGit>): Promise<void> {
    if (!fi.child.stdin.writableEnded) fi.child.stdin.end('done\n')
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      fi.done.catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          fi.child.kill()
          resolve()
        }, 30_000)
      }),
    ])
    clearTimeout(timer)
    if (fi.child.pid !== undefined) await rm(path.join(this.location.gitDir, `fast_import_crash_${fi.child.pid}`), { force: true })
  }

  protected async writeRawTrees(all: RawObject[]): Promise<void> {
    // mktree --batch reads an empty record as a separator: write the empty tree apart
    if (all.some((t) => t.content.length === 0)) await this.git(['hash-object', '-t', 'tree', '-w', '--stdin'], { input: Buffer.alloc(0) })
    const trees = all.filter((t) => t.content.length > 0)
    if (trees.length === 0) return
    const parts: Buffer[] = []
    trees.forEach((t, i) => {
      if (i > 0) parts.push(Buffer.from([0]))
      for (const item of parseTree(t.content)) {
        const type = item.mode === '040000' ? 'tree' : 'blob'
        parts.push(Buffer.from(`${item.mode} ${type} ${item.oid}\t`), Buffer.from(item.name), Buffer.from([0]))
      }
    })
    const run = await this.git(['mktree', '-z', '--batch'], { input: Buffer.concat(parts) })
    const got = run.stdout.toString('utf8').trim().split('\n')
    trees.forEach((t, i) => {
      if (got[i] !== t.oid) throw storeFailed(['mktree'], `tree id mismatch: expected ${t.oid}, git wrote ${got[i] ?? 'nothing'}`)
    })
  }

  // Looked up in the object files first (a loose object, or a pack index, newest pack
  // first): a snapshot asks this of one tree, and a git process costs far more. Only a
  // miss asks git, which also knows alternates and other object stores.
  protected async hasObject(oid: string): Promise<boolean> {
    if (!(await this.exists())) return false
    if (hasObjectFileSync(path.join(this.location.gitDir, 'objects'), oid)) return true
    return (await this.git(['cat-file', '-e', oid], { allowFail: true })).code === 0
  }

  async writeBlob(content: Buffer): Promise<string> {
    await this.ensureWritable()
    return (await this.git(['hash-object', '-w', '--no-filters', '--stdin'], { input: content })).stdout.toString('utf8').trim()
  }

  async writeCommit(input: CommitInput): Promise<string> {
    await this.ensureWritable()
    const run = await this.git(['hash-object', '-t', 'commit', '-w', '--stdin'], { input: encodeCommit(input) })
    return run.stdout.toString('utf8').trim()
  }

  async readCommit(oid: string): Promise<CommitInfo> {
    checkOid(oid)
    return parseCommit(oid, (await this.git(['cat-file', 'commit', oid])).stdout)
  }

  async listTree(treeish: string): Promise<TreeEntry[]> {
    checkOid(treeish)
    const out = (await this.git(['ls-tree', '-r', '-z', '--full-tree', treeish])).stdout
    const entries: TreeEntry[] = []
    let i = 0
    while (i < out.length) {
      const tab = out.indexOf(0x09, i)
      const nul = out.indexOf(0, tab)
      const [mode, , oid] = out.toString('latin1', i, tab).split(' ')
      const p = out.toString('utf8', tab + 1, nul)
      if (mode && oid && isFileMode(mode)) entries.push({ path: p, mode, oid })
      i = nul + 1
    }
    return entries.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)))
  }

  async readBlob(oid: string): Promise<Buffer> {
    checkOid(oid)
    return (await this.git(['cat-file', 'blob', oid])).stdout
  }

  async *readBlobs(oids: string[]): AsyncIterable<{ oid: string; content: Buffer }> {
    if (oids.length === 0) return
    oids.forEach(checkOid)
    // One process may read a whole write phase's blobs: small pack windows keep what it
    // maps bounded (with git's default windows, a rollback of 300 attachments of 4 MB
    // had 1.2 GB of the pack mapped in it at the end).
    const cat = spawnGit([...safeConfigArgs(), ...PACK_WINDOW, 'cat-file', '--batch'], { env: this.env(), cwd: this.location.gitDir })
    // The ids in a few large writes: git is then fed by the pipe while this thread is
    // busy (the write phase reads ahead while it writes files), not an id per event-loop turn.
    const feeding = (async () => {
      for (let i = 0; i < oids.length; i += FEED_IDS) await cat.write(`${oids.slice(i, i + FEED_IDS).join('\n')}\n`)
      cat.child.stdin.end()
    })()
    feeding.catch(() => {})
    // Each object's content is allocated once at the size its header announces and
    // filled in place as chunks arrive: a large blob is in memory once, never joined
    // or copied again.
    let head: Buffer = EMPTY // bytes of a header not complete yet
    let content: Buffer | null = null // the object being received
    let filled = 0
    let skipNewline = false // the newline after an object's content
    let k = 0
    try {
      for await (const chunk of cat.child.stdout as AsyncIterable<Buffer>) {
        let data = chunk
        for (;;) {
          if (content) {
            const take = Math.min(content.length - filled, data.length)
            data.copy(content, filled, 0, take)
            filled += take
            data = data.subarray(take)
            if (filled < content.length) break
            yield { oid: oids[k++] as string, content }
            content = null
            skipNewline = true
          }
          if (skipNewline) {
            if (data.length === 0) break
            data = data.subarray(1)
            skipNewline = false
          }
          if (data.length === 0) break
          head = head.length === 0 ? data : Buffer.concat([head, data])
          data = EMPTY
          const nl = head.indexOf(0x0a)
          if (nl < 0) break
          const header = head.toString('latin1', 0, nl).split(' ')
          if (header[1] === 'missing' || header.length < 3) throw missingObject(oids[k] as string, this.location.gitDir)
          content = Buffer.allocUnsafe(Number(header[2]))
          filled = 0
          data = head.subarray(nl + 1)
          head = EMPTY
        }
      }
      await feeding
      await cat.done
      if (k < oids.length) throw shortBlob(oids[k] as string, filled, content?.length ?? 0, this.location.gitDir)
    } finally {
      if (k < oids.length) cat.child.kill()
    }
  }

  // `cat-file --batch` for one object, its content piped to the destination chunk by
  // chunk as git writes it. git streams a loose blob, and a packed one stored whole when
  // it is above core.bigFileThreshold (default 512 MiB; below, git inflates it in memory
  // first): the threshold is lowered to ours for this read only.
  async readBlobToFile(oid: string, dest: BlobDestination, { onSize, onData }: ReadBlobToFileOptions = {}): Promise<number> {
    checkOid(oid)
    const gitDir = this.location.gitDir
    const sink = await openBlobSink(dest)
    const cat = spawnGit([...safeConfigArgs(), ...PACK_WINDOW, '-c', `core.bigFileThreshold=${BIG_BLOB_BYTES}`, 'cat-file', '--batch'], {
      env: this.env(),
      cwd: gitDir,
    })
    let size = -1
    let written = 0
    try {
      await cat.write(`${oid}\n`)
      cat.child.stdin.end()
      let head: Buffer = EMPTY
      for await (const chunk of cat.child.stdout as AsyncIterable<Buffer>) {
        let data = chunk
        if (size < 0) {
          head = head.length === 0 ? data : Buffer.concat([head, data])
          const nl = head.indexOf(0x0a)
          if (nl < 0) continue
          const header = head.toString('latin1', 0, nl).split(' ')
          if (header[1] === 'missing' || header.length < 3) throw missingObject(oid, gitDir)
          if (header[1] !== 'blob') throw notABlob(oid, header[1] as string, gitDir)
          size = Number(header[2])
          onSize?.(size)
          data = head.subarray(nl + 1)
          head = EMPTY
        }
        const take = Math.min(size - written, data.length)
        if (take <= 0) continue // the newline after the content
        const part = take === data.length ? data : data.subarray(0, take)
        onData?.(part)
        await sink.write(part)
        written += take
      }
      await cat.done.catch((err: unknown) => {
        throw this.wrapGitError(err)
      })
      if (size < 0) throw missingObject(oid, gitDir)
      if (written !== size) throw shortBlob(oid, written, size, gitDir)
      await sink.close()
      return written
    } catch (err) {
      cat.child.kill()
      await sink.abort()
      throw err
    }
  }

  async blobSizes(oids: string[]): Promise<Map<string, number>> {
    const sizes = new Map<string, number>()
    const wanted = [...new Set(oids)]
    if (wanted.length === 0) return sizes
    wanted.forEach(checkOid)
    const out = (await this.git(['cat-file', '--batch-check'], { input: wanted.map((o) => `${o}\n`).join('') })).stdout.toString('latin1')
    const lines = out.split('\n')
    wanted.forEach((oid, i) => {
      const [got, type, size] = (lines[i] ?? '').split(' ')
      if (got !== oid || type === 'missing' || size === undefined) throw missingObject(oid, this.location.gitDir)
      if (type !== 'blob') throw notABlob(oid, type as string, this.location.gitDir)
      sizes.set(oid, Number(size))
    })
    return sizes
  }

  async resolveRef(ref: string): Promise<string | null> {
    checkAasRef(ref, { write: false })
    if (!(await this.exists())) return null
    const out = await (await this.simple()).raw(['for-each-ref', '--format=%(objectname) %(refname)', ref])
    for (const line of out.split('\n')) {
      const sp = line.indexOf(' ')
      if (sp > 0 && line.slice(sp + 1) === ref) return line.slice(0, sp)
    }
    return null
  }

  async updateRef(ref: string, newOid: string, expectedOld: string | null): Promise<void> {
    checkAasRef(ref, { write: true })
    checkOid(newOid)
    if (expectedOld !== null) checkOid(expectedOld)
    await this.ensureWritable()
    const run = await this.git(['update-ref', '-m', 'aas-migrate', ref, newOid, expectedOld ?? ZERO_OID], { allowFail: true })
    if (run.code !== 0) {
      const actual = await this.resolveRef(ref)
      if (actual !== expectedOld) throw refMoved(ref, expectedOld, actual)
      throw storeFailed(['update-ref', ref], run.stderr)
    }
  }

  async deleteRef(ref: string, expectedOld: string): Promise<void> {
    checkAasRef(ref, { write: true })
    checkOid(expectedOld)
    const run = await this.git(['update-ref', '-d', ref, expectedOld], { allowFail: true })
    if (run.code !== 0) {
      const actual = await this.resolveRef(ref)
      if (actual !== expectedOld) throw refMoved(ref, expectedOld, actual)
      throw storeFailed(['update-ref', '-d', ref], run.stderr)
    }
  }

  // One for-each-ref, with each commit's tree and committer time: no process per ref.
  async listRefCommits(prefix: string): Promise<RefCommit[]> {
    if (!(await this.exists())) return []
    const out = (await this.git(['for-each-ref', '--format=%(objectname) %(objecttype) %(tree) %(committerdate:raw)%00%(refname)', prefix])).stdout.toString(
      'utf8',
    )
    const refs: RefCommit[] = []
    for (const line of out.split('\n')) {
      const nul = line.indexOf('\0')
      if (nul < 0) continue
      const ref = line.slice(nul + 1)
      if (!ref.startsWith(prefix)) continue
      const [oid, type, tree, time] = line.slice(0, nul).split(' ')
      if (!oid) continue
      if (type !== 'commit' || !tree || !/^\d+$/.test(time ?? '')) {
        const c = await this.readCommit(oid) // not a commit: fails as reading it would
        refs.push({ ref, oid, tree: c.tree, timestamp: c.timestamp })
      } else refs.push({ ref, oid, tree, timestamp: Number(time) })
    }
    return refs
  }

  async listRefs(prefix: string): Promise<RefEntry[]> {
    if (!(await this.exists())) return []
    const out = await (await this.simple()).raw(['for-each-ref', '--format=%(objectname) %(refname)', prefix])
    const refs: RefEntry[] = []
    for (const line of out.split('\n')) {
      const sp = line.indexOf(' ')
      if (sp > 0 && line.slice(sp + 1).startsWith(prefix)) refs.push({ oid: line.slice(0, sp), ref: line.slice(sp + 1) })
    }
    return refs
  }
}

interface BlobObserver {
  start(n: number, size: number, known: string | null): void // known: the id the source gave
  data(chunk: Buffer): void
  end(n: number): void
}

// A blob whose file failed part-way (cut short, grown, unreadable) after fast-import was
// told its size: the rest of the announced size is sent as zeros, so fast-import never
// ends inside a blob's data. One that does (git 2.39, a blob streamed past
// core.bigFileThreshold) can leave a pack whose index disagrees with it: `git fsck`
// then reports an index CRC mismatch for the pack's first object. A failure here means
// git is gone; the caller's error is the one to report.
async function completeCutShortBlob(fi: ReturnType<typeof spawnGit>, missing: number): Promise<void> {
  try {
    for (let left = missing; left > 0; left -= ZEROS.length) await fi.write(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left))
    await fi.write(NEWLINE)
  } catch {}
}

const ZEROS = Buffer.alloc(STREAM_CHUNK_BYTES)

// A path as fast-import reads it: C-style quoted when it has a quote, a backslash or a
// control character (a newline would end the command), else as is (UTF-8).
export function fastImportPath(p: string): string {
  if (!/["\\\x00-\x1f\x7f]/.test(p)) return p
  let q = '"'
  for (const ch of p) {
    const c = ch.charCodeAt(0)
    if (ch === '"' || ch === '\\') q += `\\${ch}`
    else if (ch === '\n') q += '\\n'
    else if (ch === '\t') q += '\\t'
    else if (c < 0x20 || c === 0x7f) q += `\\${c.toString(8).padStart(3, '0')}`
    else q += ch
  }
  return `${q}"`
}

// simple-git vets the whole environment (EDITOR, PAGER, ...): hand it only what git needs.
function minimalEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of ['PATH', 'HOME', 'LC_ALL', 'TMPDIR', ...ENV_NAMES]) {
    const v = env[k]
    if (v !== undefined) out[k] = v
  }
  return out
}

// Whether an object is a loose file or listed in a pack index (v2) below objectsDir;
// false also when an index cannot be read (the caller then asks git).
export function hasObjectFileSync(objectsDir: string, oid: string): boolean {
  try {
    statSync(path.join(objectsDir, oid.slice(0, 2), oid.slice(2)))
    return true
  } catch {
    // not loose
  }
  const packDir = path.join(objectsDir, 'pack')
  let idx: Array<{ file: string; mtimeMs: number }>
  try {
    idx = readdirSync(packDir)
      .filter((n) => n.endsWith('.idx'))
      .map((n) => ({ file: path.join(packDir, n), mtimeMs: statSync(path.join(packDir, n)).mtimeMs }))
  } catch {
    return false
  }
  idx.sort((a, b) => b.mtimeMs - a.mtimeMs)
  const want = Buffer.from(oid, 'hex')
  for (const { file } of idx) {
    try {
      if (packIndexHas(file, want)) return true
    } catch {
      return false
    }
  }
  return false
}

// Binary search of a version-2 pack index: magic, version, 256 fan-out counts, sorted ids.
function packIndexHas(file: string, want: Buffer): boolean {
  const fd = openSync(file, 'r')
  try {
    const head = Buffer.allocUnsafe(8 + 256 * 4)
    if (readSync(fd, head, 0, head.length, 0) !== head.length) return false
    if (head.readUInt32BE(0) !== 0xff744f63 || head.readUInt32BE(4) !== 2) return false
    const first = want[0] as number
    let lo = first === 0 ? 0 : head.readUInt32BE(8 + (first - 1) * 4)
    let hi = head.readUInt32BE(8 + first * 4)
    const id = Buffer.allocUnsafe(20)
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (readSync(fd, id, 0, 20, head.length + mid * 20) !== 20) return false
      const c = id.compare(want)
      if (c === 0) return true
      if (c < 0) lo = mid + 1
      else hi = mid
    }
    return false
  } finally {
    closeSync(fd)
  }
}

export function checkOid(oid: string): void {
  if (!/^[0-9a-f]{40}$/.test(oid)) {
    throw new AasError('REF_INVALID', `${JSON.stringify(oid)} is not a full object id.`, { hint: 'Pass a 40-hex object id.', data: { oid } })
  }
}

export function noStore(gitDir: string): AasError {
  return new AasError('SNAPSHOT_NOT_FOUND', `There is no store at ${gitDir} yet.`, {
    hint: 'Take a snapshot first (aas-migrate --to vN), or import one with --import-snapshot FILE.',
    data: { gitDir },
  })
}
