import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeVault, type TempVault } from '../helpers/make-vault.js'
import { cli } from '../helpers/run-cli.js'

let vault: TempVault
let dir: string
beforeAll(async () => {
  vault = await makeVault('vault-v1')
  dir = await mkdtemp(path.join(tmpdir(), 'aas-report-cli-'))
})
afterAll(async () => {
  await vault.cleanup()
  await rm(dir, { recursive: true, force: true })
})

describe('--report and --open', () => {
  it.each([
    [['--to', 'v2', '--report', 'r.html'], '--report needs --dry-run'],
    [['--to', 'v2', '--dry-run', '--open'], '--open needs --report'],
    [['--status', '--report', 'r.html'], '--report does not apply to --status'],
  ])('%j is a usage error (exit 2)', async (args, message) => {
    const r = await cli(['--agents-root', vault.root, ...args])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(message)
  })

  it('with --open and no display, writes the report and says where it is', async () => {
    const file = path.join(dir, 'r.html')
    const r = await cli(['--agents-root', vault.root, '--to', 'v2', '--dry-run', '--report', file, '--open', '--json'], { DISPLAY: '', WAYLAND_DISPLAY: '' })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).ok).toBe(true)
    expect(r.stderr).toContain(`no display to open it on: open ${file} in a browser`)
    const html = await readFile(file, 'utf8')
    expect(html.startsWith('<!doctype html>')).toBe(true)
    expect(html).toContain('"p":"caldwell/memory/feedback_debt_priority.md"')
    expect((await readdir(dir)).sort()).toEqual(['r.html'])
  })

  it('when the report cannot be written then exits 1 naming the file, and leaves no temp file', async () => {
    const file = path.join(dir, 'missing', 'r.html')
    const r = await cli(['--agents-root', vault.root, '--to', 'v2', '--dry-run', '--stat', '--report', file])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`Error: Cannot write the report ${file}`)
    expect(r.stderr).toContain('--report a path in a folder that exists')
    expect(await readdir(dir)).not.toContain('missing')
  })
})
