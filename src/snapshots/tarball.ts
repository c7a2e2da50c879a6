import { once } from 'node:events'
import { createReadStream, createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { createGunzip, createGzip } from 'node:zlib'
import { Header } from 'tar/header'
import { Parser } from 'tar/parse'
import { Pax } from 'tar/pax'
import type { ReadEntry } from 'tar/read-entry'

// The .tar.gz format of --export-snapshot and --import-snapshot, on node-tar (`tar`,
// the tar code npm itself uses) rather than a reader and writer of our own:
// - its Parser hands over each member's header (ustar prefix, pax and GNU long names
//   applied, checksum checked, pax records never applied to the wrong header) before a
//   byte of the member, which is all the importer vets: absolute paths, `..`, links
//   leaving the vault, device files. Its extract is not used: it writes as it reads.
// - its Header and Pax write ustar, with a pax record when a name does not fit or is
//   not ASCII, which tar(1) and Python's tarfile (the Python runner) read. Its create is
//   not used: it reads files from disk, and our members come from the store.
// - the reader it replaced joined every chunk of a member onto the bytes before it: a
//   200 MB member was still importing after 10 minutes of CPU (quadratic copying);
//   here contents are streamed, and big ones never held whole (see import-tarball.ts).
// Gzip is node:zlib's on both sides, streamed with backpressure and off the main
// thread; node-tar's own gunzip would refuse a genuine export at a 1000:1 ratio (a
// large, very compressible file).

export type TarMemberKind = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo' | 'other'

export interface TarMember {
  name: string // as recorded (a pax path wins over the ustar name)
  kind: TarMemberKind
  mode: number
  size: number // a regular file's content length, else 0
  linkname: string
}

export interface TarEntry extends TarMember {
  // The member's content in chunks. Read it, if at all, before asking for the next
  // member: what is left unread is skipped.
  content(): AsyncGenerator<Buffer>
}

export class TarFormatError extends Error {}

const KINDS: Partial<Record<string, TarMemberKind>> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'directory',
  SymbolicLink: 'symlink',
  Link: 'hardlink',
  CharacterDevice: 'char-device',
  BlockDevice: 'block-device',
  FIFO: 'fifo',
}

function toMember(e: ReadEntry, ignored: boolean): TarMember {
  const kind = ignored ? 'other' : (KINDS[e.type] ?? 'other')
  return { name: e.path, kind, mode: e.mode ?? 0, size: kind === 'file' ? e.size : 0, linkname: e.linkpath ?? '' }
}

type ParseEvent = { member: TarMember } | { chunk: Buffer } | { end: true }

