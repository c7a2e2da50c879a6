import { spawnSync } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { shellQuote } from '../../src/transaction/lock.js'
import { makeVault, type TempVault } from '../helpers/make-vault.js'
import { bin, binPath } from '../helpers/run-cli.js'

// Progress and colors depend on a terminal: the built binary runs under a pseudo-terminal
// made by script(1), whose output mixes stdout and stderr as a person would see them.

const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

async function vault(): Promise<TempVault> {
  const v = await makeVault('vault-v1')
  vaults.push(v)
  return v
}

function baseEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.NO_COLOR
  delete env.ATOMIC_AGENTS_ROOT
  delete env.FORCE_COLOR
  return { ...env, ...extra }
}

function underPty(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; out: string } {
  const cmd = [process.execPath, binPath, ...args].map(shellQuote).join(' ')
  const r = spawnSync('script', ['-qfec', cmd, '/dev/null'], { env: baseEnv(env), encoding: 'utf8' })
  return { code: r.status ?? -1, out: r.stdout }
}

// A progress line: a phase name, counts and a rate, drawn with \r (and erase-line).
const PROGRESS = /\r\x1b\[K(snapshot|apply|validate|fast-forward|rollback|enumerate): \d+(\/\d+)? (files|units)/
const ANSI_COLOR = /\x1b\[(1|31|32|33|36|1;31)?m|\x1b\[(31|32|33|36)m/

describe('on a terminal', () => {
  it('draws progress with counts and rate for each phase of --to and of --rollback', async () => {
    const v = await vault()
    const run = underPty(['--agents-root', v.root, '--to', 'v3'], { AAS_PROGRESS_DELAY_MS: '0' })
    expect(run.code, run.out).toBe(0)
    for (const phase of ['snapshot', 'apply', 'validate', 'fast-forward'])
      expect(run.out).toMatch(new RegExp(`${phase}: \\d+/\\d+ (files|units) in \\d+\\.\\d s \\(\\d[\\d,]*/s\\)`))
    const snapshot = /roll back with: aas-migrate --rollback (\S+)/.exec(run.out)?.[1] as string
    const back = underPty(['--agents-root', v.root, '--rollback', snapshot], { AAS_PROGRESS_DELAY_MS: '0' })
    expect(back.code, back.out).toBe(0)
    expect(back.out).toMatch(/rollback: 13\/13 files in /)
  })

  it('draws no progress with --no-progress, with --json, or when stderr is not a terminal', async () => {
    const v = await vault()
    const quiet = underPty(['--agents-root', v.root, '--to', 'v2', '--dry-run', '--no-progress'], { AAS_PROGRESS_DELAY_MS: '0' })
    expect(quiet.code).toBe(0)
    expect(quiet.out).not.toMatch(PROGRESS)
    expect(quiet.out).toContain('diff --git')
    const json = underPty(['--agents-root', v.root, '--to', 'v2', '--dry-run', '--json'], { AAS_PROGRESS_DELAY_MS: '0' })
    expect(json.code).toBe(0)
    expect(json.out).not.toMatch(PROGRESS)
    const piped = bin(['--agents-root', v.root, '--to', 'v2'], { env: { AAS_PROGRESS_DELAY_MS: '0', NO_COLOR: undefined } })
    expect(piped.code).toBe(0)
    expect(piped.stderr).toBe('')
    expect(piped.stdout).not.toMatch(PROGRESS)
    expect(piped.stdout).not.toMatch(ANSI_COLOR)
  })

  it('colors the diff, the doctor marks and Error: like git, and never with NO_COLOR or --no-color', async () => {
    const v = await vault()
    const dry = underPty(['--agents-root', v.root, '--to', 'v2', '--dry-run'])
    expect(dry.out).toContain('\x1b[1mdiff --git a/')
    expect(dry.out).toContain('\x1b[32m+\x1b[m\x1b[32mprovenance: v1_migrated\x1b[m')
    expect(dry.out).toMatch(/\x1b\[36m@@ /)
    const refused = underPty(['--agents-root', v.root, '--to', 'v1'])
    expect(refused.code).toBe(1)
    expect(refused.out).toContain('\x1b[1m\x1b[31mError:\x1b[m Target version v1 is not above current v1.')
    const doctor = underPty(['--agents-root', v.root, '--doctor'])
    expect(doctor.out).toContain('\x1b[32mok  \x1b[m')

    for (const off of [
      { env: { NO_COLOR: '1' }, args: [] },
      { env: {}, args: ['--no-color'] },
    ]) {
      for (const args of [['--to', 'v2', '--dry-run'], ['--to', 'v1'], ['--doctor']]) {
        const r = underPty(['--agents-root', v.root, ...args, ...off.args], off.env)
        expect(r.out.length).toBeGreaterThan(0)
        expect(r.out, `${args.join(' ')} ${JSON.stringify(off)}`).not.toMatch(ANSI_COLOR)
      }
    }
  })

  it('never colors output that goes to a pipe, even without NO_COLOR', async () => {
    const v = await vault()
    const r = bin(['--agents-root', v.root, '--to', 'v2', '--dry-run'], { env: { NO_COLOR: undefined } })
    expect(r.stdout).toContain('diff --git a/')
    expect(r.stdout + r.stderr).not.toMatch(ANSI_COLOR)
  })
})
