import { randomBytes } from 'node:crypto'
import { deflateSync, inflateSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { deflateObject, inflateObject } from '../../src/git/object-zlib.js'

// One zlib stream per thread, reset between objects (src/git/object-zlib.ts): every
// object must come out as if it had a stream of its own, whatever came before it.

const samples = (): Buffer[] => [
  Buffer.alloc(0),
  Buffer.from('---\nschema_version: 1\n---\na note\n'),
  randomBytes(40_000), // more than one 16 KiB output chunk, barely compressible
  Buffer.from('the same line again\n'.repeat(20_000)), // 400 KB that compresses well
  Buffer.from('short\r\n'),
]

describe('deflating and inflating one object at a time on a reused stream', () => {
  it('when objects of every size are deflated one after another then each is a whole zlib stream of its own bytes, at level 1', () => {
    for (let round = 0; round < 3; round++) {
      for (const content of samples()) {
        const body = deflateObject(content)
        expect(inflateSync(body).equals(content)).toBe(true)
        expect(body.subarray(0, 2).toString('hex')).toBe('7801') // zlib header: deflate, 32 KiB window, fastest
      }
    }
  })

  it('when streams are inflated one after another, with bytes after each (the next pack entry), then each gives its own bytes', () => {
    const contents = samples()
    const bodies = contents.map((c) => deflateSync(c, { level: 6 }))
    for (let round = 0; round < 3; round++) {
      contents.forEach((content, i) => {
        const followed = Buffer.concat([bodies[i] as Buffer, Buffer.from([0x93, 0x0b, 0x78, 0x01, 0xff])])
        expect(inflateObject(followed).equals(content)).toBe(true)
      })
    }
  })

  it('when a stream is damaged or cut short then inflating it throws, and the next object inflates again', () => {
    const good = Buffer.from('a note that survives its neighbour\n'.repeat(50))
    const body = deflateObject(good)
    expect(() => inflateObject(body.subarray(0, body.length >> 1))).toThrow(/unexpected end of file/)
    expect(inflateObject(body).equals(good)).toBe(true)
    expect(() => inflateObject(Buffer.from('not a zlib stream at all'))).toThrow(/incorrect header check/)
    expect(inflateObject(body).equals(good)).toBe(true)
    expect(deflateObject(good).equals(body)).toBe(true)
  })
})
