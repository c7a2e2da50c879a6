// `npm run bench`: the benchmark of issue 7. Generates deterministic vaults, measures
// every aas-migrate figure on each backend next to its baselines (tar czf, a plain
// read+write loop, git add+commit), prints the table and writes docs/performance.md.
// Usage: npm run bench -- [--units 10000[,50000,...]] [--reps 3[,1,...]] [--out FILE] [--backends cli,js[/cli/...]] [--only status,statusRepeat,...]
// The report's first render (figure key reportRender) needs a chromium; without one that row is skipped.
import { cpSync, existsSync, rmSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { hasGnuTime } from './measure.js'
import { describeMachine, markdown, textTable, type SizeReport } from './report.js'
import { FIGURE_KEYS, measureSize, type Backend } from './scenarios.js'
import { BENCH_DIR } from './vault.js'

interface BenchArgs {
  units: number[]
  reps: number[] // per size (one value: every size)
  out: string
  backends: Backend[][] // per size (one group: every size)
  only: string[] | null // figure keys (null: every figure)
}

const SIZES = [1000, 10_000, 50_000, 100_000]

// --reps 3,1 and --backends cli,js/cli give sizes their own values, in --units order
// (e.g. 3 repetitions on both backends at 10,000 units, 1 on cli at 50,000).
function parseArgs(argv: string[]): BenchArgs {
  const args: BenchArgs = { units: [10_000], reps: [3], out: path.join(BENCH_DIR, '..', 'docs', 'performance.md'), backends: [['cli', 'js']], only: null }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = argv[i + 1]
    if (value === undefined) throw new Error(`${flag} needs a value`)
    if (flag === '--units') args.units = value.split(',').map(Number)
    else if (flag === '--reps') args.reps = value.split(',').map(Number)
    else if (flag === '--out') args.out = path.resolve(value)
    else if (flag === '--backends') args.backends = value.split('/').map((g) => g.split(',') as Backend[])
    else if (flag === '--only') args.only = value.split(',')
    else throw new Error(`unknown option ${flag}`)
    i++
  }
  if (args.units.some((u) => !SIZES.includes(u))) throw new Error(`--units takes ${SIZES.join('|')} (comma-separated for several)`)
  const unknown = args.only?.filter((k) => !(FIGURE_KEYS as readonly string[]).includes(k)) ?? []
  if (unknown.length > 0) throw new Error(`--only takes figure keys (${FIGURE_KEYS.join(', ')}), got ${unknown.join(', ')}`)
  if (args.reps.some((r) => !Number.isInteger(r) || r < 1)) throw new Error('--reps takes a positive integer (or one per size, comma-separated)')
  if (args.backends.some((g) => g.length === 0 || g.some((b) => b !== 'cli' && b !== 'js')))
    throw new Error('--backends takes cli, js or cli,js (or one group per size, separated by /)')
  for (const [name, list] of [
    ['--reps', args.reps],
    ['--backends', args.backends],
  ] as const) {
    if (list.length !== 1 && list.length !== args.units.length) throw new Error(`${name} takes one value or one per size in --units`)
  }
  return args
}

const perSize = <T>(list: T[], i: number): T => (list.length === 1 ? list[0] : list[i]) as T

