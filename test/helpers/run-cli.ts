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
