import { spawnSync } from 'node:child_process'
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
