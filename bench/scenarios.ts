import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { measure, median, type Sample } from './measure.js'
import { findChromium, firstRenderMs } from './render.js'
import type { Check, PhaseRow, Row, SizeReport } from './report.js'
import { BENCH_DIR, changeUnits, copyVault, makeBenchVault, setAside, type BenchVault } from './vault.js'

// Every figure of the issue for one vault size, each the median of `reps` fresh runs.

export type Backend = 'cli' | 'js'

export interface SizeOptions {
  dist: string // the built engine to run (a private copy of dist/)
  units: number
  reps: number
  backends: Backend[]
  aside: string // where finished copies go until the run ends (setAside in bench/vault.ts)
  previous?: SizeReport // the size measured before in the same run (for growth checks)
  only?: string[] // figure keys to measure (default: every figure); see FIGURE_KEYS
  log?: (line: string) => void
}

const SNAPSHOT_CHILD = path.join(BENCH_DIR, 'snapshot-child.mjs')
const FLOOR_CHILD = path.join(BENCH_DIR, 'floor-child.mjs')
const PHASES_CHILD = path.join(BENCH_DIR, 'phases-child.mjs')
const RSS_LIMIT_KB = 300 * 1024
// A file modified this recently is never trusted to its stat by the engine's caches
// (src/git/stat-cache.ts RACY_MS): a setup waits this long after copying a vault when
// a figure is about a warm cache, as on a vault whose files were not all just written.
const RACY_WAIT_MS = 2500

// The figures --only can select, by key.
export const FIGURE_KEYS = [
  'status',
  'statusRepeat',
  'dryRun',
  'migrate',
  'migratePy',
  'rollbackFull',
  'snapshotCold',
  'snapshotRepeat',
  'rollback1',
  'rollback100',
  'reportRender',
  'phases',
] as const

interface Figure {
  seconds: number | null
  rssKb: number | null
  error?: string
}

let CLI = ''

function envFor(backend: Backend | null): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AAS_BENCH_DIST: path.dirname(path.dirname(CLI)),
    NO_COLOR: '1',
    GIT_AUTHOR_NAME: 'bench',
    GIT_AUTHOR_EMAIL: 'bench@example.invalid',
    GIT_COMMITTER_NAME: 'bench',
    GIT_COMMITTER_EMAIL: 'bench@example.invalid',
  }
  for (const k of Object.keys(env)) if (k.startsWith('GIT_') && !k.startsWith('GIT_AUTHOR_') && !k.startsWith('GIT_COMMITTER_')) delete env[k]
  if (backend) env.AAS_GIT = backend
  else delete env.AAS_GIT
  return env
}

const node = (args: string[], backend: Backend | null) => ({ cmd: process.execPath, args, env: envFor(backend) })
const aas = (root: string, args: string[], backend: Backend) => node([CLI, '--agents-root', root, '--no-progress', '--no-color', ...args], backend)

// Runs `rep` reps times (setup untimed, inside rep) and keeps the median time and RSS.
async function figure(reps: number, rep: () => Promise<Sample>): Promise<Figure> {
  const times: number[] = []
  const rss: number[] = []
  try {
    for (let i = 0; i < reps; i++) {
      const s = await rep()
      times.push(s.seconds)
      if (s.rssKb !== null) rss.push(s.rssKb)
    }
  } catch (err) {
    return { seconds: null, rssKb: null, error: err instanceof Error ? err.message : String(err) }
  }
  return { seconds: median(times), rssKb: rss.length > 0 ? median(rss) : null }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))

const ratioOf = (a: Figure, b: Figure | undefined): number | null => (a.seconds !== null && b?.seconds ? a.seconds / b.seconds : null)

