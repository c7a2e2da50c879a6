// Takes one snapshot of a vault through the library (the snapshot step of --to,
// nothing else) and prints it as JSON. Usage: node bench/snapshot-child.mjs ROOT
import path from 'node:path'
import { pathToFileURL } from 'node:url'

// AAS_BENCH_DIST: the harness's private copy of dist/ (else the repository's dist/).
const dist = process.env.AAS_BENCH_DIST ?? new URL('../dist', import.meta.url).pathname
// The CLI's V8 flags (src/cli/v8-tuning.ts), set before the engine is loaded, as the CLI does.
await import(pathToFileURL(path.join(dist, 'cli', 'v8-tuning.js')).href)
const { takeSnapshot } = await import(pathToFileURL(path.join(dist, 'snapshots', 'take.js')).href)
const { openStore } = await import(pathToFileURL(path.join(dist, 'git', 'open-store.js')).href)

const root = process.argv[2]
if (!root) throw new Error('usage: node bench/snapshot-child.mjs AGENTS_ROOT')
const backend = process.env.AAS_GIT === 'js' ? 'js' : 'cli'
const store = await openStore({ agentsRoot: root, backend })
const snap = await takeSnapshot(store, { target: 2, from: 1, runId: `bench-${process.pid}` })
process.stdout.write(`${JSON.stringify({ name: snap.name, files: snap.files, bytesHashed: snap.bytesHashed })}\n`)
