import { execFileSync } from 'node:child_process'
import { appendFile, copyFile, mkdir, rm } from 'node:fs/promises'
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

// A fresh working copy of the pristine vault (not timed), so every repetition starts equal.
export async function copyVault(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true })
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
