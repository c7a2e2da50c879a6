import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseFaultSpec } from '../../src/transaction/faults.js'
import { repoRoot } from '../helpers/make-vault.js'

// A child that passes named points and prints each one before passing it. It runs
// on plain node with faults.ts transpiled next to it (it has no imports), so each
// spawn is cheap.
const SCRIPT = `
import { faultPoint } from './faults.mjs'
const say = (s) => process.stdout.write(s + '\\n')
say('start'); faultPoint('after-journal')
for (let i = 1; i <= 5; i++) { say('ff ' + i); faultPoint('mid-fast-forward') }
for (let i = 1; i <= 3; i++) { say('rb ' + i); faultPoint('mid-rollback', i * 10) }
say('end'); faultPoint('before-journal-delete')
say('done')
`

describe('faultPoint', () => {
  let dir: string
  let script: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aas-fault-'))
    script = path.join(dir, 'child.mjs')
    await writeFile(script, SCRIPT)
    const source = await readFile(path.join(repoRoot, 'src/transaction/faults.ts'), 'utf8')
    const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText
    await writeFile(path.join(dir, 'faults.mjs'), js)
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  function run(fault: string | undefined) {
    const env = { ...process.env }
    delete env.AAS_FAULT
    if (fault !== undefined) env.AAS_FAULT = fault
    const child = spawnSync(process.execPath, [script], { cwd: dir, env, encoding: 'utf8' })
    return { signal: child.signal, status: child.status, lines: child.stdout.trim().split('\n'), stderr: child.stderr }
  }

  it('when AAS_FAULT is unset then every point is passed', () => {
    const r = run(undefined)
    expect(r.stderr).toBe('')
    expect(r.signal).toBeNull()
    expect(r.status).toBe(0)
    expect(r.lines.at(-1)).toBe('done')
  })

  it('when AAS_FAULT names a point then the process dies by SIGKILL at its first call', () => {
    const r = run('after-journal')
    expect(r.signal).toBe('SIGKILL')
    expect(r.lines).toEqual(['start'])
  })

  it('when AAS_FAULT gives name:n then the process dies at the n-th call of that point', () => {
    const r = run('mid-fast-forward:3')
    expect(r.signal).toBe('SIGKILL')
    expect(r.lines.at(-1)).toBe('ff 3')
  })

  it('when the caller passes a counter then it is matched instead of the call count', () => {
    expect(run('mid-rollback:20').lines.at(-1)).toBe('rb 2')
    const notReached = run('mid-rollback:2')
    expect(notReached.signal).toBeNull()
    expect(notReached.lines.at(-1)).toBe('done')
  })

  it('when AAS_FAULT names another point or a count never reached then nothing happens', () => {
    expect(run('mid-fast-forward:6').status).toBe(0)
    expect(run('no-such-point').status).toBe(0)
  })

  it('when AAS_FAULT names the last point then everything before it ran', () => {
    expect(run('before-journal-delete').lines.at(-1)).toBe('end')
  })

  it('when parsing AAS_FAULT then lists, counts and malformed parts are handled', () => {
    expect(parseFaultSpec(undefined)).toEqual([])
    expect(parseFaultSpec('after-journal')).toEqual([{ name: 'after-journal', at: 1 }])
    expect(parseFaultSpec('mid-fast-forward:137, mid-rollback:12')).toEqual([
      { name: 'mid-fast-forward', at: 137 },
      { name: 'mid-rollback', at: 12 },
    ])
    expect(parseFaultSpec('bad name,x:0,y:-1,ok:2')).toEqual([{ name: 'ok', at: 2 }])
  })
})
