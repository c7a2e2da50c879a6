// Runs `--to v2` through the library and prints how long each phase took, as JSON, from
// the engine's own events. Usage: node bench/phases-child.mjs AGENTS_ROOT
import path from 'node:path'
import { pathToFileURL } from 'node:url'

// AAS_BENCH_DIST: the harness's private copy of dist/ (else the repository's dist/).
const dist = process.env.AAS_BENCH_DIST ?? new URL('../dist', import.meta.url).pathname
// The CLI's V8 flags (src/cli/v8-tuning.ts), set before the engine is loaded, as the CLI does.
await import(pathToFileURL(path.join(dist, 'cli', 'v8-tuning.js')).href)
const { migrate } = await import(pathToFileURL(path.join(dist, 'index.js')).href)

const root = process.argv[2]
if (!root) throw new Error('usage: node bench/phases-child.mjs AGENTS_ROOT')
const start = performance.now()
const marks = {}
const onEvent = (e) => {
  const at = performance.now() - start
  if (e.type === 'phase' && marks[e.phase] === undefined) marks[e.phase] = at
  else if (e.type === 'snapshot' && marks.snapshotTaken === undefined) marks.snapshotTaken = at
}
const result = await migrate({ agentsRoot: root, target: 2, onEvent })
const end = performance.now() - start
if (!result.ok) throw new Error(`--to v2 failed: ${result.error?.message}`)
const span = (from, to) => (to === undefined || from === undefined ? null : (to - from) / 1000)
const phases = [
  ['pre-flight (lock, recovery, scan, read)', span(0, marks.snapshot)],
  ['snapshot', span(marks.snapshot, marks.snapshotTaken)],
  ['chain in workers (with validation and the result commit)', span(marks.snapshotTaken, marks.validate)],
  ['validation verdict, result ref', span(marks.validate, marks['fast-forward'])],
  ['fast-forward (journal, writes, audit)', span(marks['fast-forward'], end)],
  ['total', end / 1000],
]
process.stdout.write(`${JSON.stringify({ phases: phases.map(([phase, seconds]) => ({ phase, seconds })) })}\n`)