export async function measureSize({ dist, units, reps, backends, aside, previous, only, log = () => {} }: SizeOptions): Promise<SizeReport> {
  CLI = path.join(dist, 'cli', 'main.js')
  const want = (...keys: string[]): boolean => !only || keys.some((k) => only.includes(k))
  const work = await mkdtemp(path.join(tmpdir(), 'aas-bench-'))
  try {
    const pristine = path.join(work, 'pristine')
    const copy = path.join(work, 'copy')
    log(`generating ${units} units in ${pristine}`)
    const vault: BenchVault = await makeBenchVault(pristine, { units })
    const listFile = path.join(work, 'units.txt')
    await writeFile(listFile, `${vault.units.join('\n')}\n`)

    log('baseline: tar czf')
    const tar = await figure(reps, async () => {
      const out = path.join(work, 'vault.tar.gz')
      const s = await measure({ cmd: 'tar', args: ['czf', out, '-C', pristine, '.'], env: envFor(null) })
      await rm(out, { force: true })
      return s
    })
    log('baseline: read+write floor')
    const floor = await figure(reps, async () => {
      const to = path.join(work, 'floor-copy')
      const s = await measure({ ...node([FLOOR_CHILD, listFile, pristine, to], null) })
      await setAside(to, aside)
      return s
    })
    log('baseline: git add -A && git commit')
    const gitCommit = await figure(reps, async () => {
      const repo = path.join(work, 'scratch-repo')
      await measure({ cmd: 'git', args: ['init', '-q', repo], env: envFor(null) })
      const g = `git --git-dir=${repo}/.git --work-tree=${pristine} -c core.hooksPath=/dev/null -c gc.auto=0`
      const s = await measure({ cmd: 'sh', args: ['-c', `${g} add -A && ${g} commit -q -m bench`], env: envFor(null) })
      await setAside(repo, aside)
      return s
    })

    const rows: Row[] = [
      { figure: 'tar czf', backend: '', ...tar, vs: '', ratio: null, checks: [] },
      { figure: 'read+write floor', backend: '', ...floor, vs: '', ratio: null, checks: [] },
      { figure: 'git add -A && commit', backend: '', ...gitCommit, vs: '', ratio: null, checks: [] },
    ]
    const byBackend = new Map<Backend, Record<string, Figure>>()
    for (const b of backends) {
      const f: Record<string, Figure> = {}
      if (want('status')) {
        log(`${b}: --status, first call`)
        f.status = await figure(reps, async () => {
          await copyVault(pristine, copy, aside)
          return measure(aas(copy, ['--status'], b))
        })
      }
      if (want('statusRepeat')) {
        // A vault with a store (a snapshot, as any --to leaves), one --status, then 1% of
        // the units changed and --status again: the second one is timed.
        log(`${b}: --status, repeat after 1% changed`)
        f.statusRepeat = await figure(reps, async () => {
          await copyVault(pristine, copy, aside)
          const copied = Date.now()
          await measure(node([SNAPSHOT_CHILD, copy], b))
          await sleep(copied + RACY_WAIT_MS - Date.now())
          await measure(aas(copy, ['--status'], b))
          await changeUnits(copy, vault.units, 0.01)
          return measure(aas(copy, ['--status'], b))
        })
      }
      if (want('dryRun')) {
        log(`${b}: --to v2 --dry-run`)
        f.dryRun = await figure(reps, async () => {
          await copyVault(pristine, copy, aside)
          return measure(aas(copy, ['--to', 'v2', '--dry-run'], b))
        })
      }
      if (want('migrate', 'rollbackFull')) await measureMigrate(f, b)
      if (want('migratePy')) {
        // The same v1 -> v2 as the atomic-agents .py script (fixtures/migrations-py/v1_to_v2.py),
        // run through the Python bridge. (The .mjs it is compared with also validates v2.)
        log(`${b}: --to v2 (py script)`)
        f.migratePy = await figure(reps, async () => {
          await copyVault(pristine, copy, aside)
          await rm(path.join(copy, '_migrations', 'v1_to_v2.mjs'))
          await copyFile(path.join(BENCH_DIR, '..', 'fixtures', 'migrations-py', 'v1_to_v2.py'), path.join(copy, '_migrations', 'v1_to_v2.py'))
          return measure(aas(copy, ['--to', 'v2'], b))
        })
      }
      if (want('snapshotCold', 'snapshotRepeat')) await measureSnapshots(f, b)
      for (const [key, fraction] of [
        ['rollback1', 0.01],
        ['rollback100', 1],
      ] as const) {
        if (!want(key)) continue
        log(`${b}: --rollback of a ${fraction * 100}%-changed vault`)
        f[key] = await figure(reps, async () => {
          await copyVault(pristine, copy, aside)
          const snap = await measure(node([SNAPSHOT_CHILD, copy], b))
          const name = (JSON.parse(snap.stdout) as { name: string }).name
          await changeUnits(copy, vault.units, fraction)
          return measure(aas(copy, ['--rollback', name], b))
        })
      }
      byBackend.set(b, f)
    }

    async function measureMigrate(f: Record<string, Figure>, b: Backend): Promise<void> {
      log(`${b}: --to v2, then --rollback`)
      const rollbackTimes: Sample[] = []
      f.migrate = await figure(reps, async () => {
        await copyVault(pristine, copy, aside)
        const s = await measure(aas(copy, ['--to', 'v2', '--json'], b))
        const name = (JSON.parse(s.stdout) as { result: { snapshot: { name: string } } }).result.snapshot.name
        rollbackTimes.push(await measure(aas(copy, ['--rollback', name], b)))
        return s
      })
      f.rollbackFull =
        f.migrate.seconds === null
          ? { seconds: null, rssKb: null, error: 'no migration' }
          : await figure(rollbackTimes.length, async () => rollbackTimes.shift() as Sample)
    }

    async function measureSnapshots(f: Record<string, Figure>, b: Backend): Promise<void> {
      log(`${b}: cold snapshot, repeat snapshot after 1% changed`)
      const repeats: Sample[] = []
      f.snapshotCold = await figure(reps, async () => {
        await copyVault(pristine, copy, aside)
        const s = await measure(node([SNAPSHOT_CHILD, copy], b))
        await changeUnits(copy, vault.units, 0.01)
        repeats.push(await measure(node([SNAPSHOT_CHILD, copy], b)))
        return s
      })
      f.snapshotRepeat =
        f.snapshotCold.seconds === null
          ? { seconds: null, rssKb: null, error: 'no cold snapshot' }
          : await figure(repeats.length, async () => repeats.shift() as Sample)
    }

    // Where `--to v2` spends its time: each phase's median over the repetitions, from the
    // engine's events (bench/phases-child.mjs, the library in a child process).
    async function measurePhases(b: Backend): Promise<PhaseRow[]> {
      log(`${b}: --to v2, by phase`)
      const runs: PhaseRow[][] = []
      for (let i = 0; i < reps; i++) {
        await copyVault(pristine, copy, aside)
        const s = await measure(node([PHASES_CHILD, copy], b))
        runs.push((JSON.parse(s.stdout) as { phases: PhaseRow[] }).phases)
      }
      return (runs[0] ?? []).map((p, k) => {
        const values = runs.map((r) => r[k]?.seconds).filter((v): v is number => typeof v === 'number')
        return { phase: p.phase, seconds: values.length > 0 ? median(values) : null }
      })
    }

    async function measureReportRender(b: Backend): Promise<Row> {
      const row: Row = { figure: '--report, first render (chromium)', backend: '', seconds: null, rssKb: null, vs: 'tar czf', ratio: null, checks: [] }
      const found = findChromium()
      if ('missing' in found) {
        log(`--report, first render: skipped: ${found.missing}`)
        return { ...row, vs: '', skipped: true, note: `skipped: ${found.missing}` }
      }
      log(`${b}: --to v2 --dry-run --stat --report (untimed), then its first render in ${found.path}`)
      const file = path.join(work, 'report.html')
      try {
        await copyVault(pristine, copy, aside)
        await measure(aas(copy, ['--to', 'v2', '--dry-run', '--stat', '--report', file], b))
      } catch (err) {
        return { ...row, error: `no report: ${err instanceof Error ? err.message : String(err)}` }
      }
      const fig = await figure(reps, async () => ({ seconds: (await firstRenderMs(found.path, file)) / 1000, rssKb: null, stdout: '' }))
      const ms = fig.seconds === null ? '' : ` (${Math.round(fig.seconds * 1000)} ms)`
      return { ...row, ...fig, rssKb: null, ratio: ratioOf(fig, tar), note: `reported, no target${ms}` }
    }

    const cli = byBackend.get('cli')
    const check = (label: string, a: Figure, base: Figure | undefined, limit: number): Check[] => {
      const r = ratioOf(a, base)
      return r === null ? [] : [{ label, ratio: r, limit }]
    }
    const spec: Array<{ key: string; figure: string; vs: (f: Record<string, Figure>) => [string, Figure | undefined, number | null] }> = [
      { key: 'status', figure: '--status, first call', vs: () => ['tar czf', tar, 0.5] },
      { key: 'statusRepeat', figure: '--status, repeat (1% changed)', vs: () => ['tar czf', tar, 0.25] },
      { key: 'dryRun', figure: '--to v2 --dry-run', vs: () => ['tar czf', tar, 2.5] },
      { key: 'migrate', figure: '--to v2', vs: () => ['tar czf', tar, 3] },
      { key: 'migratePy', figure: '--to v2 (py script)', vs: (f) => ['--to v2', f.migrate, 1.3] },
      { key: 'rollbackFull', figure: '--rollback after --to v2', vs: () => ['tar czf', tar, 1.5] },
      { key: 'snapshotCold', figure: 'cold snapshot', vs: () => ['tar czf', tar, 1] },
      { key: 'snapshotRepeat', figure: 'repeat snapshot, 1% changed', vs: () => ['tar czf', tar, 0.15] },
      { key: 'rollback1', figure: '--rollback, 1% changed', vs: (f) => ['--rollback, 100% changed', f.rollback100, 0.2] },
      { key: 'rollback100', figure: '--rollback, 100% changed', vs: () => ['tar czf', tar, null] },
    ]
    for (const b of backends) {
      const f = byBackend.get(b) as Record<string, Figure>
      for (const s of spec) {
        const fig = f[s.key]
        if (!fig) continue // not selected by --only
        const [vs, base, limit] = s.vs(f)
        // The 1% rollback and repeat snapshot targets are for 50,000 units and up; at smaller
        // sizes the fixed costs of a command dominate, so there they are figures, not targets.
        const applies = limit !== null && ((s.key !== 'rollback1' && s.key !== 'snapshotRepeat') || units >= 50_000)
        const checks: Check[] = applies ? check(`≤ ${limit}× ${vs}`, fig, base, limit as number) : []
        if (b === 'js' && cli) checks.push(...check('≤ 3× cli', fig, cli[s.key], 3))
        // Memory targets of the issue: ≤ 300 MB at 50,000 units; beyond, growth at most
        // linear from the 50,000-unit figure of the same run.
        if (units === 50_000 && fig.rssKb !== null) checks.push({ label: '≤ 300 MB RSS', ratio: fig.rssKb / RSS_LIMIT_KB, limit: 1 })
        const before = previous?.units === 50_000 && units > 50_000 ? previous.rows.find((r) => r.figure === s.figure && r.backend === b) : undefined
        if (before?.rssKb && fig.rssKb !== null)
          checks.push({
            label: `RSS ≤ linear from 50,000 (${Math.round((before.rssKb * units) / 50_000 / 1024)} MB)`,
            ratio: fig.rssKb / ((before.rssKb * units) / 50_000),
            limit: 1,
          })
        rows.push({ figure: s.figure, backend: b, ...fig, vs, ratio: ratioOf(fig, base), checks })
      }
    }
    if (want('reportRender')) rows.push(await measureReportRender(backends[0] as Backend))
    const phases = want('phases') ? await measurePhases(backends[0] as Backend) : undefined
    return { units, reps, rows, ...(phases ? { phases } : {}) }
  } finally {
    await setAside(work, aside)
  }
}
