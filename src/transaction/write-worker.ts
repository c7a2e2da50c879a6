import path from 'node:path'
import { parentPort, workerData } from 'node:worker_threads'
import { AasError } from '../errors.js'
import type { VerifiedDirs } from './atomic-write.js'
import { claimAndPlaceSync, newTouched } from './claim-write.js'
import { faultPoint } from './faults.js'
import type { JournalChange } from './journal.js'

// The write helper's thread (write-helper.ts): it writes the paths it is sent by the
// claim protocol, exactly as the main thread writes its own, and stops at the first
// path that moved or failed, or as soon as either thread raises the shared stop flag.

export interface WriteWorkerData {
  root: string
  runId: string
  faultName: string
  shared: SharedArrayBuffer // Int32Array: [STOP, DONE]
}

export const STOP = 0 // non-zero: no thread starts another path
export const DONE = 1 // paths the helper has finished or skipped

// A plain modification: regular file to regular file, its new bytes in memory.
export interface WriteItem {
  index: number // the path's position in the journal
  change: JournalChange
  content: Buffer
}

// Items as posted: their contents one after another in `bytes` (transferred, not
// copied: a Buffer posted on its own is cloned with all of the memory it is a view of,
// often a pool or zlib chunk several times its size), each item's from offset `at`.
export interface PostedItem {
  index: number
  change: JournalChange
  at: number
  length: number
}

export type WriteWorkerMessage = { type: 'items'; items: PostedItem[]; bytes: ArrayBuffer } | { type: 'end' }

export interface SerializedFailure {
  index: number
  code: string | null // an AasError's code; null for anything else (reported as a bug)
  message: string
  hint?: string
  data: Record<string, unknown>
}

export type WriteWorkerReply =
  | { type: 'progress' }
  | {
      type: 'report'
      attempted: number[] // journal indices of the paths it started, in order
      moved: number[] // those refused because the live path was not the old state: nothing of ours is at them
      failure: SerializedFailure | null // a path whose write failed: it may hold a claim
      written: number
      files: string[] // what the write phase must make durable
      dirs: string[]
    }

function serialize(index: number, err: unknown): SerializedFailure {
  if (err instanceof AasError) return { index, ...err.toJSON() }
  return { index, code: null, message: err instanceof Error ? err.message : String(err), data: {} }
}

if (parentPort !== null) {
  const port = parentPort
  const { root, runId, faultName, shared } = workerData as WriteWorkerData
  const flags = new Int32Array(shared)
  const touched = newTouched()
  const verified: VerifiedDirs = new Set()
  const attempted: number[] = []
  const moved: number[] = []
  let failure: SerializedFailure | null = null
  let written = 0
  port.on('message', (message: WriteWorkerMessage) => {
    if (message.type === 'end') {
      const report: WriteWorkerReply = { type: 'report', attempted, moved, failure, written, files: [...touched.files], dirs: [...touched.dirs] }
      port.postMessage(report)
      port.close()
      return
    }
    for (const { index, change, at, length } of message.items) {
      if (Atomics.load(flags, STOP) === 0) {
        faultPoint(faultName, index + 1)
        attempted.push(index)
        const abs = path.join(root, ...change.path.split('/'))
        touched.dirs.add(path.dirname(abs))
        try {
          const bytes = Buffer.from(message.bytes, at, length)
          const outcome = claimAndPlaceSync(root, abs, change, bytes, null, runId, touched, index + 1, verified)
          if (outcome === 'moved') {
            moved.push(index)
            Atomics.store(flags, STOP, 1)
          } else written++
        } catch (err) {
          failure = serialize(index, err)
          Atomics.store(flags, STOP, 1)
        }
      }
      Atomics.add(flags, DONE, 1)
    }
    port.postMessage({ type: 'progress' } satisfies WriteWorkerReply)
  })
}
