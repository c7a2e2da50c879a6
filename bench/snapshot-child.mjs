// Takes one snapshot of a vault through the library (the snapshot step of --to,
// nothing else) and prints it as JSON. Usage: node bench/snapshot-child.mjs ROOT
import { takeSnapshot } from '../dist/engine/snapshots.js'
import { openStore } from '../dist/git/open-store.js'

const root = process.argv[2]
if (!root) throw new Error('usage: node bench/snapshot-child.mjs AGENTS_ROOT')
const backend = process.env.AAS_GIT === 'js' ? 'js' : 'cli'
const store = await openStore({ agentsRoot: root, backend })
const snap = await takeSnapshot(store, { target: 2, from: 1, runId: `bench-${process.pid}` })
process.stdout.write(`${JSON.stringify({ name: snap.name, files: snap.files, bytesHashed: snap.bytesHashed })}\n`)