// The parser's events in archive order (a member, its chunks, its end). node-tar parses
// synchronously inside write(), so the events of one gunzipped chunk are all queued
// when write() returns: memory stays at a chunk, whatever the members' sizes.
async function* parseEvents(file: string, withContent: boolean): AsyncGenerator<ParseEvent> {
  const events: ParseEvent[] = []
  let failure: Error | null = null
  let sawEof = false
  // strict: a bad checksum, a truncated member or a missing link target is an error,
  // not a warning; no brotli or zstd sniffing of what is already gunzipped.
  const parser = new Parser({ strict: true, brotli: false, zstd: false })
  parser.on('entry', (e: ReadEntry) => {
    events.push({ member: toMember(e, false) })
    if (!withContent) return void e.resume() // flowing without a listener: its chunks are dropped
    e.on('data', (chunk: Buffer) => events.push({ chunk }))
    e.on('end', () => events.push({ end: true }))
  })
  // A type node-tar does not know (or an oversized pax header): reported as 'other'.
  parser.on('ignoredEntry', (e: ReadEntry) => events.push({ member: toMember(e, true) }, ...(withContent ? [{ end: true as const }] : [])))
  parser.on('eof', () => {
    sawEof = true
  })
  parser.on('error', (err: Error) => {
    failure ??= err
  })
  const source = createReadStream(file)
  const gunzip = createGunzip({ chunkSize: 128 * 1024 })
  source.on('error', (err) => gunzip.destroy(err))
  const chunks = (source.pipe(gunzip) as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
  try {
    for (;;) {
      // A read or gunzip failure (not gzip, truncated) is a format error too.
      const r = await chunks.next().catch((err: Error) => {
        throw new TarFormatError(err.message, { cause: err })
      })
      if (r.done) break
      parser.write(r.value)
      if (failure) throw new TarFormatError((failure as Error).message)
      yield* events.splice(0)
    }
    parser.end()
    // An archive of end blocks only (an empty vault) is valid, though node-tar calls it unrecognised.
    const empty = sawEof && /Unrecognized archive format/.test((failure as Error | null)?.message ?? '')
    if (failure && !empty) throw new TarFormatError((failure as Error).message)
    yield* events.splice(0)
  } finally {
    source.destroy()
    gunzip.destroy()
  }
}

// The members of a .tar.gz in order, each with its content on demand (without
// withContent, every content() is empty and the contents are skipped as parsed).
export async function* readTarGz(file: string, { withContent = true }: { withContent?: boolean } = {}): AsyncGenerator<TarEntry> {
  const events = parseEvents(file, withContent)
  let open = false // the current member's chunks are not all taken yet
  // The current member's next chunk, or null at its end.
  const nextChunk = async (): Promise<Buffer | null> => {
    if (!open) return null
    const r = await events.next()
    if (r.done || 'member' in r.value) throw new TarFormatError('a member ends early')
    if ('chunk' in r.value) return r.value.chunk
    open = false
    return null
  }
  async function* content(): AsyncGenerator<Buffer> {
    for (let c = await nextChunk(); c !== null; c = await nextChunk()) yield c
  }
  try {
    for (;;) {
      while ((await nextChunk()) !== null); // what the caller left unread
      const r = await events.next()
      if (r.done) return
      if (!('member' in r.value)) throw new TarFormatError('content outside a member')
      open = withContent
      yield { ...r.value.member, content }
    }
  } finally {
    await events.return(undefined)
  }
}

export interface TarWriteEntry {
  name: string
  kind: 'file' | 'directory' | 'symlink'
  mode: number
  mtime: number // seconds since the epoch
  linkname?: string // a symlink's target
  size?: number // a file's: the number of bytes `content` delivers
  content?: Buffer | AsyncIterable<Buffer>
}

const TYPES = { file: 'File', directory: 'Directory', symlink: 'SymbolicLink' } as const

// A member's header block, after a pax header when ustar cannot hold its names.
function headerBlocks(e: TarWriteEntry, size: number): Buffer {
  const mtime = new Date(Math.max(0, Math.floor(e.mtime)) * 1000)
  const linkpath = e.kind === 'symlink' ? (e.linkname ?? '') : undefined
  const block = Buffer.alloc(512)
  const header = new Header({
    path: e.name,
    type: TYPES[e.kind],
    mode: e.mode & 0o7777,
    uid: 0,
    gid: 0,
    size,
    mtime,
    uname: '',
    gname: '',
    ...(linkpath === undefined ? {} : { linkpath }),
  })
  if (!header.encode(block)) return block
  return Buffer.concat([new Pax({ path: e.name, mtime, ...(linkpath ? { linkpath } : {}) }).encode(), block])
}

const BATCH_BYTES = 256 * 1024
const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512)

// Write a .tar.gz from entries (pulled lazily). Small pieces go to gzip in batches: one
// write per header costs a zlib call each, most of an export of small notes.
export async function writeTarGz(out: string, entries: AsyncIterable<TarWriteEntry>): Promise<void> {
  const gz = createGzip()
  const done = pipeline(gz, createWriteStream(out, { flags: 'wx' }))
  done.catch(() => {})
  let batch: Buffer[] = []
  let batched = 0
  const send = async (b: Buffer): Promise<void> => {
    if (!gz.write(b)) await Promise.race([once(gz, 'drain'), done])
  }
  const flush = async (): Promise<void> => {
    if (batched === 0) return
    const all = Buffer.concat(batch, batched)
    batch = []
    batched = 0
    await send(all)
  }
  const put = async (b: Buffer): Promise<void> => {
    if (b.length >= BATCH_BYTES) {
      await flush()
      return send(b)
    }
    batch.push(b)
    batched += b.length
    if (batched >= BATCH_BYTES) await flush()
  }
  try {
    for await (const e of entries) {
      const size = e.kind === 'file' ? (e.size ?? (Buffer.isBuffer(e.content) ? e.content.length : 0)) : 0
      await put(headerBlocks(e, size))
      if (size === 0) continue
      let written = 0
      for await (const chunk of Buffer.isBuffer(e.content) ? [e.content] : (e.content ?? [])) {
        written += chunk.length
        if (written > size) break
        await put(chunk)
      }
      if (written !== size) throw new TarFormatError(`${e.name}: ${written} bytes of content for a size of ${size}`)
      await put(pad(size))
    }
    await put(Buffer.alloc(1024))
    await flush()
    gz.end()
  } catch (err) {
    gz.destroy(err as Error)
    await done.catch(() => {})
    throw err
  }
  await done
}
