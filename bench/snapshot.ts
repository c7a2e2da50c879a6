// Cold and repeat snapshot of a generated 10,000-unit vault (~2 KB files) on both
// backends, next to `tar czf` of the same vault. Run: npx tsx bench/snapshot.ts [units]
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { takeSnapshot } from '../src/engine/snapshots.js'
import { openStore } from '../src/git/open-store.js'
import type { BackendName } from '../src/git/store.js'

const units = Number(process.argv[2] ?? 10000)
const OLD = new Date('2025-01-01T00:00:00Z')

async function makeVault(root: string): Promise<string[]> {
  const paths: string[] = []
  for (let i = 0; i < units; i++) {
    const agent = `agent_${String(i % 50).padStart(2, '0')}`
    const kind = i % 3 === 0 ? 'wiki' : 'memory'
    const rel = `${agent}/${kind}/${kind === 'wiki' ? 'page' : 'feedback'}_${i}.md`
    const body = `---\nschema_version: 1\nname: note ${i}\ndescription: generated\ntype: feedback\n---\n` + 'lorem ipsum dolor sit amet '.repeat(72)
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true })
    await writeFile(path.join(root, rel), body)
    await utimes(path.join(root, rel), OLD, OLD)
    paths.push(rel)
  }
  return paths
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now()
  const r = await fn()
  return [(performance.now() - t) / 1000, r]
}

const rows: string[] = []
for (const backend of ['cli', 'js'] as BackendName[]) {
  const root = await mkdtemp(path.join(tmpdir(), 'aas-bench-'))
  const paths = await makeVault(root)
  if (backend === 'cli') {
    // before any store exists, so the tarball holds the vault alone
    const [tar] = await time(async () => execFileSync('tar', ['czf', path.join(tmpdir(), `aas-bench-${process.pid}.tar.gz`), '-C', root, '.']))
    rows.push(`tar czf ${tar.toFixed(2)} s`)
    await rm(path.join(tmpdir(), `aas-bench-${process.pid}.tar.gz`), { force: true })
  }
  const store = await openStore({ agentsRoot: root, backend })
  const [cold] = await time(() => takeSnapshot(store, { target: 2, from: 1, runId: 'cold' }))
  for (let i = 0; i < paths.length; i += 100) await writeFile(path.join(root, paths[i] as string), `changed ${i}\n`)
  const [repeat, r] = await time(() => takeSnapshot(store, { target: 2, from: 1, runId: 'repeat' }))
  rows.push(`${backend.padEnd(4)} cold ${cold.toFixed(2)} s   repeat (1% changed) ${repeat.toFixed(2)} s   hashed ${r.bytesHashed} B`)
  await rm(root, { recursive: true, force: true })
}
console.log(`${units} units\n${rows.join('\n')}`)
