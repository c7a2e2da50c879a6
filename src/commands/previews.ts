import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { AasError, type AasErrorCode, isAasError } from '../errors.js'
import { APPLIED_REF_PREFIX, appliedRef, KEPT_REF_PREFIX, keptRef, PENDING_REF_PREFIX } from '../git/refs.js'
import type { BaseTree, Store } from '../git/store.js'
import { hashBlob } from '../transaction/blob-hash.js'

// The previews of dry runs (refs/aas/pending/<run id>) as `--apply`, `--list-previews` and
// the pruning of old ones see them: what each recorded (the trailers of its commit, see
// migrate/result-commit.ts) and whether the live vault still is what it started from.

export interface Preview {
  id: string // the dry run's run id
  ref: string // refs/aas/pending/<id>
  commit: string
  tree: string // the previewed state
  base: string | null // the commit it started from: the dry run's snapshot (its parent)
  baseTree: string | null // Aas-Base-Tree: that snapshot's tree
  time: string // ISO 8601, UTC
  timestamp: number // seconds
  from: number | null
  target: number | null
  touched: number
  scripts: Array<{ file: string; oid: string }> // Aas-Script: every script of the chain
  validation: string | null // Aas-Validation: 'ok', or '<n> failed'
  applied: { ref: string; commit: string } | null // refs/aas/applied/<id>: applied by that result commit
  kept: boolean // named in --apply: never pruned
}

// Every value of a trailer, in order (git trailers may repeat a key).
function trailerValues(message: string, key: string): string[] {
  const last =
    message
      .trimEnd()
      .split(/\n\s*\n/)
      .pop() ?? ''
  return last.split('\n').flatMap((line) => (line.startsWith(`${key}: `) ? [line.slice(key.length + 2)] : []))
}

const intOrNull = (v: string | undefined): number | null => (v !== undefined && /^\d+$/.test(v) ? Number(v) : null)

async function readPreview(store: Store, id: string, oid: string, applied: Map<string, string>, kept: Set<string>): Promise<Preview> {
  const c = await store.readCommit(oid)
  const t = c.trailers
  const appliedBy = applied.get(id)
  return {
    id,
    ref: PENDING_REF_PREFIX + id,
    commit: oid,
    tree: c.tree,
    base: c.parents[0] ?? null,
    baseTree: trailerValues(c.message, 'Aas-Base-Tree')[0] ?? null,
    time: new Date(c.timestamp * 1000).toISOString(),
    timestamp: c.timestamp,
    from: intOrNull(t['Aas-From']),
    target: intOrNull(t['Aas-Target']),
    touched: intOrNull(t['Aas-Units-Touched']) ?? 0,
    scripts: trailerValues(c.message, 'Aas-Script').flatMap((v) => {
      const m = /^(\S+) ([0-9a-f]{40,64})$/.exec(v)
      return m ? [{ file: m[1] as string, oid: m[2] as string }] : []
    }),
    validation: trailerValues(c.message, 'Aas-Validation')[0] ?? null,
    applied: appliedBy ? { ref: appliedRef(id), commit: appliedBy } : null,
    kept: kept.has(id),
  }
}

