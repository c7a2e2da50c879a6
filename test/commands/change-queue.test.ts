import { describe, expect, it } from 'vitest'
import { ChangeQueue } from '../../src/commands/migrate/chain.js'

// The queue between the chain and the result commit's git: the chain waits (room())
// while more than the limit's bytes are not yet taken, and never waits on a queue whose
// reader has stopped or that has ended or failed.

const change = (n: number, bytes: number) => ({ path: `u${n}.md`, mode: '100644' as const, content: Buffer.alloc(bytes, 97) })

// Whether a promise has settled after the event loop turned.
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false
  void p.then(() => (done = true))
  await new Promise((resolve) => setImmediate(resolve))
  return done
}

describe('ChangeQueue', () => {
  it('when more than the limit is waiting then room() waits until the reader takes enough', async () => {
    const q = new ChangeQueue(100)
    q.push(change(1, 60))
    expect(await settled(q.room())).toBe(true) // 60 ≤ 100
    q.push(change(2, 60))
    const room = q.room()
    expect(await settled(room)).toBe(false) // 120 > 100
    const reader = q[Symbol.asyncIterator]()
    expect((await reader.next()).value?.path).toBe('u1.md') // 60 left
    expect(await settled(room)).toBe(true)
    expect((await reader.next()).value?.path).toBe('u2.md')
    q.end()
    expect((await reader.next()).done).toBe(true)
  })

  it('when the limit is 0 then room() waits until every change was taken', async () => {
    const q = new ChangeQueue(0)
    q.push(change(1, 1))
    q.push(change(2, 1))
    const room = q.room()
    const reader = q[Symbol.asyncIterator]()
    await reader.next()
    expect(await settled(room)).toBe(false)
    await reader.next()
    expect(await settled(room)).toBe(true)
  })

  it('when the queue ends, fails or its reader stops then room() stops waiting', async () => {
    for (const stop of ['end', 'fail', 'reader'] as const) {
      const q = new ChangeQueue(10)
      q.push(change(1, 50))
      q.push(change(2, 50))
      const reader = q[Symbol.asyncIterator]()
      await reader.next() // the reader has started (as a result commit's git would), 50 left
      const room = q.room()
      expect(await settled(room)).toBe(false)
      if (stop === 'end') q.end()
      else if (stop === 'fail') q.fail(new Error('git died'))
      else await reader.return(undefined)
      expect({ stop, settled: await settled(room) }).toEqual({ stop, settled: true })
      expect({ stop, after: await settled(q.room()) }).toEqual({ stop, after: true })
    }
  })

  it('when changes are pushed while the reader waits then it gets them in order', async () => {
    const q = new ChangeQueue(1000)
    const got: string[] = []
    const reading = (async () => {
      for await (const c of q) got.push(c.path)
    })()
    for (let i = 0; i < 5; i++) {
      q.push(change(i, 10))
      await new Promise((resolve) => setImmediate(resolve))
    }
    q.push(change(5, 10))
    q.push({ path: 'gone.md', delete: true })
    q.end()
    await reading
    expect(got).toEqual(['u0.md', 'u1.md', 'u2.md', 'u3.md', 'u4.md', 'u5.md', 'gone.md'])
  })
})
