import type { Store } from '../git/store.js'
import type { JournalChange } from '../transaction/journal.js'
import { runTransaction, type TransactionInput, type TransactionResult } from '../transaction/transaction.js'
import type { BlobSource } from '../transaction/blob-prefetch.js'
import type { WriteSession } from './session.js'

// The step `--to` and `--rollback` share: the live vault moved from one commit to
// another as one journaled transaction, under the flock of every agent whose files it
// writes, with progress (docs/how-it-works.md, "The journal and the fast-forward").

export interface FastForwardInput {
  kind: TransactionInput['kind']
  from: string // the commit the live vault holds now
  to: string // the commit it is to hold
  changes: JournalChange[]
  blobs: BlobSource
  tick?: (n: number) => void // work done, for the run's garbage collector
  env: NodeJS.ProcessEnv // AAS_WRITE_THREADS
}

const PHASE = { migrate: 'fast-forward', rollback: 'rollback' } as const
const FAULT = { migrate: 'mid-fast-forward', rollback: 'mid-rollback' } as const

export async function fastForward(
  store: Store,
  session: WriteSession,
  runId: string,
  { kind, from, to, changes, blobs, tick, env }: FastForwardInput,
): Promise<TransactionResult> {
  const phase = PHASE[kind]
  let reported = 0
  return session.withAgentLocks(
    changes.map((c) => c.path),
    async () => {
      session.emit({ type: 'phase', phase, total: changes.length })
      return runTransaction({
        store,
        runId,
        kind,
        from,
        to,
        changes,
        blobs,
        env,
        faultName: FAULT[kind],
        onProgress: (done, total) => {
          tick?.(done - reported)
          reported = done
          session.emit({ type: 'progress', phase, done, total })
        },
      })
    },
  )
}
