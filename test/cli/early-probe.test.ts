import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixturesDir, makeVault, type TempVault } from '../helpers/make-vault.js'
import { binAsync } from '../helpers/run-cli.js'

// The built CLI starts --status's interpreter probe before the rest of it loads
// (src/cli/main.ts): the command must take that probe rather than start a second one,
// start its own full probe when the vault has .py scripts, and leave none running when
// it ends without one.

let dir = ''
const vaults: TempVault[] = []

// An interpreter (python3 on PATH) that logs each call: its flags before the probe's
// code (`-B -c CODE`) and whether the probe is light (`--light` after the code).
function loggingPython(name: string): { command: string; log: string } {
  const command = path.join(dir, name)
  const log = path.join(dir, `${name}.log`)
  writeFileSync(command, `#!/bin/sh\necho "call $1 $2 $(if [ "$4" = "--light" ]; then echo light; else echo full; fi)" >> ${log}\nexec python3 "$@"\n`)
  chmodSync(command, 0o755)
  return { command, log }
}

const calls = (log: string): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [])

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'aas-early-probe-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
  for (const v of vaults) await v.cleanup()
})

describe('the early interpreter probe of --status', () => {
  it('when a vault has no .py script then --status probes its interpreter once, lightly, and reports that probe', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const py = loggingPython('light')
    const r = await binAsync(['--agents-root', v.root, '--status', '--json'], { env: { AAS_PYTHON: py.command } })
    expect(r.code).toBe(0)
    expect(calls(py.log)).toEqual(['call -B -c light'])
    const status = JSON.parse(r.stdout).status
    expect(status.python).toBeNull()
    expect(status.validators).toMatchObject({ kind: 'built-in' })
    expect(status.validators.reason).toMatch(/atomic_agents is not installed in \//)
  })

  it('when the vault has a .py script then --status reports a full probe (PyYAML looked for), not the early light one', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    await rm(path.join(v.root, '_migrations', 'v1_to_v2.mjs'))
    await copyFile(path.join(fixturesDir, 'migrations-py', 'v1_to_v2.py'), path.join(v.root, '_migrations', 'v1_to_v2.py'))
    const py = loggingPython('full')
    const r = await binAsync(['--agents-root', v.root, '--status', '--json'], { env: { AAS_PYTHON: py.command } })
    expect(r.code).toBe(0)
    expect(calls(py.log)).toContain('call -B -c full')
    const status = JSON.parse(r.stdout).status
    expect(status.python).toMatchObject({ command: py.command, source: 'AAS_PYTHON', ok: true })
    expect(status.python.yaml).toMatch(/^\d/)
  })

  it('when --python names the interpreter then the one $AAS_PYTHON names is never started', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const unused = loggingPython('unused')
    const named = loggingPython('named')
    const r = await binAsync(['--agents-root', v.root, '--status', '--python', named.command, '--json'], { env: { AAS_PYTHON: unused.command } })
    expect(r.code).toBe(0)
    expect(calls(unused.log)).toEqual([])
    expect(calls(named.log)).toEqual(['call -B -c light'])
  })

  it('when --status fails before it probes then the early probe is stopped, not waited for', async () => {
    // An interpreter that never answers: the probe's own timeout is 20 s.
    const hang = path.join(dir, 'hang')
    writeFileSync(hang, '#!/bin/sh\nexec sleep 60\n')
    chmodSync(hang, 0o755)
    const started = Date.now()
    const r = await binAsync(['--agents-root', path.join(dir, 'no-such-vault'), '--status'], { env: { AAS_PYTHON: hang } })
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/no-such-vault/)
    expect(Date.now() - started).toBeLessThan(15_000)
  }, 40_000)
})