const NOTES = [
  'Vaults: test/helpers/gen-vault.ts `generateVault` (seed 1: six agents, memory notes and wiki pages with valid v1 front matter, ~2 KB bodies, 1% CRLF files, INDEX, persona and run-log files) plus `_migrations/v1_to_v2.mjs` (fixtures/migrations/v1_to_v2.mjs: schema_version 2, a provenance key, v2 validation).',
  'Every repetition runs on a fresh `cp -a` copy of the generated vault (not timed); aas-migrate runs as `node dist/cli/main.js --agents-root COPY --no-progress ...`. Before each timed command the harness runs `sync` (untimed), so that no command pays for writing back the copy made for it (at the end of a transaction the engine calls syncfs, which would wait for it). Used copies are set aside and deleted only when the run ends: on this machine a mass deletion slows every file created in the minutes after it (bench/vault.ts `setAside`; the hand-written section at the end).',
  '`--to v2` and `--dry-run` start from a vault without a store, so they include the cold snapshot. `--rollback after --to v2` rolls that migration back (every unit changed).',
  "`--status, first call`: a fresh copy without a store. `--status, repeat (1% changed)`: a copy given a store by a snapshot (untimed), left 2.5 s so that no file is within the engine's 2 s racy window, one `--status` (untimed), then 1% of the units changed (a line appended) and `--status` timed. Their targets (≤ 0.5× and ≤ 0.25× `tar czf`) are issue 18's.",
  "Cold and repeat snapshot: bench/snapshot-child.mjs calls `takeSnapshot` (the snapshot step of `--to`) in a child process, with the CLI's V8 flags (src/cli/v8-tuning.ts); the repeat follows after 1% of the units got a line appended.",
  '`--rollback, N% changed`: a snapshot (untimed), then N% of the units changed, then `--rollback SNAPSHOT` (which takes its own safety snapshot first).',
  '`tar czf`: the generated vault into a temp file. Read+write floor: bench/floor-child.mjs, a plain sequential Node loop (`await readFile`, `await writeFile`) copying every unit, no parsing, hashing or fsync. `git add -A && git commit`: into a fresh scratch repository whose work tree is the vault.',
  "`--report, first render (chromium)`: one untimed `--to v2 --dry-run --stat --report FILE.html` (the size's first backend) on a fresh copy, then for each repetition a freshly launched Debian chromium (`AAS_CHROMIUM`, else `chromium` on PATH; `--no-sandbox`, driven by playwright-core, every request but the report file refused; the launch is not timed) opens the file: the time from the start of the navigation to the page's unit list rendered (`body[data-ready]` with its first `#units li`), in seconds and, in the target column, in ms, with its ratio to `tar czf`. Issue 19 asks for it to be reported: it has no target. Without a chromium the row says so and is skipped.",
  "Targets are those of issue 18 (which replaced issue 7's): `--to v2` ≤ 3×, its dry run ≤ 2.5× and `--rollback` after it ≤ 1.5× `tar czf`; a `.py` chain ≤ 1.3× the same `.mjs` chain; `--status` as above; the repeat snapshot ≤ 0.15× `tar czf` from 50,000 units (issue 7's 1% rollback target, ≤ 0.2× the 100% one, also from 50,000); below 50,000 those two are shown without a verdict. The js backend must also stay within 3× the cli backend for each figure. Every command must stay within 300 MB RSS at 50,000 units, and beyond, its RSS may grow at most linearly from its 50,000-unit figure of the same run.",
  "`--to v2`, by phase: bench/phases-child.mjs runs `migrate` through the library in a child process with the CLI's V8 flags (first backend of the size) and times each phase from the engine's events; the medians of the repetitions. The chain starts while the snapshot is taken (on the pre-flight's bytes), so its row is the time from the snapshot's end to the chain's end.",
]

const args = parseArgs(process.argv.slice(2))
const repo = path.join(BENCH_DIR, '..')
if (!existsSync(path.join(repo, 'dist', 'cli', 'main.js'))) throw new Error('dist/cli/main.js is missing: run `npm run build` first')
if (!hasGnuTime) process.stderr.write('note: /usr/bin/time not found; peak RSS comes from a Node wrapper (Node commands only)\n')
// A private copy of the build, next to dist/ so that node_modules and package.json
// resolve alike: a rebuild during a long run cannot mix two versions of the engine.
const dist = path.join(repo, `.bench-dist-${process.pid}`)
cpSync(path.join(repo, 'dist'), dist, { recursive: true })
// The vault copies every size is done with, deleted once the run is over (bench/vault.ts
// setAside says why not sooner).
const aside = path.join(tmpdir(), `aas-bench-aside-${process.pid}`)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    rmSync(dist, { recursive: true, force: true })
    rmSync(aside, { recursive: true, force: true })
    process.exit(130)
  })
}
const reports: SizeReport[] = []
const command = `npm run bench -- --units ${args.units.join(',')} --reps ${args.reps.join(',')} --backends ${args.backends.map((g) => g.join(',')).join('/')}${args.only ? ` --only ${args.only.join(',')}` : ''}`
const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
try {
  for (const [i, units] of args.units.entries()) {
    const previous = reports.at(-1)
    const report = await measureSize({
      dist,
      units,
      reps: perSize(args.reps, i),
      backends: perSize(args.backends, i),
      aside,
      ...(args.only ? { only: args.only } : {}),
      ...(previous ? { previous } : {}),
      log: (l) => process.stderr.write(`[${units}] ${l}\n`),
    })
    reports.push(report)
    process.stdout.write(`${textTable(report)}\n\n`)
    if (report.phases)
      process.stdout.write(`${report.phases.map((p) => `${p.phase}: ${p.seconds === null ? 'failed' : `${p.seconds.toFixed(2)} s`}`).join('\n')}\n\n`)
    for (const row of report.rows) {
      if (row.error) process.stderr.write(`${row.figure} (${row.backend}) failed: ${row.error}\n`)
      if (row.skipped) process.stderr.write(`${row.figure}: ${row.note}\n`)
    }
    // Written after every size, so a long run stopped early keeps what it measured.
    const pending = args.units.slice(i + 1)
    const notes = pending.length > 0 ? [...NOTES, `Not measured yet in this run: ${pending.join(', ')} units.`] : NOTES
    await mkdir(path.dirname(args.out), { recursive: true })
    await writeFile(args.out, markdown({ reports, machine: describeMachine(), date, command, notes }))
    process.stdout.write(`wrote ${args.out}\n`)
  }
} finally {
  await rm(dist, { recursive: true, force: true })
  process.stderr.write(`deleting the set-aside vault copies in ${aside}\n`)
  await rm(aside, { recursive: true, force: true })
}
