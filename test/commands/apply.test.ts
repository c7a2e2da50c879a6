import { appendFile, cp, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import * as api from '../../src/index.js'
import { openStore } from '../../src/git/open-store.js'
import { git, makeVault, type TempVault } from '../helpers/make-vault.js'
import { cli } from '../helpers/run-cli.js'
import { captureTree } from '../helpers/tree-state.js'

// --apply: the vault fast-forwarded to exactly the tree a dry run previewed, or refused
// with the vault byte-identical; on both store backends.

const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

// The engine's own files are not the vault state compared.
const notEngine = (rel: string): boolean =>
  rel === '.git' || rel.startsWith('.git/') || rel.startsWith('_migrations/aas.git') || rel === '_migrations/migration.jsonl'

const DAY_MS = 86_400_000

async function v1(backend: 'cli' | 'js', opts: { git?: boolean } = {}): Promise<TempVault & { env: NodeJS.ProcessEnv }> {
  const v = await makeVault('vault-v1', { migrations: ['v1_to_v2.mjs', 'v2_to_v3.ts'], ...opts })
  vaults.push(v)
  return { ...v, env: { AAS_GIT: backend } }
}

async function auditLines(root: string): Promise<Array<Record<string, unknown>>> {
  return (await readFile(path.join(root, '_migrations/migration.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
}

describe.each(['cli', 'js'] as const)('--apply on the %s backend', (backend) => {
  it('applies byte-exactly what --to gives, runs no script, writes its audit line, and refuses a second apply', async () => {
    const v = await v1(backend)
    const twin = `${v.root}-twin`
    await cp(v.root, twin, { recursive: true })
    vaults.push({ dir: twin, root: twin, cleanup: () => import('node:fs/promises').then((f) => f.rm(twin, { recursive: true, force: true })) })
    const again = await cli(['--agents-root', v.root, '--to', 'v3', '--dry-run', '--json'], v.env)
    expect(again.code, again.stderr).toBe(0)
    const id2 = JSON.parse(again.stdout).result.runId as string
    const r = await cli(['--agents-root', v.root, '--apply', 'latest', '--json'], v.env)
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.command).toBe('apply')
    expect(doc.result).toMatchObject({ applied: true, from: 1, target: 3, preview: { id: id2 } })
    expect(doc.result.snapshot.ref).toMatch(/^refs\/aas\/snapshots\/.*_pre_v3_migration$/)
    expect(doc.result.result.ref).toBe(`refs/aas/runs/${doc.result.runId}`)
    const real = await cli(['--agents-root', twin, '--to', 'v3'], v.env)
    expect(real.code, real.stderr).toBe(0)
    expect(await captureTree(v.root, { exclude: notEngine })).toEqual(await captureTree(twin, { exclude: notEngine }))
    const store = await openStore({ agentsRoot: v.root, backend, create: false })
    const result = await store.readCommit(doc.result.result.commit)
    expect(result.parents).toEqual([doc.result.snapshot.commit])
    expect(result.tree).toBe((await store.readCommit(doc.result.preview.commit)).tree)
    expect(await store.resolveRef(`refs/aas/applied/${id2}`)).toBe(doc.result.result.commit)
    const line = (await auditLines(v.root)).at(-1)
    expect(line).toMatchObject({ command: '--apply latest', result: 'ok', from_version: 1, to_version: 3, dry_run: false, preview: id2 })
    expect(line?.units_touched).toBeGreaterThan(0)

    const before = await captureTree(v.root, { exclude: notEngine })
    const second = await cli(['--agents-root', v.root, '--apply', id2, '--json'], v.env)
    expect(second.code).toBe(1)
    expect(JSON.parse(second.stdout).error).toMatchObject({ code: 'PREVIEW_APPLIED', data: { preview: id2 } })
    expect(second.stderr).toMatch(/^Error: Preview .* was applied already/)
    expect(await captureTree(v.root, { exclude: notEngine })).toEqual(before)
    expect((await auditLines(v.root)).at(-1)).toMatchObject({ result: 'refused', error_code: 'PREVIEW_APPLIED' })
    // Without its mark (an apply killed after its fast-forward, before the mark), the vault
    // holding the previewed tree still refuses it as applied.
    await store.deleteRef(`refs/aas/applied/${id2}`, doc.result.result.commit)
    const unmarked = await api.apply({ agentsRoot: v.root, preview: id2, env: v.env, backend })
    expect(unmarked.error).toMatchObject({ code: 'PREVIEW_APPLIED', message: `The vault already holds the state previewed by ${id2}.` })
    expect(await captureTree(v.root, { exclude: notEngine })).toEqual(before)

    // The apply's snapshot rolls it back like a --to's.
    const back = await cli(['--agents-root', v.root, '--rollback', doc.result.snapshot.name], v.env)
    expect(back.code, back.stderr).toBe(0)
    const fresh = await makeVault('vault-v1', { migrations: ['v1_to_v2.mjs', 'v2_to_v3.ts'] })
    vaults.push(fresh)
    expect(await captureTree(v.root, { exclude: notEngine })).toEqual(await captureTree(fresh.root, { exclude: notEngine }))
  })

  it('a vault lock temp left by a killed process (between writing and linking it) is no change of the vault: the preview applies', async () => {
    const v = await v1(backend)
    const preview = await cli(['--agents-root', v.root, '--to', 'v3', '--dry-run', '--json'], v.env)
    expect(preview.code, preview.stderr).toBe(0)
    await writeFile(path.join(v.root, '.migration.lock.aas-tmp-17732a2123f31495'), '{"pid":1}\n')
    const r = await cli(['--agents-root', v.root, '--apply', 'latest', '--json'], v.env)
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).result).toMatchObject({ applied: true, target: 3 })
  })

  it('a preview records its tree, scripts and validation; when a unit, a file that is no unit, a dot-folder file or a script changed since, --apply refuses naming it, vault byte-identical', async () => {
    const v = await v1(backend)
    const dry = await api.migrate({ agentsRoot: v.root, target: 3, dryRun: true, env: v.env, backend })
    expect(dry.ok, dry.error?.message).toBe(true)
    expect(dry.prunedPreviews).toEqual([])
    // What the preview recorded: its starting tree (its parent's), every script's blob id, its validation.
    const store = await openStore({ agentsRoot: v.root, backend, create: false })
    const c = await store.readCommit(dry.result?.commit as string)
    const parent = await store.readCommit(c.parents[0] as string)
    expect(parent.oid).toBe(dry.snapshot?.commit)
    const lines = c.message.trimEnd().split('\n')
    expect(lines).toContain(`Aas-Base-Tree: ${parent.tree}`)
    expect(lines).toContain('Aas-Validation: ok')
    const hash = (f: string): string => git(v.root, 'hash-object', '--no-filters', f).trim()
    expect(lines.filter((l) => l.startsWith('Aas-Script: '))).toEqual([
      `Aas-Script: _migrations/v1_to_v2.mjs ${hash('_migrations/v1_to_v2.mjs')}`,
      `Aas-Script: _migrations/v2_to_v3.ts ${hash('_migrations/v2_to_v3.ts')}`,
    ])

    const cases = [
      ['caldwell/memory/user_household.md', 'PREVIEW_STALE'],
      ['caldwell/persona.md', 'PREVIEW_STALE'],
      ['.obsidian/app.json', 'PREVIEW_STALE'],
      ['_migrations/v2_to_v3.ts', 'PREVIEW_SCRIPT_CHANGED'],
    ] as const
    for (const [file, code] of cases) {
      const original = await readFile(path.join(v.root, file))
      await appendFile(path.join(v.root, file), '\n// changed\n')
      const before = await captureTree(v.root, { exclude: notEngine })
      const r = await api.apply({ agentsRoot: v.root, preview: dry.runId, env: v.env, backend })
      expect(r.error?.code, file).toBe(code)
      expect(r.error?.data).toMatchObject(code === 'PREVIEW_STALE' ? { paths: [file] } : { scripts: [file] })
      expect(r.error?.message).toContain(file)
      expect(r.error?.hint).toMatch(/--to v3 --dry-run/)
      expect(r.applied).toBe(false)
      expect(await captureTree(v.root, { exclude: notEngine })).toEqual(before)
      const list = await api.listPreviews({ agentsRoot: v.root, backend })
      expect(list.map((p) => [p.id, p.applies, p.reasons.map((x) => x.code)])).toEqual([[dry.runId, false, [code]]])
      const text = await cli(['--agents-root', v.root, '--list-previews'], v.env)
      expect(text.stdout.split('\n')[1]).toMatch(
        new RegExp(`^${dry.runId} +\\d+ min +v1 -> v3 +13 +stale: ${code === 'PREVIEW_STALE' ? 'changed since' : 'script changed'}: ${file}$`),
      )
      await writeFile(path.join(v.root, file), original)
    }
    expect(await store.listRefs('refs/aas/snapshots/')).toEqual([]) // the refused snapshots got no ref
    expect(await store.listRefs('refs/aas/runs/')).toEqual([])
    expect(await store.resolveRef(`refs/aas/kept/${dry.runId}`)).toBe(dry.result?.commit)
    // Back as it was: the preview applies again.
    expect((await api.listPreviews({ agentsRoot: v.root, backend }))[0]).toMatchObject({ applies: true, reasons: [], kept: true })
  })

  it('refuses when there is no preview, a preview whose validation failed, and an unknown run id; a modifier of another action is a usage error', async () => {
    const v = await v1(backend)
    for (const args of [
      ['--apply', 'latest', '--dry-run'],
      ['--apply', 'latest', '--to', 'v2'],
      ['--list-previews', '--commit'],
    ]) {
      const usage = await cli(['--agents-root', v.root, ...args], v.env)
      expect(usage.code, args.join(' ')).toBe(2)
    }
    const none = await api.apply({ agentsRoot: v.root, preview: 'latest', env: v.env, backend })
    expect(none.error?.code).toBe('PREVIEW_NOT_FOUND')
    // A v2 -> v3 script whose validation fails every unit.
    await writeFile(
      path.join(v.root, '_migrations/v2_to_v3.ts'),
      "export default { from: 2, to: 3, appliesTo: () => true, migrate(u) { const m = u.readFrontmatter(); m.schema_version = 3; u.writeFrontmatter(m); return true }, validate() { return ['name: always wrong'] } }\n",
    )
    const dry = await api.migrate({ agentsRoot: v.root, target: 3, dryRun: true, env: v.env, backend })
    expect(dry.error?.code).toBe('SCHEMA_INVALID')
    expect(dry.result?.ref).toBeTruthy()
    const before = await captureTree(v.root, { exclude: notEngine })
    const r = await api.apply({ agentsRoot: v.root, preview: 'latest', env: v.env, backend })
    expect(r.error?.code).toBe('PREVIEW_UNUSABLE')
    expect(r.preview?.id).toBe(dry.runId)
    expect(await captureTree(v.root, { exclude: notEngine })).toEqual(before)
    const unknown = await api.apply({ agentsRoot: v.root, preview: '20260101T000000Z-abcdef', env: v.env, backend })
    expect(unknown.error).toMatchObject({ code: 'PREVIEW_NOT_FOUND', data: { known: [dry.runId] } })
  })

  it('prunes previews older than AAS_KEEP_PREVIEWS (14 days by default), never one applied or named in --apply', async () => {
    const v = await makeVault('vault-v1', { migrations: ['v1_to_v2.mjs'] })
    vaults.push(v)
    const env = { AAS_GIT: backend }
    const at = (daysAgo: number) => () => new Date(Date.now() - daysAgo * DAY_MS)
    const dry = (daysAgo: number) => api.migrate({ agentsRoot: v.root, target: 2, dryRun: true, env, backend, now: at(daysAgo) })
    const old = await dry(20)
    const named = await dry(19)
    await appendFile(path.join(v.root, 'caldwell/persona.md'), 'later\n')
    expect((await api.apply({ agentsRoot: v.root, preview: named.runId, env, backend, now: at(19) })).error?.code).toBe('PREVIEW_STALE')
    const recent = await dry(10)
    const longer = await api.migrate({ agentsRoot: v.root, target: 2, dryRun: true, env: { ...env, AAS_KEEP_PREVIEWS: '30d' }, backend })
    expect(longer.prunedPreviews).toEqual([])
    const next = await api.migrate({ agentsRoot: v.root, target: 2, dryRun: true, env, backend })
    expect(next.prunedPreviews).toEqual([old.runId])
    const left = (await api.listPreviews({ agentsRoot: v.root, backend })).map((p) => p.id)
    expect(left.sort()).toEqual([named.runId, recent.runId, longer.runId, next.runId].sort())
    // An applied one stays too, however old.
    const applied = await api.apply({ agentsRoot: v.root, preview: next.runId, env, backend, now: at(-30) })
    expect(applied.ok, applied.error?.message).toBe(true)
    expect(applied.prunedPreviews.sort()).toEqual([recent.runId, longer.runId].sort())
    expect((await api.listPreviews({ agentsRoot: v.root, backend })).map((p) => [p.id, p.applied !== null, p.kept])).toEqual([
      [next.runId, true, true],
      [named.runId, false, true],
    ])
    const bad = await api.migrate({ agentsRoot: v.root, target: 3, dryRun: true, env: { ...env, AAS_KEEP_PREVIEWS: 'soon' }, backend })
    expect(bad.error?.code).toBe('USAGE')
  })
})

describe('--apply in a git vault', () => {
  it('--commit records one commit on the branch like --to --commit', async () => {
    const v = await v1('cli', { git: true })
    const dry = await cli(['--agents-root', v.root, '--to', 'v2', '--dry-run', '--json'])
    expect(dry.code, dry.stderr).toBe(0)
    const head = git(v.dir, 'rev-parse', 'HEAD').trim()
    const r = await cli(['--agents-root', v.root, '--apply', 'latest', '--commit', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.result.branchCommit).toMatchObject({ branch: 'refs/heads/main' })
    expect(git(v.dir, 'rev-parse', 'HEAD~1').trim()).toBe(head)
    const touched = git(v.dir, 'diff', '--name-only', head, 'HEAD').trim().split('\n').sort()
    expect(touched).toEqual([...doc.result.changed].sort())
    expect(git(v.dir, 'log', '-1', '--format=%B')).toMatch(`Aas-Preview: ${JSON.parse(dry.stdout).result.runId}`)
    expect(git(v.dir, 'status', '--porcelain').trim()).toBe('?? _migrations/migration.jsonl')
  })
})
