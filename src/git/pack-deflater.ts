import path from 'node:path'
import type { Worker } from 'node:worker_threads'
import { startModuleWorker } from '../module-worker.js'
import type { DeflateReply, DeflateRequest, DeflateWorkerData } from './pack-deflate-worker.js'

// Hashes and deflates the blobs of a pack on a thread of its own (pack-deflate-worker.ts):
// for a snapshot of 10,000 notes that was about 0.3 s of the main thread, which also
// reads the vault and, during a migration, feeds the chain. Batches are answered in the
// order sent. The buffers that carry them go back and forth (transferred, never copied)
// and are used again: fresh memory is slow to touch on some machines.
export interface DeflatedBatch {
  oids: string[]
  entries: Buffer // the written entries, one after another
  sizes: number[] // each blob's entry length, in `entries`; 0: the store holds the blob
  crcs: number[]
}

// The least a request buffer is made: most batches fit in it.
const REQUEST_BYTES = 2 << 20

export class PackDeflater {
  readonly #worker: Worker
  readonly #waiting = new Map<number, { resolve: (b: DeflatedBatch) => void; reject: (e: Error) => void }>()
  readonly #free: ArrayBuffer[] = [] // request buffers back from the thread
  #spare: ArrayBuffer[] = [] // entry buffers done with, for the thread to fill again
  #next = 0
  #failure: Error | null = null

  constructor(packDir: string) {
    const data: DeflateWorkerData = { packDir: path.resolve(packDir) }
    // Its garbage is small and short-lived: a small young generation is collected
    // sooner (about 10 MB less peak RSS for a 10,000-note snapshot, and no slower).
    this.#worker = startModuleWorker(import.meta.url, 'pack-deflate-worker', { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 4 } })
    this.#worker.on('message', (reply: DeflateReply) => {
      const w = this.#waiting.get(reply.id)
      if (!w) return
      this.#waiting.delete(reply.id)
      this.#free.push(reply.bytes)
      if (reply.error !== undefined) return w.reject(new Error(`the deflating thread failed: ${reply.error}`))
      w.resolve({ oids: reply.oids, entries: Buffer.from(reply.entries, 0, reply.entriesLength), sizes: reply.sizes, crcs: reply.crcs })
    })
    this.#worker.on('error', (err) => this.#fail(err))
    this.#worker.on('exit', () => this.#fail(new Error('the deflating thread exited')))
  }

  #fail(err: Error): void {
    this.#failure ??= err
    for (const w of this.#waiting.values()) w.reject(this.#failure)
    this.#waiting.clear()
  }

  // The blobs are copied into one buffer, handed over to the thread.
  deflate(blobs: readonly Buffer[]): Promise<DeflatedBatch> {
    if (this.#failure) return Promise.reject(this.#failure)
    const total = blobs.reduce((n, b) => n + b.length, 0)
    const k = this.#free.findIndex((b) => b.byteLength >= total)
    const buffer = k >= 0 ? (this.#free.splice(k, 1)[0] as ArrayBuffer) : new ArrayBuffer(Math.max(total, REQUEST_BYTES))
    const bytes = Buffer.from(buffer)
    let at = 0
    for (const b of blobs) at += b.copy(bytes, at)
    const id = this.#next++
    const spare = this.#spare
    this.#spare = []
    const request: DeflateRequest = { id, bytes: buffer, lengths: blobs.map((b) => b.length), spare }
    const done = new Promise<DeflatedBatch>((resolve, reject) => this.#waiting.set(id, { resolve, reject }))
    this.#worker.postMessage(request, [buffer, ...spare])
    return done
  }

  // A batch's entries, once copied out: their buffer goes back with the next request.
  recycle(batch: DeflatedBatch): void {
    this.#spare.push(batch.entries.buffer as ArrayBuffer)
  }

  async close(): Promise<void> {
    this.#failure ??= new Error('the deflating thread was closed')
    await this.#worker.terminate()
  }
}
