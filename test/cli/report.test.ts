import { appendFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashBlob } from '../../src/transaction/blob-hash.js'
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
    [['--run', 'latest'], '--run needs --report'],
    [['--to', 'v2', '--run', 'latest', '--report', 'r.html'], '--to and --run cannot be combined'],
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

  it('--report FILE --run RUN_ID writes the report of a recorded real run from the store; latest is the newest run', async () => {
    const run = await cli(['--agents-root', vault.root, '--to', 'v2', '--json'])
    expect(run.code, run.stderr).toBe(0)
    const result = JSON.parse(run.stdout).result
    // the script is edited after the run: the report shows the one that ran (its Aas-Script trailer)
    const script = path.join(vault.root, '_migrations', 'v1_to_v2.mjs')
    const ran = hashBlob(await readFile(script))
    await appendFile(script, '// edited after the run\n')
    for (const id of [result.runId, 'latest']) {
      const file = path.join(dir, `run-${id}.html`)
      const r = await cli(['--agents-root', vault.root, '--report', file, '--run', id, '--json'])
      expect(r.code, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ command: 'run-report', ok: true, report: { file, files: 13, runId: result.runId, ref: result.result.ref } })
      const html = await readFile(file, 'utf8')
      const data = JSON.parse(/<script type="application\/json" id="aas-data">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '')
      expect(data.header).toMatchObject({
        dryRun: false,
        from: 1,
        target: 2,
        result: result.result,
        snapshot: { ref: result.snapshot.ref, commit: result.snapshot.commit },
      })
      expect(data.header.scripts).toEqual([{ file: '_migrations/v1_to_v2.mjs', blob: ran }])
      expect(data.header.validationSummary).toBe('ok')
      expect(data.files.map((f: { p: string }) => f.p)).toEqual(result.changed)
      expect(data.patterns).toEqual(result.patterns.map(({ paths: _paths, ...p }: { paths: string[] }) => p))
    }
  })

  it('--run with an unknown id refuses with REF_INVALID naming the refs it looked for', async () => {
    const r = await cli(['--agents-root', vault.root, '--report', path.join(dir, 'x.html'), '--run', '20260101T000000Z-000000', '--json'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'REF_INVALID', data: { run: '20260101T000000Z-000000' } })
    expect(r.stderr).toContain('refs/aas/runs/20260101T000000Z-000000 nor refs/aas/pending/20260101T000000Z-000000')
  })
})