// Every preview, newest first (on a tie, the greater run id: run ids sort by time).
export async function listPreviews(store: Store): Promise<Preview[]> {
  const applied = new Map((await store.listRefs(APPLIED_REF_PREFIX)).map((r) => [r.ref.slice(APPLIED_REF_PREFIX.length), r.oid]))
  const kept = new Set((await store.listRefs(KEPT_REF_PREFIX)).map((r) => r.ref.slice(KEPT_REF_PREFIX.length)))
  const out: Preview[] = []
  for (const { ref, oid } of await store.listRefs(PENDING_REF_PREFIX))
    out.push(await readPreview(store, ref.slice(PENDING_REF_PREFIX.length), oid, applied, kept))
  return out.sort((a, b) => b.timestamp - a.timestamp || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
}

// The preview a user named: a run id, or `latest` (the newest).
export async function resolvePreview(store: Store, name: string): Promise<Preview> {
  const all = await listPreviews(store)
  const hit = name === 'latest' ? all[0] : all.find((p) => p.id === name)
  if (hit) return hit
  throw new AasError(
    'PREVIEW_NOT_FOUND',
    name === 'latest' ? 'There is no preview to apply: no dry run has kept one.' : `No preview with run id ${name} (no ref ${PENDING_REF_PREFIX}${name}).`,
    {
      hint: 'Run `aas-migrate --to vN --dry-run` and review it, then `aas-migrate --apply latest` (or the run id it printed); `aas-migrate --list-previews` lists the previews kept.',
      data: { preview: name, known: all.map((p) => p.id) },
    },
  )
}

// Mark a preview as named by an operator, so that it is never pruned.
export async function keepPreview(store: Store, p: Preview): Promise<void> {
  if (p.kept) return
  try {
    await store.updateRef(keptRef(p.id), p.commit, null)
  } catch (err) {
    if (!isAasError(err, 'REF_MOVED')) throw err
  }
}

// Why a preview cannot be applied whatever the vault holds: already applied, its
// validation failed, or it was recorded without what --apply checks.
export function unusable(p: Preview): AasError | null {
  const again = `Run the dry run again (aas-migrate --to v${p.target ?? 'N'} --dry-run), review it, then apply that one.`
  if (p.applied)
    return new AasError('PREVIEW_APPLIED', `Preview ${p.id} was applied already (result commit ${p.applied.commit.slice(0, 12)}, ${p.applied.ref}).`, {
      hint: `Nothing to do: the vault got it then (--status shows its version). For another migration, run its dry run (aas-migrate --to vN --dry-run), review it, then apply that one.`,
      data: { preview: p.id, appliedRef: p.applied.ref, resultCommit: p.applied.commit },
    })
  if (p.validation !== 'ok')
    return new AasError(
      'PREVIEW_UNUSABLE',
      p.validation === null || p.baseTree === null
        ? `Preview ${p.id} does not record the tree and the scripts it started from (an older aas-migrate made it), so it cannot be checked.`
        : `Preview ${p.id} failed validation (${p.validation}): the vault would not be valid at v${p.target}.`,
      { hint: `Fix the units or scripts the dry run reported. ${again}`, data: { preview: p.id, validation: p.validation } },
    )
  return null
}

// The recorded scripts whose file in the vault changed (or went) since the preview.
export async function changedScripts(root: string, p: Preview): Promise<string[]> {
  const changed: string[] = []
  for (const s of p.scripts) {
    const live = await readFile(path.join(root, ...s.file.split('/'))).then(hashBlob, () => null)
    if (live !== s.oid) changed.push(s.file)
  }
  return changed
}

export function scriptsChanged(p: Preview, files: string[]): AasError {
  return new AasError('PREVIEW_SCRIPT_CHANGED', `Preview ${p.id} was made with other migration scripts: ${files.join(', ')} changed since.`, {
    hint: `The preview no longer shows what these scripts do. Run the dry run again (aas-migrate --to v${p.target} --dry-run), review it, then apply that one.`,
    data: { preview: p.id, scripts: files },
  })
}

// The snapshot-scope paths that differ between the preview's starting tree and `live`
// (the vault now); empty when the vault is still that tree.
export async function changedSince(store: Store, p: Preview, live: BaseTree): Promise<string[]> {
  if (p.baseTree === null || live.tree === p.baseTree) return []
  return (await store.diffTrees(p.baseTree, live)).map((c) => c.path)
}

export function vaultChanged(p: Preview, paths: readonly string[]): AasError {
  const shown = paths.slice(0, 20)
  return new AasError(
    'PREVIEW_STALE',
    `The vault changed since preview ${p.id} (${p.time}): ${paths.length} path${paths.length === 1 ? ' differs' : 's differ'} from what it started from:\n  ${shown.join('\n  ')}${paths.length > shown.length ? '\n  …' : ''}`,
    {
      hint: `Applying it would discard those changes. Run the dry run again (aas-migrate --to v${p.target} --dry-run), review it, then apply that one.`,
      data: { preview: p.id, paths },
    },
  )
}

export function alreadyHeld(p: Preview): AasError {
  return new AasError('PREVIEW_APPLIED', `The vault already holds the state previewed by ${p.id}.`, {
    hint: 'Nothing to do: --status shows the vault version; --list-snapshots the snapshot to roll back to.',
    data: { preview: p.id },
  })
}

// How long previews are kept: AAS_KEEP_PREVIEWS, e.g. `30d`, `36h`, or `never` (default 14d).
export const DEFAULT_KEEP_PREVIEWS = '14d'

export function keepPreviewsMs(env: NodeJS.ProcessEnv): number {
  const v = (env.AAS_KEEP_PREVIEWS ?? '').trim() || DEFAULT_KEEP_PREVIEWS
  if (v === 'never') return Number.POSITIVE_INFINITY
  const m = /^(\d+)([dh])$/.exec(v)
  if (!m)
    throw new AasError('USAGE', `AAS_KEEP_PREVIEWS expects a duration such as 30d or 36h, or never; got '${v}'.`, {
      hint: 'Set AAS_KEEP_PREVIEWS=30d (days), 36h (hours) or never, or unset it for the default of 14 days.',
      data: { variable: 'AAS_KEEP_PREVIEWS', value: v },
    })
  return Number(m[1]) * (m[2] === 'd' ? 86_400_000 : 3_600_000)
}

// Delete the pending refs older than keepMs, except those applied, kept (named in
// --apply) or listed in `except`; returns their ids. Their objects go with git's gc.
// Three ref listings, whatever the number of previews: no commit is read.
export async function prunePreviews(store: Store, { now, keepMs, except = [] }: { now: Date; keepMs: number; except?: readonly string[] }): Promise<string[]> {
  if (!Number.isFinite(keepMs)) return []
  const cutoff = (now.getTime() - keepMs) / 1000
  const old = (await store.listRefCommits(PENDING_REF_PREFIX)).filter((c) => c.timestamp < cutoff)
  if (old.length === 0) return []
  const marked = new Set(
    [...(await store.listRefs(APPLIED_REF_PREFIX)), ...(await store.listRefs(KEPT_REF_PREFIX))].map((r) =>
      r.ref.slice(r.ref.indexOf('/', 'refs/aas/'.length) + 1),
    ),
  )
  const pruned: string[] = []
  for (const c of old) {
    const id = c.ref.slice(PENDING_REF_PREFIX.length)
    if (marked.has(id) || except.includes(id)) continue
    try {
      await store.deleteRef(c.ref, c.oid)
      pruned.push(id)
    } catch (err) {
      if (!isAasError(err, 'REF_MOVED')) throw err // another run pruned it first
    }
  }
  return pruned
}

// A preview as --list-previews shows it: whether --apply would take it now, and why not.
export interface PreviewStatus extends Preview {
  ageSeconds: number
  applies: boolean
  reasons: Array<{ code: AasErrorCode; message: string; paths?: string[] }> // empty when it applies
}

// Each preview checked as --apply checks it, against the live vault's snapshot-scope tree
// (written to the store as a snapshot's would be, through the stat cache; no ref is set).
export async function previewStatuses(store: Store, previews: readonly Preview[], now: Date = new Date()): Promise<PreviewStatus[]> {
  if (previews.length === 0) return []
  const live = previews.some((p) => unusable(p) === null) ? await store.writeVaultTree() : null
  const out: PreviewStatus[] = []
  for (const p of previews) {
    const reasons: PreviewStatus['reasons'] = []
    const reason = (e: AasError, paths?: string[]): void => void reasons.push({ code: e.code, message: e.message, ...(paths ? { paths } : {}) })
    const refused = unusable(p)
    if (refused) reason(refused)
    else if (live) {
      const scripts = await changedScripts(store.agentsRoot, p)
      if (scripts.length > 0) reason(scriptsChanged(p, scripts), scripts)
      if (live.tree === p.tree && live.tree !== p.baseTree) reason(alreadyHeld(p))
      else {
        const paths = (await changedSince(store, p, { tree: live.tree })).filter((f) => !scripts.includes(f))
        if (paths.length > 0) reason(vaultChanged(p, paths), paths)
      }
    }
    out.push({ ...p, ageSeconds: Math.max(0, Math.floor(now.getTime() / 1000) - p.timestamp), applies: reasons.length === 0, reasons })
  }
  return out
}
