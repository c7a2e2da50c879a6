import { describe, expect, it } from 'vitest'
import { settled } from '../src/settled.js'

describe('settled', () => {
  it('when the work succeeds then asking gives its value', async () => {
    const outcome = await settled(Promise.resolve(42))
    expect(outcome()).toBe(42)
  })

  it('when the work fails then asking throws its error, and until then nothing is unhandled', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason)
    }
    process.on('unhandledRejection', onUnhandled)
    try {
      const failure = new Error('listing failed')
      const pending = settled(Promise.reject(failure))
      // Two turns of the event loop: an unhandled rejection would be reported by now.
      await new Promise((resolve) => setTimeout(resolve, 10))
      await new Promise((resolve) => setImmediate(resolve))
      expect(unhandled).toEqual([])
      const outcome = await pending
      expect(() => outcome()).toThrow(failure)
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})
