import { readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'
import { cli, type CliRun } from '../helpers/run-cli.js'

// Zod mirrors of docs/json.md: a field added, renamed or retyped fails here.
const errorShape = z.strictObject({ code: z.string(), message: z.string(), hint: z.string().nullable(), data: z.record(z.string(), z.unknown()) })
const envelope = <C extends string | null, S extends z.ZodRawShape>(command: z.ZodType<C>, shape: S) =>
  z.strictObject({ schemaVersion: z.literal(1), command, ok: z.boolean(), error: errorShape.nullable(), ...shape })
const ref = z.strictObject({ name: z.string(), ref: z.string(), commit: z.string() })
// A dry run's snapshot has no ref: its commit is the pending ref's parent.
const runSnapshot = z.strictObject({ name: z.string(), ref: z.string().nullable(), commit: z.string() })
const validation = z.strictObject({
  ok: z.boolean(),
  version: z.number(),
  checked: z.number(),
  mode: z.enum(['schema', 'structure-only']),
  coverage: z.strictObject({ memory: z.enum(['schema', 'structure-only']), wiki: z.enum(['schema', 'structure-only']) }),
  note: z.string(),
  failures: z.array(
    z.strictObject({ unitId: z.string(), unitType: z.enum(['memory', 'wiki']), issues: z.array(z.strictObject({ field: z.string(), message: z.string() })) }),
  ),
})
const migrateResult = z.strictObject({
  ok: z.boolean(),
  runId: z.string(),
  agentsRoot: z.string(),
  dryRun: z.boolean(),
  from: z.number().nullable(),
  target: z.number(),
  steps: z.array(z.strictObject({ from: z.number(), to: z.number(), file: z.string(), status: z.enum(['applied', 'failed', 'not-run']) })),
  snapshot: runSnapshot.nullable(),
  result: z.strictObject({ ref: z.string(), commit: z.string() }).nullable(),
  units: z.number(),
  touched: z.number(),
  changed: z.array(z.string()),
  diff: z.array(z.strictObject({ path: z.string(), oldOid: z.string().nullable(), newOid: z.string().nullable(), mode: z.string().nullable() })),
  patterns: z.array(
    z.strictObject({
      label: z.string(),
      units: z.number(),
      keys: z.array(
        z.strictObject({ key: z.string(), change: z.enum(['added', 'removed', 'changed']), from: z.string().nullable(), to: z.string().nullable() }),
      ),
      body: z.boolean(),
      onlyTheseLines: z.boolean(),
      unexplained: z.string().nullable(),
      examples: z.array(z.string()),
      paths: z.array(z.string()),
    }),
  ),
  validation: validation.nullable(),
  applied: z.boolean(),
  branchCommit: z.strictObject({ branch: z.string(), commit: z.string() }).nullable(),
  prunedPreviews: z.array(z.string()),
  durationMs: z.number(),
})
const applyResult = z.strictObject({
  ok: z.boolean(),
  runId: z.string(),
  agentsRoot: z.string(),
  preview: z.strictObject({ id: z.string(), ref: z.string(), commit: z.string(), time: z.string() }).nullable(),
  from: z.number().nullable(),
  target: z.number().nullable(),
  snapshot: ref.nullable(),
  result: z.strictObject({ ref: z.string(), commit: z.string() }).nullable(),
  touched: z.number(),
  changed: z.array(z.string()),
  applied: z.boolean(),
  branchCommit: z.strictObject({ branch: z.string(), commit: z.string() }).nullable(),
  prunedPreviews: z.array(z.string()),
  durationMs: z.number(),
})
const preview = z.strictObject({
  id: z.string(),
  ref: z.string(),
  commit: z.string(),
  tree: z.string(),
  base: z.string().nullable(),
  baseTree: z.string().nullable(),
  time: z.string(),
  timestamp: z.number(),
  from: z.number().nullable(),
  target: z.number().nullable(),
  touched: z.number(),
  scripts: z.array(z.strictObject({ file: z.string(), oid: z.string() })),
  validation: z.string().nullable(),
  applied: z.strictObject({ ref: z.string(), commit: z.string() }).nullable(),
  kept: z.boolean(),
  ageSeconds: z.number(),
  applies: z.boolean(),
  reasons: z.array(z.strictObject({ code: z.string(), message: z.string(), paths: z.array(z.string()).optional() })),
})
const snapshot = z.strictObject({
  name: z.string(),
  source: z.enum(['ref', 'tarball']),
  ref: z.string().nullable(),
  commit: z.string().nullable(),
  tree: z.string().nullable(),
  time: z.string(),
  timestamp: z.number(),
  target: z.number().nullable(),
  from: z.number().nullable(),
  runId: z.string().nullable(),
  files: z.number().nullable(),
  bytesAdded: z.number(),
  file: z.string().nullable(),
  importedFrom: z.string().nullable(),
  location: z.enum(['local', 'remote', 'both', 'diverged']),
  remoteCommit: z.string().nullable(),
})
// With aas.remote set, --to and --rollback push their snapshots after the run.
const push = z.strictObject({ remote: z.string(), ok: z.boolean(), transferred: z.number(), error: errorShape.nullable() })
const transfer = z.strictObject({
  ok: z.boolean(),
  remote: z.string(),
  transferred: z.array(z.string()),
  upToDate: z.number(),
  diverged: z.array(z.strictObject({ ref: z.string(), local: z.string(), remote: z.string() })),
})
const schemas = {
  status: envelope(z.literal('status'), {
    status: z.strictObject({
      agentsRoot: z.strictObject({ path: z.string(), origin: z.enum(['flag', 'env', 'default']) }),
      store: z.strictObject({ kind: z.enum(['repo', 'embedded']), gitDir: z.string(), exists: z.boolean() }),
      inventory: z.strictObject({
        units: z.number(),
        vaultVersion: z.number(),
        versions: z.array(z.strictObject({ version: z.number(), memory: z.number(), wiki: z.number(), total: z.number() })),
        unversioned: z.array(z.strictObject({ unitId: z.string(), unitType: z.string() })),
        unreadable: z.array(z.strictObject({ unitId: z.string(), unitType: z.string(), message: z.string(), line: z.number(), column: z.number() })),
      }),
      scripts: z.array(z.strictObject({ file: z.string(), from: z.number(), to: z.number() })),
      scriptErrors: z.array(z.object({ code: z.string(), message: z.string(), data: z.record(z.string(), z.unknown()) })),
      chain: z.strictObject({
        latest: z.number().nullable(),
        steps: z.array(z.strictObject({ from: z.number(), to: z.number(), file: z.string() })),
        complete: z.boolean(),
        gap: z.strictObject({ from: z.number(), to: z.number() }).nullable(),
      }),
      skipped: z.array(z.strictObject({ path: z.string(), reason: z.string() })),
      recovered: z.record(z.string(), z.unknown()).nullable(),
      python: z
        .strictObject({
          command: z.string(),
          source: z.enum(['flag', 'AAS_PYTHON', 'VIRTUAL_ENV', 'PATH']),
          ok: z.boolean(),
          executable: z.string().nullable(),
          version: z.string().nullable(),
          yaml: z.string().nullable(),
          libyaml: z.boolean(),
          atomicAgents: z.string().nullable(),
          validators: z
            .strictObject({
              package: z.string().nullable(),
              schemaVersion: z.number().nullable(),
              note: z.boolean(),
              wiki: z.boolean(),
              error: z.string().nullable(),
            })
            .nullable(),
          error: errorShape.partial({ hint: true }).nullable(),
        })
        .nullable(),
      validators: z.discriminatedUnion('kind', [
        z.strictObject({
          kind: z.literal('atomic-agents'),
          label: z.string(),
          schemaVersion: z.number().nullable(),
          note: z.boolean(),
          wiki: z.boolean(),
          error: z.string().nullable(),
        }),
        z.strictObject({ kind: z.literal('built-in'), reason: z.string() }),
      ]),
      cache: z.strictObject({ file: z.string(), loaded: z.boolean(), read: z.number(), written: z.boolean() }).nullable(),
    }),
  }),
  dryRun: envelope(z.literal('dry-run'), { result: migrateResult, errors: z.array(errorShape) }),
  migrate: envelope(z.literal('migrate'), { result: migrateResult, errors: z.array(errorShape), push: push.optional() }),
  apply: envelope(z.literal('apply'), { result: applyResult, errors: z.array(errorShape) }),
  listPreviews: envelope(z.literal('list-previews'), { previews: z.array(preview) }),
  rollback: envelope(z.literal('rollback'), {
    result: z.strictObject({
      ok: z.boolean(),
      runId: z.string(),
      agentsRoot: z.string(),
      snapshot: ref.nullable(),
      imported: z.boolean(),
      safety: ref.nullable(),
      written: z.number(),
      removed: z.number(),
      changed: z.array(z.string()),
      foreign: z.array(z.string()),
      forced: z.boolean(),
      branchCommit: z.strictObject({ branch: z.string(), commit: z.string() }).nullable(),
      durationMs: z.number(),
    }),
    errors: z.array(errorShape),
    push: push.optional(),
  }),
  listSnapshots: envelope(z.literal('list-snapshots'), {
    snapshots: z.array(snapshot),
    remote: z.strictObject({ name: z.string(), reachable: z.boolean(), error: errorShape.nullable() }).nullable(),
  }),
  pushSnapshots: envelope(z.literal('push-snapshots'), { transfer }),
  fetchSnapshots: envelope(z.literal('fetch-snapshots'), { transfer }),
  pruneSnapshots: envelope(z.literal('prune-snapshots'), {
    prune: z.strictObject({
      ok: z.boolean(),
      kept: z.array(z.string()),
      deleted: z.array(z.string()),
      remote: z.strictObject({ name: z.string(), deleted: z.array(z.string()) }).nullable(),
      repack: z.strictObject({ bytesBefore: z.number(), bytesAfter: z.number(), bytesFreed: z.number() }).nullable(),
    }),
  }),
  exportSnapshot: envelope(z.literal('export-snapshot'), { export: z.strictObject({ name: z.string(), file: z.string(), files: z.number() }) }),
  importSnapshot: envelope(z.literal('import-snapshot'), {
    import: z.strictObject({ name: z.string(), ref: z.string(), commit: z.string(), tree: z.string(), files: z.number(), skipped: z.array(z.string()) }),
  }),
  doctor: envelope(z.literal('doctor'), {
    doctor: z.strictObject({
      ok: z.boolean(),
      agentsRoot: z.string(),
      checks: z.array(
        z.strictObject({
          id: z.enum(['store', 'journal', 'lock', 'unreadable', 'unversioned', 'versions', 'chain', 'scripts', 'python', 'remote']),
          title: z.string(),
          ok: z.boolean(),
          message: z.string(),
          details: z.array(z.string()),
          fixes: z.array(z.string()),
        }),
      ),
      durationMs: z.number(),
    }),
  }),
  newScript: envelope(z.literal('new-script'), {
    newScript: z.strictObject({ from: z.number(), to: z.number(), script: z.string(), test: z.string(), scriptPath: z.string(), testPath: z.string() }),
  }),
  runReport: envelope(z.literal('run-report'), {
    report: z.strictObject({ file: z.string(), files: z.number(), bytes: z.number(), runId: z.string(), ref: z.string(), patterns: z.number() }),
  }),
  version: envelope(z.literal('version'), { version: z.string() }),
  errorOnly: envelope(z.string().nullable(), {}),
}

const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

// One document, nothing before or after it, parsed against its schema; ok matches the exit code.
function doc<T>(r: CliRun, schema: z.ZodType<T>, code = 0): T {
  expect(r.code, r.stderr).toBe(code)
  expect(r.stdout.endsWith('}\n')).toBe(true)
  const parsed = schema.parse(JSON.parse(r.stdout))
  expect((parsed as { ok: boolean }).ok).toBe(code === 0)
  expect((parsed as { error: unknown }).error === null).toBe(code === 0)
  return parsed
}

describe('--json', () => {
  it('gives one documented document for every command of a session, with ok and error matching the exit code', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const root = ['--agents-root', v.root, '--json']
    doc(await cli([...root, '--status']), schemas.status)
    doc(await cli([...root, '--doctor']), schemas.doctor)
    const dry = doc(await cli([...root, '--to', 'v3', '--dry-run']), schemas.dryRun)
    expect(dry.result.result?.ref).toMatch(/^refs\/aas\/pending\//)
    const previews = doc(await cli([...root, '--list-previews']), schemas.listPreviews)
    expect(previews.previews).toMatchObject([{ id: dry.result.runId, applies: true, from: 1, target: 3, validation: 'ok' }])
    const run = doc(await cli([...root, '--to', 'v2']), schemas.migrate)
    expect(run.result).toMatchObject({ applied: true, from: 1, target: 2, units: 13, touched: 13 })
    const stale = doc(await cli([...root, '--apply', 'latest']), schemas.apply, 1)
    expect(stale.error).toMatchObject({ code: 'PREVIEW_STALE', data: { preview: dry.result.runId } })
    expect(stale.result).toMatchObject({ applied: false, preview: { id: dry.result.runId }, snapshot: null })
    const report = doc(
      await cli([...root, '--report', path.join(v.dir, '..', `${path.basename(v.dir)}-run.html`), '--run', run.result.runId]),
      schemas.runReport,
    )
    expect(report.report).toMatchObject({ files: 13, runId: run.result.runId, ref: run.result.result?.ref, patterns: run.result.patterns.length })
    await rm(report.report.file)
    const refused = doc(await cli([...root, '--to', 'v2']), schemas.migrate, 1)
    expect(refused.error).toMatchObject({ code: 'NOT_ABOVE_CURRENT', data: { current: 2, target: 2 } })
    const list = doc(await cli([...root, '--list-snapshots']), schemas.listSnapshots)
    const name = list.snapshots[0]?.name as string
    expect(name).toBe(run.result.snapshot?.name)
    const out = path.join(v.root, '_migrations', 'snapshots', 'exported.tar.gz') // outside the snapshot scope
    const exported = doc(await cli([...root, '--export-snapshot', name, '--out', out]), schemas.exportSnapshot)
    expect(exported.export.file).toBe(out)
    expect((await readFile(out)).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]))
    // the remote stays for the rest of the session (--remote sets aas.remote); _cache/ is outside the snapshot scope
    const bareDir = path.join(v.root, '_cache', 'remote.git')
    git(v.root, 'init', '-q', '--bare', bareDir)
    const pushed = doc(await cli([...root, '--push-snapshots', bareDir]), schemas.pushSnapshots)
    expect(pushed.transfer.transferred).toHaveLength(2) // the snapshot and its run; the dry run's pending ref is not pushed
    const fetched = doc(await cli([...root, '--fetch-snapshots', bareDir]), schemas.fetchSnapshots)
    expect(fetched.transfer).toMatchObject({ transferred: [], upToDate: 2 })
    const located = doc(await cli([...root, '--list-snapshots', '--remote', bareDir]), schemas.listSnapshots)
    expect(located.snapshots.map((s) => [s.name, s.location])).toEqual([
      ['exported', 'local'], // the tarball just exported, not imported yet
      [name, 'both'],
    ])
    const pruned = doc(await cli([...root, '--prune-snapshots', '--keep-last', '1', '--remote', bareDir]), schemas.pruneSnapshots)
    expect(pruned.prune).toMatchObject({ kept: [name], deleted: [], remote: { name: bareDir, deleted: [] }, repack: null })
    const imported = doc(await cli([...root, '--import-snapshot', out]), schemas.importSnapshot)
    expect(imported.import.name).toBe('exported')
    const back = doc(await cli([...root, '--rollback', name]), schemas.rollback)
    expect(back.result.safety?.name).toMatch(/_pre_rollback$/)
    expect(back.push).toEqual({ remote: bareDir, ok: true, transferred: 2, error: null }) // aas.remote: the safety snapshot and the imported one
    const created = doc(await cli([...root, '--new-script']), schemas.newScript)
    expect(created.newScript).toMatchObject({ from: 3, to: 4, script: '_migrations/v3_to_v4.ts', test: '_migrations/tests/v3_to_v4.test.ts' })
  })

  it('reports a failed validation as SCHEMA_INVALID with every failing unit in result.validation', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const unit = path.join(v.root, 'writer/memory/project_newsletter.md')
    await (await import('node:fs/promises')).writeFile(unit, (await readFile(unit, 'utf8')).replace(/^captured: .*$/m, 'captured: yesterday'))
    const r = doc(await cli(['--agents-root', v.root, '--json', '--to', 'v2', '--dry-run']), schemas.dryRun, 1)
    expect(r.error?.code).toBe('SCHEMA_INVALID')
    expect(r.result.validation?.failures).toEqual([
      { unitId: 'writer/memory/project_newsletter.md', unitType: 'memory', issues: [{ field: 'captured', message: 'must be a date written YYYY-MM-DD' }] },
    ])
  })

  it('answers a usage error with exit 2 and a USAGE document whose command is null', async () => {
    const r = doc(await cli(['--json', '--status', '--doctor']), schemas.errorOnly, 2)
    expect(r.command).toBeNull()
    expect(r.error).toMatchObject({ code: 'USAGE', hint: expect.any(String) })
    expect(r.error?.message).toContain('--status and --doctor cannot be combined')
  })

  it('answers a refusal before any result with exit 1 and the envelope alone, command set', async () => {
    const v = await makeVault('vault-v1')
    vaults.push(v)
    const r = doc(await cli(['--agents-root', v.root, '--json', '--rollback', 'no_such_snapshot']), schemas.rollback.or(schemas.errorOnly), 1)
    expect(r.command).toBe('rollback')
    expect(r.error).toMatchObject({ code: 'SNAPSHOT_NOT_FOUND', data: { name: 'no_such_snapshot' } })
    const missing = doc(await cli(['--agents-root', path.join(v.dir, 'nope'), '--json', '--status']), schemas.errorOnly, 1)
    expect(missing).toMatchObject({ command: 'status', error: { code: 'AGENTS_ROOT_MISSING' } })
  })

  it('answers --version with the package version', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    expect(doc(await cli(['--version', '--json']), schemas.version).version).toBe(pkg.version)
  })

  it('on an unhealthy vault gives the doctor document with DOCTOR_UNHEALTHY naming the failed checks', async () => {
    const v = await makeVault('vault-broken')
    vaults.push(v)
    const r = doc(await cli(['--agents-root', v.root, '--json', '--doctor']), schemas.doctor, 1)
    expect(r.error).toMatchObject({ code: 'DOCTOR_UNHEALTHY', data: { failed: expect.arrayContaining(['unreadable', 'unversioned']) } })
    expect(r.doctor.checks.filter((c) => !c.ok).every((c) => c.fixes.length > 0)).toBe(true)
  })
})
