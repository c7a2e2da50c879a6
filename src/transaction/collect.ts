import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

// A full garbage collection, at the boundary between two phases of a long run: V8 lets
// a heap grow to a few times what is alive before it collects, so a phase that has just
// dropped a whole vault's worth of texts and buffers would otherwise carry that garbage
// into the next phase's peak. (Node exposes gc only behind --expose-gc; the flag can be
// set at run time, and a new context then sees the function.)
let gc: (() => void) | null | undefined

export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      gc = runInNewContext('gc') as () => void
    } catch {
      gc = null
    }
  }
  gc?.()
}

// Collects after every `every` units of work reported with tick(n): the heap of a long
// phase then holds what is alive plus at most that much garbage.
export function collector(every = 8000): (n: number) => void {
  let since = 0
  return (n) => {
    since += n
    if (since < every) return
    since = 0
    collectGarbage()
  }
}
