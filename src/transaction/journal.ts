// The intent journal of one live transaction (a fast-forward S → M, or a rollback
// M → S), at <stateDir>/journal.json. It is what makes `kill -9` at any instant
// recoverable: the vault always ends exactly at `from` or exactly at `to`.
//
// Protocol the engine must follow (writer):
//  1. Hold the vault lock (lock.ts) and the agent locks of every agent whose files
//     change. Both trees (`from` and `to`) are commits in the store, reachable from
//     refs (snapshot ref, pending/result ref), so every blob recovery needs exists.
//  2. Compute `changes` (the paths that differ, with old/new blob id and mode; null =
//     absent). Check that each live path still holds the old state
//     (readLiveStates); otherwise refuse (CONCURRENT_CHANGE) before any write.
//  3. writeJournal: temp file, fsync, link into place (never overwrites an existing
//     journal), fsync stateDir. The journal is durable before the first live write.
//     faultPoint('after-journal').
//  4. For each change i: faultPoint('mid-fast-forward', i) (or mid-rollback); re-check
//     that the live path holds the old state; write the new state with
//     writeFileAtomic / replaceWithSymlink (temp + rename, mode kept, fsync: false
//     allowed) or removeFile (pruneEmptyDirs). If a live path holds neither the old
//     nor the new state, stop and run recovery backward (step R), then refuse.
//  5. Make the result durable, batched: fsyncAll({files written, dirs: parents of
//     written/removed paths, and parents of created or pruned dirs}).
//     faultPoint('before-journal-delete').
//  6. Move refs / write the audit line that says the transaction is done, then
//     clearJournal (unlink + fsync stateDir).
//
// Recovery (any command that finds a journal, before anything else, under the
// vault lock — after a crash that lock is stale and must be cleared or broken):
//  R1. readJournal; null means nothing to do. A torn or invalid journal is
//      STORE_CORRUPT: never guess, ask the operator.
//  R2. removeTempFiles(agentsRoot) and the journal's own temps in stateDir.
//  R3. readLiveStates(agentsRoot, changes) then planRecovery(journal, live): every
//      path is classified as at-old, at-new, or neither. A path at neither state was
//      changed by someone after the crash: planRecovery reports it as a conflict and
//      the engine must not overwrite it (RECOVERY_REQUIRED, keep the journal).
//  R4. Apply the plan's steps (each the same idempotent write as in step 4: writing a
//      state that is already there is a no-op by construction, since steps list only
//      paths not yet at the target), then step 5, then clearJournal.
// Every step is idempotent: a crash during recovery leaves the journal in place and
// the next recovery classifies the live files afresh. Temp + rename means a live
// path is always wholly old or wholly new, so "neither" only arises from an outside
// write (or from lost unsynced data after a power cut when fsync: false was used).
// Direction: forward (complete to `to`) by default, since `to` was validated and the
// operator asked for it; backward (return to `from`) when the writer aborts in step 4.

import { constants, lstatSync, type Stats } from 'node:fs'
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import { cachedOid, type StatCache } from '../git/stat-cache.js'
import type { FileMode } from '../vault/walk.js'
import { fsyncDir, isTempFileName, tempNameFor } from './atomic-write.js'
import { hashLiveEntrySync, type LiveEntry } from './blob-hash.js'
import { shellQuote } from './lock.js'

export const JOURNAL_FILE = 'journal.json'

export interface JournalChange {
  path: string // vault-relative, POSIX
  oldOid: string | null // null: absent in `from`
  oldMode: FileMode | null
  newOid: string | null // null: absent in `to`
  newMode: FileMode | null
}

export interface JournalInput {
  runId: string
  kind: 'migrate' | 'rollback'
  agentsRoot: string
  from: string // commit oid of the state before
  to: string // commit oid of the state after
  changes: JournalChange[]
  startedAt: string // ISO 8601
}

export interface Journal extends JournalInput {
  format: 'aas-journal'
  version: 1
}

export type RecoveryDirection = 'forward' | 'backward'

export interface RecoveryStep {
  path: string
  // The state to put at path: a blob with a mode, or null to remove what is there.
  target: { oid: string; mode: FileMode } | null
}

export interface RecoveryConflict {
  path: string
  live: LiveEntry | null
}

export interface RecoveryPlan {
  direction: RecoveryDirection
  steps: RecoveryStep[] // paths not yet at the target state, in journal order
  conflicts: RecoveryConflict[] // paths at neither state: never overwrite them
  atOld: number
  atNew: number
}

// What a journal must hold, checked as it is written (invalidJournal, for the engine's own
// input) and as it is read back (the schema in journal-schema.ts, for a file on disk). The
// schema library is loaded only to read one: its load (about 65 ms) and its check (about
// 40 ms for 10,000 changes, 180 ms for 100,000) would otherwise sit on the main thread
// in front of every write phase. test/transaction/journal.test.ts holds both to the same
// verdicts.
const OID = /^[0-9a-f]{40}$/
const MODES: ReadonlySet<unknown> = new Set(['100644', '100755', '120000'])

