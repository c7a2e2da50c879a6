import { spawn, spawnSync } from 'node:child_process'
import path from 'node:path'
import { captureIo } from '../../src/cli/io.js'
import { runCli } from '../../src/cli/run.js'
import { repoRoot } from './make-vault.js'

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

const baseEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.ATOMIC_AGENTS_ROOT
  delete env.AAS_FAULT
  env.NO_COLOR = '1'
  return env
}

// The CLI in-process: same code path as the binary, minus process.exit.
export async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const io = captureIo({ ...baseEnv(), ...env })
  const code = await runCli(args, io)
  return { code, stdout: io.out(), stderr: io.err() }
}

export const binPath = path.join(repoRoot, 'dist', 'cli', 'main.js')

// The built binary as a real process (npm test builds first).
export function bin(args: string[], { env = {}, cwd = repoRoot }: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): CliRun {
  const r = spawnSync(process.execPath, [binPath, ...args], { cwd, env: { ...baseEnv(), ...env }, encoding: 'utf8' })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

// The built binary as a real process, without blocking the test's event loop and with no
// limit on its output (a 10,000-unit dry run prints megabytes of diff).
export function binAsync(args: string[], { env = {}, cwd = repoRoot }: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], { cwd, env: { ...baseEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }))
  })
}

// The built binary, killed with SIGKILL after afterMs unless it ends first: whether the
// kill landed (the process died of it), its exit code, and how long it ran.
export function runKilledAfter(args: string[], afterMs: number, env: NodeJS.ProcessEnv = {}): Promise<{ killed: boolean; code: number | null; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(process.execPath, [binPath, ...args], { stdio: 'ignore', env: { ...process.env, NO_COLOR: '1', ...env } })
    let killed = false
    const timer = setTimeout(() => {
      killed = child.kill('SIGKILL')
    }, afterMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ killed: killed && code === null, code, ms: Date.now() - started })
    })
  })
}
