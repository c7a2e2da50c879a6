import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { makeVault, type TempVault } from '../helpers/make-vault.js'
import { bin } from '../helpers/run-cli.js'

// What a JS/TS script prints (console.log, console.info) goes to stderr, as a .py
// script's print() does: stdout carries only the dry run's patch or the --json document.

const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

async function printingVault(): Promise<TempVault> {
  const v = await makeVault('vault-v1')
  vaults.push(v)
  await rm(path.join(v.root, '_migrations', 'v2_to_v3.ts'))
  const file = path.join(v.root, '_migrations', 'v1_to_v2.mjs')
  const script = (await readFile(file, 'utf8')).replace(
    '  migrate(unit) {\n',
    '  migrate(unit) {\n    console.log("migrating", unit.unitId)\n    console.info("info line")\n',
  )
  expect(script).toContain('console.log("migrating"')
  await writeFile(file, script)
  return v
}

describe('a script that prints', () => {
  it('when run with --json then stdout is one JSON document and the prints are on stderr', async () => {
    const v = await printingVault()
    for (const args of [['--dry-run'], []]) {
      const r = bin(['--agents-root', v.root, '--to', 'v2', '--json', ...args])
      expect(r.code, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, result: { touched: 13 } })
      expect(r.stderr.match(/^migrating /gm)).toHaveLength(13)
    }
  })

  it('when previewed then stdout is only the patch', async () => {
    const v = await printingVault()
    const r = bin(['--agents-root', v.root, '--to', 'v2', '--dry-run', '--no-progress'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.startsWith('diff --git ')).toBe(true)
    expect(r.stdout).not.toMatch(/^(migrating|info line)/m)
    expect(r.stderr.match(/^info line$/gm)).toHaveLength(13)
  })
})