// The first thing wrong with a journal about to be written, or null.
export function invalidJournal(j: Journal): string | null {
  if (j.format !== 'aas-journal' || j.version !== 1) return 'format: not an aas-journal of version 1'
  if (typeof j.runId !== 'string' || j.runId === '') return 'runId: empty'
  if (j.kind !== 'migrate' && j.kind !== 'rollback') return 'kind: not migrate or rollback'
  if (typeof j.agentsRoot !== 'string' || j.agentsRoot === '') return 'agentsRoot: empty'
  if (!isOid(j.from)) return 'from: not a commit id'
  if (!isOid(j.to)) return 'to: not a commit id'
  if (typeof j.startedAt !== 'string' || j.startedAt === '') return 'startedAt: empty'
  if (!Array.isArray(j.changes)) return 'changes: not a list'
  for (let i = 0; i < j.changes.length; i++) {
    const c = j.changes[i] as JournalChange
    if (typeof c?.path !== 'string' || c.path === '') return `changes.${i}.path: empty`
    for (const side of ['old', 'new'] as const) {
      const oid = c[`${side}Oid`]
      const mode = c[`${side}Mode`]
      if (oid !== null && !isOid(oid)) return `changes.${i}.${side}Oid: not a blob id`
      if (mode !== null && !MODES.has(mode)) return `changes.${i}.${side}Mode: not a git file mode`
      if ((oid === null) !== (mode === null)) return `changes.${i}: oid and mode must be both set or both null`
    }
  }
  return null
}

const isOid = (v: unknown): boolean => typeof v === 'string' && OID.test(v)

export function journalPath(stateDir: string): string {
  return path.join(stateDir, JOURNAL_FILE)
}

// Durably create the journal. Refuses (RECOVERY_REQUIRED) when one already exists:
// an unfinished transaction must be recovered before another one starts.
export async function writeJournal(stateDir: string, input: JournalInput): Promise<Journal> {
  const journal: Journal = { format: 'aas-journal', version: 1, ...input }
  const invalid = invalidJournal(journal)
  if (invalid !== null) {
    throw new AasError('STORE_FAILED', `Refusing to write an invalid journal: ${invalid}`, {
      data: { issues: [invalid] },
      hint: 'This is a bug in the caller of writeJournal: every change needs a path and matching oid/mode pairs.',
    })
  }
  const file = journalPath(stateDir)
  const temp = path.join(stateDir, tempNameFor(JOURNAL_FILE, input.runId))
  try {
    await mkdir(stateDir, { recursive: true })
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644)
    try {
      await handle.writeFile(JSON.stringify(journal, null, 1) + '\n')
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await link(temp, file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw journalExists(file)
      throw err
    } finally {
      await unlink(temp).catch(() => undefined)
    }
    await fsyncDir(stateDir)
  } catch (err) {
    if (err instanceof AasError) throw err
    throw new AasError('STORE_FAILED', `Cannot write the transaction journal ${file}: ${describeFsError(err)}`, {
      data: { file },
      hint: 'Check permissions and free space where the store lives; nothing in the vault was changed.',
      cause: err,
    })
  }
  return journal
}

// Atomically narrow the journal of a running transaction (temp + rename + fsync):
// an aborted write phase keeps only the paths it may have written before undoing them.
export async function replaceJournal(stateDir: string, journal: Journal): Promise<void> {
  const file = journalPath(stateDir)
  const temp = path.join(stateDir, tempNameFor(JOURNAL_FILE, `${journal.runId}-narrow`))
  try {
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644)
    try {
      await handle.writeFile(JSON.stringify(journal, null, 1) + '\n')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, file)
    await fsyncDir(stateDir)
  } catch (err) {
    await unlink(temp).catch(() => undefined)
    if (err instanceof AasError) throw err
    throw new AasError('STORE_FAILED', `Cannot update the transaction journal ${file}: ${describeFsError(err)}`, {
      data: { file },
      hint: 'Check permissions and free space where the store lives, then run `aas-migrate --status` to finish the recovery.',
      cause: err,
    })
  }
}

