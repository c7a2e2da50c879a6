import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { probePython } from '../../src/migrations/python-interpreter.js'
import { installAtomicAgents, type FakeAtomicAgents } from '../helpers/atomic-agents.js'
import { fixturesDir, makeVault, type TempVault } from '../helpers/make-vault.js'
import { bin } from '../helpers/run-cli.js'
import { captureTree, filesOf, type TreeState } from '../helpers/tree-state.js'

// Validation parity with the Python runner: with atomic-agents installed in the
// interpreter, every unit a run produces is also checked by that installation's own
// validators (atomic_agents._schema), whatever language the chain is in; a run whose
// target they cannot accept is refused before anything is written. The installation is
// a stand-in written by test/helpers/atomic-agents.ts onto PYTHONPATH.

const PY_FIXTURE = path.join(fixturesDir, 'migrations-py', 'v1_to_v2.py')
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

// The sample vault with the release .py as its only script, or a .mjs that only bumps
// the version (no `provenance`, no schema or validate of its own).
const BUMP_ONLY = `export default {
  from: 1,
  to: 2,
  appliesTo: (unit) => unit.readFrontmatter().schema_version === 1,
  migrate(unit) {
    unit.writeFrontmatter({ ...unit.readFrontmatter(), schema_version: 2 })
    return { changes: ['schema_version 1→2'] }
  },
}
`
async function vault(script: 'py' | 'mjs' = 'py'): Promise<TempVault> {
  const v = await makeVault('vault-v1')
  cleanups.push(() => v.cleanup())
  await rm(path.join(v.root, '_migrations', 'v2_to_v3.ts'))
  await rm(path.join(v.root, '_migrations', 'v1_to_v2.mjs'))
  if (script === 'py') await copyFile(PY_FIXTURE, path.join(v.root, '_migrations', 'v1_to_v2.py'))
  else await writeFile(path.join(v.root, '_migrations', 'v1_to_v2.mjs'), BUMP_ONLY)
  return v
}

