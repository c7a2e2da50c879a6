import { diffNeedsStore, withDiffContents } from '../diff/contents.js'
import { PatternCollector, type ChangePattern } from '../diff/patterns.js'
import type { DiffFile } from '../diff/unified.js'
import { AasError } from '../errors.js'
import { PENDING_REF_PREFIX, pendingRef, RUN_REF_PREFIX, runRef, snapshotRef } from '../git/refs.js'
import type { Store } from '../git/store.js'
import { discoverScripts } from '../migrations/discover.js'
import { unitTypeOf } from '../vault/rules.js'

// A run as the store recorded it, for `--report FILE.html --run RUN_ID`: a real run's
// refs/aas/runs/<id> or a dry run's refs/aas/pending/<id>, its parent (the state it
// started from) and its trailers. Everything comes from the store; only the scripts'
// names are looked up in _migrations/ as they are now.
export interface RecordedRun {
  agentsRoot: string
  runId: string
  dryRun: boolean
  from: number | null
  target: number
  snapshot: { name: string; ref: string | null; commit: string }
  result: { ref: string; commit: string }
  units: number
  scripts: string[] // the chain's script files: as recorded (Aas-Script), else found in _migrations/ now
  scriptBlobs: Array<{ file: string; blob: string }> | null // Aas-Script: each script's blob id when the run ran it; null for a run that predates the trailer
  validationSummary: string | null // Aas-Validation: 'ok', '<n> failed' or 'none'; null when not recorded
  diff: DiffFile[] // without contents
  patterns: ChangePattern[]
}

// The ref of a run id, or of `latest` (the newest run or preview).
async function runRefOf(store: Store, id: string): Promise<{ ref: string; oid: string }> {
  if (id === 'latest') {
    const all = [...(await store.listRefCommits(RUN_REF_PREFIX)), ...(await store.listRefCommits(PENDING_REF_PREFIX))]
    const newest = all.sort((a, b) => b.timestamp - a.timestamp || (a.ref < b.ref ? 1 : -1))[0]
    if (newest) return { ref: newest.ref, oid: newest.oid }
  } else if (/^[\w.-]+$/.test(id)) {
    for (const ref of [runRef(id), pendingRef(id)]) {
      const oid = await store.resolveRef(ref)
      if (oid) return { ref, oid }
    }
  }
  throw new AasError('REF_INVALID', `No recorded run '${id}': neither ${runRef(id)} nor ${pendingRef(id)} exists.`, {
    hint: 'Pass a run id that --to or --to --dry-run printed (`git for-each-ref refs/aas/runs refs/aas/pending` in the store lists them), or latest.',
    data: { run: id },
  })
}

export async function readRecordedRun(store: Store, id: string): Promise<RecordedRun> {
  const { ref, oid } = await runRefOf(store, id)
  const commit = await store.readCommit(oid)
  const t = commit.trailers
  const parent = commit.parents[0]
  if (!parent || t['Aas-Target'] === undefined)
    throw new AasError('REF_INVALID', `${ref} is not a run's result commit (no parent or no Aas-Target trailer).`, {
      hint: `Remove the ref with \`git update-ref -d ${ref}\` in the store if it is not one of aas-migrate's.`,
      data: { ref },
    })
  const base = await store.readCommit(parent)
  const diff: DiffFile[] = (await store.diffTrees(base.tree, commit.tree)).map((c) => ({
    path: c.path,
    oldMode: c.status === 'added' ? null : c.oldMode,
    newMode: c.status === 'deleted' ? null : c.newMode,
    oldOid: c.status === 'added' ? null : c.oldOid,
    newOid: c.status === 'deleted' ? null : c.newOid,
    oldContent: null,
    newContent: null,
  }))
  const collector = new PatternCollector()
  const chunks = diffNeedsStore(diff) ? withDiffContents(store, diff) : [diff]
  for await (const chunk of chunks) for (const f of chunk) collector.add(f.path, f.oldContent?.toString('utf8') ?? '', f.newContent?.toString('utf8') ?? '')
  const from = t['Aas-From'] === undefined || t['Aas-From'] === 'empty' ? null : Number(t['Aas-From'])
  const target = Number(t['Aas-Target'])
  const dryRun = ref.startsWith(PENDING_REF_PREFIX)
  const name = t['Aas-Snapshot'] ?? ''
  const recorded = scriptTrailers(commit.message)
  const scripts = recorded.length > 0 ? recorded.map((s) => s.file) : await scriptsNow(store.agentsRoot, from, target)
  return {
    agentsRoot: store.agentsRoot,
    runId: t['Aas-Run-Id'] ?? ref.slice(ref.lastIndexOf('/') + 1),
    dryRun,
    from,
    target,
    snapshot: { name, ref: dryRun || name === '' ? null : snapshotRef(name), commit: parent },
    result: { ref, commit: oid },
    units: (await store.listTree(commit.tree)).filter((e) => e.mode !== '120000' && unitTypeOf(e.path) !== null).length,
    scripts,
    scriptBlobs: recorded.length > 0 ? recorded : null,
    validationSummary: t['Aas-Validation'] ?? null,
    diff,
    patterns: collector.patterns(),
  }
}

// Every `Aas-Script: <file> <blob id>` trailer of a result commit, in order (a key
// repeated in the trailers block, which a map of trailers keeps only once).
function scriptTrailers(message: string): Array<{ file: string; blob: string }> {
  const block =
    message
      .trimEnd()
      .split(/\n\s*\n/)
      .pop() ?? ''
  return block.split('\n').flatMap((line) => {
    const m = /^Aas-Script: (\S+) ([0-9a-f]{40,64})$/.exec(line)
    return m ? [{ file: m[1] as string, blob: m[2] as string }] : []
  })
}

// The chain's scripts as _migrations/ holds them now (a run recorded before the trailers).
async function scriptsNow(root: string, from: number | null, target: number): Promise<string[]> {
  const { scripts } = await discoverScripts(root)
  return scripts.filter((s) => s.from >= (from ?? 0) && s.to <= target).map((s) => s.file)
}