// The journal of an interrupted transaction, or null when there is none.
export async function readJournal(stateDir: string): Promise<Journal | null> {
  const file = journalPath(stateDir)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new AasError('STORE_FAILED', `Cannot read the transaction journal ${file}: ${describeFsError(err)}`, {
      data: { file },
      hint: 'Check the permissions of the store directory, then run the command again.',
      cause: err,
    })
  }
  let value: unknown
  let problem: string | null = null
  try {
    value = JSON.parse(text)
  } catch (err) {
    problem = `not valid JSON (${err instanceof Error ? err.message : String(err)})`
  }
  if (problem === null) {
    const { journalSchema } = await import('./journal-schema.js')
    const parsed = journalSchema.safeParse(value)
    if (parsed.success) return parsed.data
    const issue = parsed.error.issues[0]
    problem = issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'
  }
  throw new AasError('STORE_CORRUPT', `The transaction journal ${file} is unreadable: ${problem}`, {
    data: { file, problem },
    hint:
      'An interrupted transaction left a damaged journal, so the vault may be between two states. ' +
      `Check the vault with --status and --list-snapshots, roll back to the latest snapshot if needed, then remove the journal: rm ${shellQuote(file)}`,
  })
}

// Remove the journal (the transaction is over) and make the removal durable.
export async function clearJournal(stateDir: string): Promise<void> {
  const file = journalPath(stateDir)
  try {
    await unlink(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AasError('STORE_FAILED', `Cannot remove the transaction journal ${file}: ${describeFsError(err)}`, {
        data: { file },
        hint: 'Check the permissions of the store directory; the vault itself is complete.',
        cause: err,
      })
    }
  }
  await fsyncDir(stateDir).catch((err: unknown) => {
    if ((err as AasError).data?.errno !== 'ENOENT') throw err
  })
}

// Journal temp files left in stateDir by a crash during writeJournal.
export function isJournalTempName(name: string): boolean {
  return isTempFileName(name) && name.startsWith(`.${JOURNAL_FILE}.`)
}

// The live state of every changed path (null: absent), read without following symlinks.
// With a stat cache, a regular file whose stat proves it unchanged since it was hashed
// (see stat-cache.ts) is not read again; with `racy`, nor is one whose stat is the one
// it had when hashed, however recently (a guess: see cachedOid). Both only for a check
// that is repeated on the bytes at each path's claim anyway, never for recovery.
export async function readLiveStates(
  agentsRoot: string,
  changes: readonly Pick<JournalChange, 'path'>[],
  statCache?: StatCache,
  { racy = false }: { racy?: boolean } = {},
): Promise<Map<string, LiveEntry | null>> {
  const live = new Map<string, LiveEntry | null>()
  for (const change of changes) {
    const abs = path.join(agentsRoot, ...change.path.split('/'))
    live.set(change.path, (statCache && cachedLiveEntry(statCache, change.path, abs, racy)) || hashLiveEntrySync(abs))
  }
  return live
}

function cachedLiveEntry(cache: StatCache, rel: string, abs: string, racy: boolean): LiveEntry | null {
  let st: Stats
  try {
    st = lstatSync(abs)
  } catch {
    return null
  }
  if (!st.isFile()) return null
  const mode: FileMode = st.mode & 0o100 ? '100755' : '100644'
  const oid = cachedOid(cache, { path: rel, mode, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, dev: st.dev, unitType: null }, { racy })
  return oid === null ? null : { mode, oid }
}

// Decide, from the live states, what recovery must write so that the vault ends
// exactly at one side of the journal. Pure: the same inputs give the same plan.
export function planRecovery(
  journal: Pick<Journal, 'changes'>,
  live: ReadonlyMap<string, LiveEntry | null>,
  { direction = 'forward' }: { direction?: RecoveryDirection } = {},
): RecoveryPlan {
  const steps: RecoveryStep[] = []
  const conflicts: RecoveryConflict[] = []
  let atOld = 0
  let atNew = 0
  for (const change of journal.changes) {
    const state = live.get(change.path) ?? null
    const isNew = sameState(state, change.newOid, change.newMode)
    const isOld = sameState(state, change.oldOid, change.oldMode)
    if (isNew) atNew++
    if (isOld) atOld++
    if (!isNew && !isOld) {
      conflicts.push({ path: change.path, live: state })
      continue
    }
    const [tOid, tMode] = direction === 'forward' ? [change.newOid, change.newMode] : [change.oldOid, change.oldMode]
    if (direction === 'forward' ? isNew : isOld) continue
    steps.push({ path: change.path, target: tOid === null || tMode === null ? null : { oid: tOid, mode: tMode } })
  }
  return { direction, steps, conflicts, atOld, atNew }
}

function sameState(live: LiveEntry | null, oidValue: string | null, modeValue: FileMode | null): boolean {
  if (oidValue === null) return live === null
  return live !== null && live.oid === oidValue && live.mode === modeValue
}

function journalExists(file: string): AasError {
  return new AasError('RECOVERY_REQUIRED', `An interrupted transaction is recorded in ${file}`, {
    data: { file },
    hint: 'Recover the interrupted transaction first (any aas-migrate command that takes the vault lock does), then run the command again.',
  })
}
