import { constants, Deflate, Inflate } from 'minizlib'

// A pack entry's zlib stream, made or read one object at a time on one zlib stream of
// this thread, reset between objects. node:zlib's deflateSync and inflateSync build a
// stream object (a Transform, with its states and listeners) and a zlib state for each
// call: for 10,000 notes of about 2 KiB, deflateSync took 269–287 ms of CPU against
// 229–258 ms here, inflateSync 107–121 ms against 75–83 ms (docs/performance.md).
// minizlib drives node's zlib binding synchronously and keeps it open between calls.

interface Reused {
  z: Deflate | Inflate
  out: Buffer[]
}

function reusable(make: () => Deflate | Inflate): Reused {
  const out: Buffer[] = []
  const z = make()
  z.on('data', (chunk: Buffer) => out.push(chunk))
  return { z, out }
}

let deflater: Reused | null = null
let inflater: Reused | null = null

// The whole of `input` through the stream, ended (Z_FINISH), then the stream reset. A
// failed stream is dropped (minizlib closes it): the next call makes a new one.
function through(r: Reused, input: Buffer, drop: () => void): Buffer {
  try {
    r.z.write(input)
    r.z.reset()
  } catch (err) {
    drop()
    throw err
  }
  const got = r.out.length === 1 ? (r.out[0] as Buffer) : Buffer.concat(r.out)
  r.out.length = 0
  return got
}

// `content` as one zlib stream, compression level 1 (as git is told to pack here).
export function deflateObject(content: Buffer): Buffer {
  deflater ??= reusable(() => new Deflate({ level: 1, flush: constants.Z_FINISH }))
  return through(deflater, content, () => (deflater = null))
}

// The bytes of the zlib stream at the start of `body` (what follows it is ignored); a
// stream that ends early or is damaged throws.
export function inflateObject(body: Buffer): Buffer {
  inflater ??= reusable(() => new Inflate({ flush: constants.Z_FINISH }))
  return through(inflater, body, () => (inflater = null))
}