async function installed(options: FakeAtomicAgents = {}): Promise<NodeJS.ProcessEnv> {
  const dir = await mkdtemp(path.join(tmpdir(), 'aas-atomic-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  await installAtomicAgents(dir, options)
  return { PYTHONPATH: dir }
}

const vaultOnly = (rel: string): boolean => rel.startsWith('_migrations/aas.git') || rel === '_migrations/migration.jsonl' || rel.startsWith('.migration.lock')
const state = async (root: string): Promise<TreeState> => filesOf(await captureTree(root, { exclude: vaultOnly }))
const NOTE = 'caldwell/memory/feedback_debt_priority.md'
const WIKI = 'caldwell/wiki/avalanche_method.md'

async function lastAudit(root: string): Promise<Record<string, unknown>> {
  const lines = (await readFile(path.join(root, '_migrations', 'migration.jsonl'), 'utf8')).trim().split('\n')
  return JSON.parse(lines[lines.length - 1] as string)
}

describe('with atomic-agents installed in the interpreter', () => {
  it('when the chain is the release .py then every unit also passes its validators, and --status says they apply', async () => {
    const env = await installed()
    const v = await vault()
    const status = bin(['--agents-root', v.root, '--status'], { env })
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toMatch(
      /^validators: +atomic-agents 9\.9\.0 \(.+\/atomic_agents\), accepts schema v2 only \(notes and wiki pages\), besides the built-in rules/m,
    )
    expect(JSON.parse(bin(['--agents-root', v.root, '--status', '--json'], { env }).stdout).status.validators).toMatchObject({
      kind: 'atomic-agents',
      schemaVersion: 2,
      note: true,
      wiki: true,
      error: null,
    })
    // `from atomic_agents.migration import MigratableUnit` resolves to the installed package
    const run = bin(['--agents-root', v.root, '--to', 'v2', '--json'], { env })
    expect(run.code, run.stderr).toBe(0)
    const doc = JSON.parse(run.stdout)
    expect(doc.result.validation).toMatchObject({ ok: true, checked: 13, mode: 'schema', coverage: { memory: 'schema', wiki: 'schema' } })
    expect(doc.result.validation.note).toMatch(/also checked by atomic-agents 9\.9\.0 \(.+\)'s own validators\.$/)
    expect(await readFile(path.join(v.root, NOTE), 'utf8')).toContain('provenance: v1_migrated')
  })

  it('when a migrated unit breaks one of its rules then the run fails listing `path: atomic-agents: message` and the vault is byte-identical', async () => {
    const env = await installed()
    const v = await vault()
    const note = path.join(v.root, NOTE)
    await writeFile(note, (await readFile(note, 'utf8')).replace(/^name: .*$/m, `name: ${'n'.repeat(90)}`))
    const wiki = path.join(v.root, WIKI)
    await writeFile(wiki, (await readFile(wiki, 'utf8')).replace('type: wiki_page', 'type: wiki'))
    const before = await state(v.root)
    for (const dry of [true, false]) {
      const run = bin(['--agents-root', v.root, '--to', 'v2', '--no-progress', ...(dry ? ['--dry-run'] : [])], { env })
      expect(run.code).toBe(1)
      // the summary goes to stderr after a dry run (stdout is the patch), to stdout after a run
      const summary = dry ? run.stderr : run.stdout
      expect(summary).toContain(`${NOTE}: atomic-agents: field 'name' exceeds max length 80`)
      expect(summary).toContain(`${WIKI}: atomic-agents: type must be wiki_page`)
      expect(summary).toMatch(/validation: 2 of 13 units invalid at v2/)
      if (!dry)
        expect(summary).toMatch(
          /^not migrated: v1 -> v2 via _migrations\/v1_to_v2\.py\nunits: 13 read, 13 touched, 13 files would have changed \(none was written\)$/m,
        )
      expect(run.stderr).toMatch(/^Error: 2 units would not be valid at v2/m)
      expect(await state(v.root)).toEqual(before)
    }
    expect(await lastAudit(v.root)).toMatchObject({ command: '--to v2', result: 'failed', error_code: 'SCHEMA_INVALID', rolled_back: false })
  })

  it('when the chain is a .mjs script then its output is checked by the same validators', async () => {
    const env = await installed()
    const v = await vault('mjs')
    const before = await state(v.root)
    // --status without a .py script probes lightly; with atomic_agents there it still imports PyYAML
    expect(bin(['--agents-root', v.root, '--status'], { env }).stdout).toMatch(
      /^validators: +atomic-agents 9\.9\.0 \(.+\/atomic_agents\), accepts schema v2 only/m,
    )
    const saved = process.env.PYTHONPATH
    process.env.PYTHONPATH = env.PYTHONPATH // the probe's interpreter runs in this process's environment
    try {
      const light = await probePython({ light: true })
      expect(light).toMatchObject({ ok: true, atomicAgents: expect.stringContaining('atomic_agents'), yaml: expect.stringMatching(/^\d/) })
    } finally {
      if (saved === undefined) delete process.env.PYTHONPATH
      else process.env.PYTHONPATH = saved
    }
    const run = bin(['--agents-root', v.root, '--to', 'v2', '--json'], { env })
    expect(run.code).toBe(1)
    const doc = JSON.parse(run.stdout)
    expect(doc.error.code).toBe('SCHEMA_INVALID')
    const lines: string[] = doc.result.validation.failures.flatMap((f: { unitId: string; issues: Array<{ field: string; message: string }> }) =>
      f.issues.map((i) => `${f.unitId}: ${i.field}: ${i.message}`),
    )
    expect(lines).toContain(`${NOTE}: atomic-agents: missing required field 'provenance'`)
    expect(doc.result.validation.failures).toHaveLength(13)
    expect(await state(v.root)).toEqual(before)
  })

  it('when its validators accept another schema version than the target then the run is refused before anything is written', async () => {
    const env = await installed({ schemaVersion: 1 })
    const v = await vault()
    const before = await state(v.root)
    for (const args of [['--dry-run'], []]) {
      const run = bin(['--agents-root', v.root, '--to', 'v2', '--json', ...args], { env })
      expect(run.code).toBe(1)
      const doc = JSON.parse(run.stdout)
      expect(doc.error).toMatchObject({ code: 'ATOMIC_VALIDATORS_UNUSABLE', data: { reason: 'version', schemaVersion: 1, target: 2 } })
      expect(doc.error.message).toMatch(
        /^The installed atomic-agents 9\.9\.0 \(.+\) validates schema v1 only \(its CURRENT_SCHEMA_VERSION\), but this run migrates to v2/,
      )
      expect(doc.error.hint).toContain('Install the atomic-agents release that brings schema v2 first')
      expect(run.stderr).toContain('Error: The installed atomic-agents 9.9.0')
      expect(doc.result.snapshot).toBeNull()
    }
    expect(await state(v.root)).toEqual(before)
    expect(await lastAudit(v.root)).toMatchObject({ result: 'refused', error_code: 'ATOMIC_VALIDATORS_UNUSABLE', from_version: 1, to_version: 2 })
    expect(bin(['--agents-root', v.root, '--status'], { env }).stdout).toMatch(/^validators: +atomic-agents 9\.9\.0 .*accepts schema v1 only/m)
  })

  it('when it cannot be imported then the run is refused naming the error, and --status shows it', async () => {
    const env = await installed({ brokenImport: true })
    const v = await vault()
    const before = await state(v.root)
    const run = bin(['--agents-root', v.root, '--to', 'v2', '--json'], { env })
    expect(run.code).toBe(1)
    const doc = JSON.parse(run.stdout)
    expect(doc.error).toMatchObject({ code: 'ATOMIC_VALIDATORS_UNUSABLE', data: { reason: 'import' } })
    expect(doc.error.message).toContain("ModuleNotFoundError: No module named 'atomic_agents_missing_dependency'")
    expect(await state(v.root)).toEqual(before)
    expect(bin(['--agents-root', v.root, '--status'], { env }).stdout).toMatch(/^ {2}it cannot be imported, so a run is refused: ModuleNotFoundError/m)
  })

  it('when a validator crashes on a unit then that unit fails as `validation crashed`, and without a wiki validator wiki pages are left to the built-in rules', async () => {
    const env = await installed({ crashOnName: 'Household', wiki: false })
    const v = await vault()
    const user = path.join(v.root, 'caldwell/memory/user_household.md')
    await writeFile(user, (await readFile(user, 'utf8')).replace(/^name: .*$/m, 'name: Household'))
    const wiki = path.join(v.root, WIKI)
    await writeFile(wiki, (await readFile(wiki, 'utf8')).replace('type: wiki_page', 'type: wiki'))
    const run = bin(['--agents-root', v.root, '--to', 'v2', '--dry-run', '--json'], { env })
    expect(run.code).toBe(1)
    const doc = JSON.parse(run.stdout)
    expect(doc.result.validation.failures).toEqual([
      {
        unitId: 'caldwell/memory/user_household.md',
        unitType: 'memory',
        issues: [{ field: 'atomic-agents', message: "validation crashed: KeyError: 'no_such_key'" }],
      },
    ])
    expect(doc.result.validation.note).toContain('(memory notes only: it has no wiki validator)')
    expect(doc.result.validation.coverage).toEqual({ memory: 'schema', wiki: 'structure-only' })
  })
})

describe('without atomic-agents', () => {
  it('when the interpreter has no atomic_agents then the built-in rules and the scripts own apply, and --status says why', async () => {
    const v = await vault()
    const status = bin(['--agents-root', v.root, '--status'])
    expect(status.stdout).toMatch(/^validators: +built-in rules and the scripts' own \(atomic_agents is not installed in .+\)$/m)
    const light = await probePython({ light: true })
    expect(light).toMatchObject({ ok: true, atomicAgents: null, yaml: '', libyaml: false, error: null })
    expect((await probePython()).yaml).toMatch(/^\d/) // the full probe imports PyYAML
    const mjs = await vault('mjs')
    expect(bin(['--agents-root', mjs.root, '--status'], {}).stdout).toMatch(
      /^validators: +built-in rules and the scripts' own \(atomic_agents is not installed in .+\)$/m,
    )
    const missing = bin(['--agents-root', v.root, '--status', '--json', '--python', '/nonexistent/python3'])
    expect(JSON.parse(missing.stdout).status.validators).toEqual({
      kind: 'built-in',
      reason: 'no Python interpreter (/nonexistent/python3) to look for atomic-agents in',
    })
    const run = bin(['--agents-root', v.root, '--to', 'v2', '--dry-run', '--json'])
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout).result.validation.note).not.toContain('atomic-agents')
  })
})
