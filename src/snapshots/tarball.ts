import { createReadStream, createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { createGunzip, createGzip } from 'node:zlib'

// A minimal tar reader and writer (ustar + pax), so that import can vet every raw
// member header before anything is written, and export can stream blobs from the store.

export type TarMemberKind = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo' | 'other'

export interface TarMember {
  name: string // as recorded (pax path wins over the ustar name)
  kind: TarMemberKind
  mode: number
  size: number
  mtime: number
  linkname: string
  content: Buffer | null // regular files only (when read with content)
}

const KINDS: Record<string, TarMemberKind> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
}

function octal(buf: Buffer, start: number, len: number): number {
  const field = buf.subarray(start, start + len)
  if ((field[0] ?? 0) & 0x80) {
    let v = 0
    for (let i = 1; i < field.length; i++) v = v * 256 + (field[i] ?? 0)
    return v
  }
  const s = field.toString('latin1').replace(/\0.*$/s, '').trim()
  return s === '' ? 0 : parseInt(s, 8)
}

function cstr(buf: Buffer, start: number, len: number): string {
  const field = buf.subarray(start, start + len)
  const nul = field.indexOf(0)
  return field.toString('utf8', 0, nul < 0 ? field.length : nul)
}

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  let i = 0
  while (i < body.length) {
    const sp = body.indexOf(0x20, i)
    if (sp < 0) break
    const len = Number(body.toString('latin1', i, sp))
    if (!Number.isFinite(len) || len <= 0) break
    const rec = body.toString('utf8', sp + 1, i + len - 1)
    const eq = rec.indexOf('=')
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1)
    i += len
  }
  return out
}

export class TarFormatError extends Error {}

// Members of a .tar.gz in order; file contents are read only when withContent is set.
export async function* readTarGz(file: string, { withContent = true }: { withContent?: boolean } = {}): AsyncGenerator<TarMember> {
  const stream = createReadStream(file).pipe(createGunzip())
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  let buf: Buffer = Buffer.alloc(0)
  let ended = false
  const need = async (n: number): Promise<boolean> => {
    while (buf.length < n && !ended) {
      const r = await it.next()
      if (r.done) ended = true
      else buf = buf.length === 0 ? r.value : Buffer.concat([buf, r.value])
    }
    return buf.length >= n
  }
  const take = async (n: number): Promise<Buffer> => {
    if (!(await need(n))) throw new TarFormatError('unexpected end of archive')
    const out = Buffer.from(buf.subarray(0, n))
    buf = buf.subarray(n)
    return out
  }
  const skip = async (n: number): Promise<void> => {
    while (n > 0) {
      if (!(await need(1))) throw new TarFormatError('unexpected end of archive')
      const k = Math.min(n, buf.length)
      buf = buf.subarray(k)
      n -= k
    }
  }
  let pax: Record<string, string> = {}
  let longName: string | null = null
  let longLink: string | null = null
  try {
    for (;;) {
      if (!(await need(512))) return
      const h = await take(512)
      if (h.every((b) => b === 0)) return
      let sum = 0
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number)
      if (sum !== octal(h, 148, 8)) throw new TarFormatError('bad header checksum')
      const flag = String.fromCharCode(h[156] as number)
      let size = octal(h, 124, 12)
      const padded = Math.ceil(size / 512) * 512
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        const body = (await take(padded)).subarray(0, size)
        if (flag === 'x') pax = parsePax(body)
        else if (flag === 'L') longName = cstr(body, 0, body.length)
        else if (flag === 'K') longLink = cstr(body, 0, body.length)
        continue
      }
      const prefix = h.toString('latin1', 257, 262) === 'ustar' ? cstr(h, 345, 155) : ''
      let name = pax.path ?? longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100))
      const linkname = pax.linkpath ?? longLink ?? cstr(h, 157, 100)
      if (pax.size !== undefined) size = Number(pax.size)
      const kind = KINDS[flag] ?? 'other'
      const dataLen = kind === 'file' || kind === 'other' ? size : 0
      const dataPadded = Math.ceil(dataLen / 512) * 512
      let content: Buffer | null = null
      if (kind === 'file' && withContent) {
        content = (await take(dataPadded)).subarray(0, dataLen)
      } else await skip(dataPadded)
      if (name === '') name = ''
      yield { name, kind, mode: octal(h, 100, 8), size: dataLen, mtime: octal(h, 136, 12), linkname, content }
      pax = {}
      longName = null
      longLink = null
    }
  } finally {
    stream.destroy()
  }
}

export interface TarWriteEntry {
  name: string
  kind: 'file' | 'directory' | 'symlink'
  mode: number
  mtime: number
  linkname?: string
  content?: Buffer
}

function header(name: string, kind: string, mode: number, size: number, mtime: number, linkname: string): Buffer {
  const h = Buffer.alloc(512)
  const put = (s: string, at: number, len: number): void => void h.write(s, at, len, 'utf8')
  const num = (v: number, at: number, len: number): void => put(v.toString(8).padStart(len - 1, '0') + '\0', at, len)
  put(name, 0, 100)
  num(mode & 0o7777, 100, 8)
  num(0, 108, 8)
  num(0, 116, 8)
  num(size, 124, 12)
  num(Math.max(0, Math.floor(mtime)), 136, 12)
  h.fill(0x20, 148, 156)
  put(kind, 156, 1)
  put(linkname, 157, 100)
  put('ustar\0', 257, 6)
  put('00', 263, 2)
  let sum = 0
  for (const b of h) sum += b
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8)
  return h
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`
  let len = Buffer.byteLength(body)
  len += String(len).length
  if (String(len).length !== String(len - String(len).length).length) len++
  return Buffer.from(`${len}${body}`)
}

const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512)

// Write a .tar.gz from entries (pulled lazily); long or non-ASCII names use pax headers.
export async function writeTarGz(out: string, entries: AsyncIterable<TarWriteEntry>): Promise<void> {
  const gz = createGzip()
  const file = createWriteStream(out, { flags: 'wx' })
  gz.pipe(file)
  const write = async (b: Buffer): Promise<void> => {
    if (!gz.write(b)) await once(gz, 'drain')
  }
  const closed = once(file, 'close')
  for await (const e of entries) {
    const flag = e.kind === 'file' ? '0' : e.kind === 'directory' ? '5' : '2'
    const link = e.linkname ?? ''
    const size = e.kind === 'file' ? (e.content?.length ?? 0) : 0
    const ascii = (s: string): boolean => /^[\x20-\x7e]*$/.test(s)
    if (Buffer.byteLength(e.name) > 99 || !ascii(e.name) || Buffer.byteLength(link) > 99 || !ascii(link)) {
      const recs = Buffer.concat([paxRecord('path', e.name), ...(link ? [paxRecord('linkpath', link)] : [])])
      await write(header('PaxHeader', 'x', 0o644, recs.length, e.mtime, ''))
      await write(recs)
      await write(pad(recs.length))
    }
    await write(header(Buffer.from(e.name).subarray(0, 99).toString('latin1'), flag, e.mode, size, e.mtime, Buffer.from(link).subarray(0, 99).toString('latin1')))
    if (size > 0 && e.content) {
      await write(e.content)
      await write(pad(size))
    }
  }
  await write(Buffer.alloc(1024))
  gz.end()
  await closed
}
