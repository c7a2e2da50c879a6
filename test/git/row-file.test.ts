import { describe, expect, it } from 'vitest'
import { decodeRowFile, encodeRowFile, patchRowFile, type RowWriter } from '../../src/git/row-file.js'

// The row file the store's caches share: a file patched in some rows must be, byte for
// byte, the file encoded whole with those rows' new values.

const MAGIC = Buffer.from('AASTEST\x01', 'latin1')
const paths = ['a/memory/one.md', 'a/wiki/ä.md', 'b/memory/three.md', 'c.md']

interface Row {
  nums: [number, number, number]
  oid: string
  bytes: [number, number]
}

const rows: Row[] = paths.map((_, i) => ({ nums: [i, i + 0.5, -i], oid: String(i).repeat(40), bytes: [i, 255 - i] }))

function writeRow(w: RowWriter, i: number, r: Row): void {
  r.nums.forEach((v, c) => w.num(c, i, v))
  w.oid(i, r.oid)
  r.bytes.forEach((v, c) => w.byte(c, i, v))
}

describe('patchRowFile', () => {
  it('when some rows are rewritten then the file is the one encoded whole with their new values', () => {
    const meta = { engine: 'test', errors: [[1, 'bad', 2, 3]] }
    const file = encodeRowFile(MAGIC, meta, paths, 3, 2, (w) => rows.forEach((r, i) => writeRow(w, i, r)))
    const changed: Row[] = rows.map((r, i) => (i === 1 || i === 3 ? { nums: [100 + i, 1e300, 0.1], oid: 'f'.repeat(40), bytes: [7, 9] } : r))
    const patched = patchRowFile(file, 3, 2, (w) => {
      for (const i of [1, 3]) writeRow(w, i, changed[i] as Row)
    })
    const whole = encodeRowFile(MAGIC, meta, paths, 3, 2, (w) => changed.forEach((r, i) => writeRow(w, i, r)))
    expect(patched.equals(whole)).toBe(true)
    expect(patched.equals(file)).toBe(false)
    expect(file.equals(encodeRowFile(MAGIC, meta, paths, 3, 2, (w) => rows.forEach((r, i) => writeRow(w, i, r))))).toBe(true) // the original is untouched
    const decoded = decodeRowFile(patched, MAGIC, 3, 2)
    expect(decoded?.paths).toEqual(paths)
    expect(decoded?.oids.toString('hex', 20, 40)).toBe('f'.repeat(40))
    expect(decoded?.nums[4 * 1 + 1]).toBe(1e300) // column 1 of row 1
  })
})
