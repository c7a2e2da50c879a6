import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { AasError, type AasErrorCode } from '../errors.js'
import { startModuleWorker } from '../module-worker.js'
import type { Touched } from './claim-write.js'
import {
  DONE,
  STOP,
  type PostedItem,
  type SerializedFailure,
  type WriteItem,
  type WriteWorkerData,
  type WriteWorkerMessage,
  type WriteWorkerReply,
} from './write-worker.js'

// A second thread for the write phase of a big transaction. On these file systems the
// cost of a write phase is the kernel's: creating each new file and freeing each
// replaced one, work a second core does alongside the first. The helper writes the
// plain modifications it is sent by the same claim protocol; the main thread writes
// the rest. Either thread raising the shared stop flag (a path moved, a write failed)
// stops both before their next path; the report says which paths the helper started,
// so that the undo covers exactly the paths either thread touched.

// Default: a helper when the machine has a second core and the phase has at least this
// many paths. AAS_WRITE_THREADS=1 turns it off; =2 uses it for any size (tests).
const MIN_PATHS = 400
// How far the helper may fall behind the main thread, in paths sent but not done, and
// in their bytes (each path's new bytes wait in the helper's queue until written).
const MAX_BEHIND = 1024
const MAX_BEHIND_BYTES = 32 * 1024 * 1024

export function useWriteHelper(paths: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const requested = env.AAS_WRITE_THREADS?.trim()
  if (requested === '1') return false
  if (requested === '2') return true
  return availableParallelism() >= 2 && paths >= MIN_PATHS
}

export interface HelperReport {
  attempted: number[]
  moved: number[]
  failure: { index: number; error: AasError } | null
  written: number
}

export class WriteHelper {
  readonly #worker: Worker
  readonly #flags: Int32Array
  // [k]: the new bytes of the first k paths sent (its length less one: the paths sent).
  readonly #sentBytes: number[] = [0]
  #progress: (() => void) | null = null
  #report: Promise<WriteWorkerReply & { type: 'report' }>
  #crash: Error | null = null

  constructor(options: { root: string; runId: string; faultName: string }) {
    const shared = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT)
    this.#flags = new Int32Array(shared)
    const data: WriteWorkerData = { ...options, shared }
    this.#worker = startModuleWorker(import.meta.url, 'write-worker', { workerData: data })
    this.#report = new Promise((resolve, reject) => {
      this.#worker.on('message', (reply: WriteWorkerReply) => {
        if (reply.type === 'report') resolve(reply)
        else this.#wake()
      })
      this.#worker.on('error', (err) => {
        this.#crash = err
        this.stop()
        this.#wake()
        reject(err)
      })
      this.#worker.on('exit', () => {
        this.#wake()
        reject(this.#crash ?? new Error('the write helper exited before its report'))
      })
    })
    this.#report.catch(() => undefined) // observed by finish()
  }

  // Paths the helper has finished (or skipped after a stop).
  get done(): number {
    return Atomics.load(this.#flags, DONE)
  }

  get stopped(): boolean {
    return Atomics.load(this.#flags, STOP) !== 0
  }

  stop(): void {
    Atomics.store(this.#flags, STOP, 1)
  }

  // Hand the helper paths to write; waits while it is more than MAX_BEHIND paths, or
  // MAX_BEHIND_BYTES of new bytes, behind. It writes them in the order sent.
  async send(items: WriteItem[]): Promise<void> {
    if (items.length === 0) return
    const sent = this.#sentBytes
    const behind = (): boolean => {
      const done = this.done
      return sent.length - 1 - done > MAX_BEHIND || (sent.at(-1) as number) - (sent[done] as number) > MAX_BEHIND_BYTES
    }
    while (behind() && this.#crash === null) await new Promise<void>((resolve) => (this.#progress = resolve))
    if (this.#crash !== null) return
    const bytes = Buffer.allocUnsafeSlow(items.reduce((n, item) => n + item.content.length, 0))
    const posted: PostedItem[] = []
    let at = 0
    for (const item of items) {
      posted.push({ index: item.index, change: item.change, at, length: item.content.length })
      at += item.content.copy(bytes, at)
      sent.push((sent.at(-1) as number) + item.content.length)
    }
    const message: WriteWorkerMessage = { type: 'items', items: posted, bytes: bytes.buffer as ArrayBuffer }
    this.#worker.postMessage(message, [bytes.buffer as ArrayBuffer])
  }

  // Waits for the helper to finish what it was sent; its report, with the files and
  // directories it touched merged into `touched`. A helper that died reports every path
  // it was sent as started (the undo then checks them all) and its error as the failure.
  async finish(touched: Touched, sentIndices: readonly number[]): Promise<HelperReport> {
    this.#worker.postMessage({ type: 'end' } satisfies WriteWorkerMessage)
    try {
      const r = await this.#report
      for (const f of r.files) touched.files.add(f)
      for (const d of r.dirs) touched.dirs.add(d)
      return { attempted: r.attempted, moved: r.moved, failure: r.failure ? { index: r.failure.index, error: revive(r.failure) } : null, written: r.written }
    } catch (err) {
      const error = new AasError('INTERNAL', `The write helper thread failed: ${err instanceof Error ? err.message : String(err)}`, {
        hint: 'Run the command again with AAS_WRITE_THREADS=1 and report this.',
        cause: err,
      })
      return { attempted: [...sentIndices], moved: [], failure: { index: sentIndices[0] ?? 0, error }, written: 0 }
    } finally {
      await this.#worker.terminate()
    }
  }

  #wake(): void {
    const wake = this.#progress
    this.#progress = null
    wake?.()
  }
}

function revive(f: SerializedFailure): AasError {
  if (f.code === null) return new AasError('INTERNAL', `A write failed unexpectedly: ${f.message}`, { data: f.data })
  return new AasError(f.code as AasErrorCode, f.message, { ...(f.hint ? { hint: f.hint } : {}), data: f.data })
}
