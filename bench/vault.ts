import { execFileSync } from 'node:child_process'
import { appendFile, copyFile, mkdir, rename } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateVault } from '../test/helpers/gen-vault.js'

// The benchmark vault: generateVault's deterministic realistic v1 units (several
// agents, ~2 KB bodies, INDEX files, run logs) plus the v1->v2 script.

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url))

export interface BenchVault {
  root: string
  units: string[] // vault-relative unit paths
}

export async function makeBenchVault(root: string, { units, seed = 1 }: { units: number; seed?: number }): Promise<BenchVault> {
  const paths = await generateVault(root, { units, seed })
  await mkdir(path.join(root, '_migrations'), { recursive: true })
  await copyFile(path.join(BENCH_DIR, '..', 'fixtures', 'migrations', 'v1_to_v2.mjs'), path.join(root, '_migrations', 'v1_to_v2.mjs'))
  return { root, units: paths }
}

// Where the bench puts the copies it is done with, deleted only when the whole run ends
// (bench/run.ts). Deleting a copy frees thousands of inodes at once, and a file system
// that avoids reusing recently freed inodes pays for each of them on every file created
// for minutes after: ext4 without a journal (this machine's) skips every inode freed in
// the last 60 s (300 s while its inode table block is unwritten), one inode-table lookup
// each, in the kernel's ext4_new_inode (recently_deleted). A fast-forward creates a file
// per changed unit, so a copy deleted just before a timed run made every created file
// cost ~0.4 ms more (docs/performance.md): a cost of the harness, not of the command.
let setAsideCount = 0
export async function setAside(target: string, aside: string): Promise<void> {
  await mkdir(aside, { recursive: true })
  await rename(target, path.join(aside, `${setAsideCount++}-${path.basename(target)}`)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err
  })
}

// A fresh working copy of the pristine vault (not timed), so every repetition starts
// equal; the copy it replaces is set aside, not deleted.
export async function copyVault(from: string, to: string, aside: string): Promise<void> {
  await setAside(to, aside)
  execFileSync('cp', ['-a', from, to])
}

// Changes `fraction` of the units (every k-th one) by appending a line to the body:
// the front matter stays valid, the bytes differ.
export async function changeUnits(root: string, units: readonly string[], fraction: number): Promise<number> {
  const step = Math.max(1, Math.round(1 / fraction))
  let n = 0
  for (let i = 0; i < units.length; i += step) {
    await appendFile(path.join(root, units[i] as string), `edited by the benchmark ${i}\n`)
    n++
  }
  return n
}
