import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

// Runs one command as a child process, after a `sync`, and reports its wall time and peak RSS.
// Peak RSS comes from GNU time (`%M`) when it is installed, else from a tiny Node
// wrapper that reports the child's own process.resourceUsage().maxRSS (Node
// commands only; other commands then have no RSS figure).

export interface Sample {
  seconds: number
  rssKb: number | null
  stdout: string
}

export interface RunSpec {
  cmd: string
  args: string[]
  cwd?: string
  env?: NodeJS.ProcessEnv
  okCodes?: number[] // exit codes that count as success (default [0])
}

const GNU_TIME = '/usr/bin/time'
const WRAPPER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'rss-wrapper.mjs')
export const hasGnuTime = existsSync(GNU_TIME)

export async function measure(spec: RunSpec): Promise<Sample> {
  const dir = await mkdtemp(path.join(tmpdir(), 'aas-bench-rss-'))
  const rssFile = path.join(dir, 'rss')
  let cmd = spec.cmd
  let args = spec.args
  const env = { ...(spec.env ?? process.env) }
  if (hasGnuTime) {
    args = ['-f', '%M', '-o', rssFile, spec.cmd, ...spec.args]
    cmd = GNU_TIME
  } else if (spec.cmd === process.execPath) {
    args = [WRAPPER, ...spec.args]
    env.AAS_BENCH_RSS_FILE = rssFile
  }
  try {
    // The setup's writes (a vault copied a moment ago: tens of MB for 10,000 units) are
    // flushed first, untimed: else the kernel writes them back during the timed command,
    // and the engine's own syncfs at the end of a transaction waits for them.
    await run('sync', [])
    const started = performance.now()
    const { code, stdout, stderr } = await run(cmd, args, { cwd: spec.cwd, env })
    const seconds = (performance.now() - started) / 1000
    if (!(spec.okCodes ?? [0]).includes(code)) {
      throw new Error(`${spec.cmd} ${spec.args.join(' ')} exited ${code}\n${stderr.slice(-2000)}`)
    }
    let rssKb: number | null = null
    try {
      const lines = (await readFile(rssFile, 'utf8')).trim().split('\n')
      const last = Number(lines[lines.length - 1])
      rssKb = Number.isFinite(last) && last > 0 ? last : null
    } catch {
      rssKb = null
    }
    return { seconds, rssKb, stdout }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

export function run(
  cmd: string,
  args: string[],
  { cwd, env }: { cwd?: string | undefined; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }))
  })
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}
