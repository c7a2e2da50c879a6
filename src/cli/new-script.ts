import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import { discoverScripts, scriptsDir } from '../migrations/discover.js'
import { takeInventory } from '../vault/inventory.js'
import { MIGRATIONS_DIR } from '../vault/rules.js'

// `--new-script`: the authoring kit's first step. Writes a typed script template and a
// test for it; discovery reads only files directly in _migrations/, so the test lives
// in _migrations/tests/ and is never taken for a script.

export interface NewScriptResult {
  from: number
  to: number
  script: string // vault-relative, e.g. _migrations/v3_to_v4.ts
  test: string // vault-relative, e.g. _migrations/tests/v3_to_v4.test.ts
  scriptPath: string // absolute
  testPath: string // absolute
}

export const SCRIPT_TESTS_DIR = 'tests'

export function scriptTemplate(from: number): string {
  const to = from + 1
  return `// v${from} -> v${to}: say here what this version changes and why.
// Written by \`aas-migrate --new-script\`; see docs/writing-migrations.md.
// The type import is erased when the script runs, so the vault needs no dependency.
import type { Migration } from 'aas-migrate'

const migration: Migration = {
  from: ${from},
  to: ${to},
  description: 'v${from} -> v${to}',
  appliesTo(unit) {
    return unit.readFrontmatter().schema_version === ${from}
  },
  migrate(unit) {
    const meta = unit.readFrontmatter()
    meta.schema_version = ${to}
    // Change the front matter here; only keys whose values change are rewritten, e.g.:
    // meta.provenance ??= 'v${from}_migrated'
    unit.writeFrontmatter(meta)
    return { changes: ['schema_version ${from}→${to}'] }
  },
  // How a unit at v${to} is validated (without it, only the front matter's structure is checked):
  // validate(frontmatter, unit) { return typeof frontmatter.name === 'string' ? [] : ['name: required'] },
}

export default migration
`
}

export function testTemplate(from: number, ext = 'ts'): string {
  const to = from + 1
  return `// Run with: npx tsx --test _migrations/${SCRIPT_TESTS_DIR}/v${from}_to_v${to}.test.${ext}
// (needs aas-migrate installed where Node can resolve it, e.g. npm install -D aas-migrate).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runMigrationInMemory } from 'aas-migrate/testing'
import migration from '../v${from}_to_v${to}.${ext}'

const note = [
  '---',
  'schema_version: ${from}',
  'name: Example note',
  'description: A unit as the vault holds it at v${from}',
  'type: feedback',
  'captured: 2026-04-15',
  'last_seen: 2026-05-06',
  'sources: [conversation_2026-04-15]',
  'confidence: high',
  '---',
  'The body stays as it is.',
  '',
].join('\\n')

test('v${from}_to_v${to} moves a v${from} memory note to v${to} and keeps its body', async () => {
  const run = await runMigrationInMemory({ migrations: [migration], units: [{ unitId: 'agent/memory/feedback_example.md', text: note }] })
  const [unit] = run.units
  assert.equal(unit?.touched, true)
  assert.match(unit?.after ?? '', /^schema_version: ${to}$/m)
  assert.ok(unit?.after.endsWith('---\\nThe body stays as it is.\\n'))
  assert.deepEqual(run.validation.failures, [])
  assert.match(run.diff, /^\\+schema_version: ${to}$/m)
})
`
}

async function writeNew(file: string, text: string, rel: string): Promise<void> {
  try {
    await writeFile(file, text, { flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AasError('SCRIPT_DUPLICATE', `${rel} already exists; --new-script never overwrites a file.`, {
        hint: `Edit ${rel}, or move it aside and run --new-script again.`,
        data: { file: rel },
      })
    }
    throw new AasError('IO_FAILED', `Cannot write ${rel}: ${describeFsError(err)}`, {
      hint: `Check that ${path.dirname(file)} is writable.`,
      data: { file: rel },
      cause: err,
    })
  }
}

// The next script's version: the one asked for, else the highest script or vault version.
export async function writeNewScript({ agentsRoot, from }: { agentsRoot: string; from?: number | undefined }): Promise<NewScriptResult> {
  const discovery = await discoverScripts(agentsRoot)
  let n = from
  if (n === undefined) {
    const { inventory } = await takeInventory(agentsRoot)
    n = Math.max(inventory.vaultVersion ?? 0, ...discovery.scripts.map((s) => s.to))
  }
  const existing = discovery.scripts.find((s) => s.from === n)
  if (existing) {
    throw new AasError('SCRIPT_DUPLICATE', `${existing.file} already migrates v${n} -> v${n + 1}.`, {
      hint: `Edit ${existing.file}, or run --new-script v${n + 1} for the step after it.`,
      data: { file: existing.file, from: n, to: n + 1 },
    })
  }
  const name = `v${n}_to_v${n + 1}`
  const dir = scriptsDir(agentsRoot)
  const script = `${MIGRATIONS_DIR}/${name}.ts`
  const test = `${MIGRATIONS_DIR}/${SCRIPT_TESTS_DIR}/${name}.test.ts`
  const scriptPath = path.join(dir, `${name}.ts`)
  const testPath = path.join(dir, SCRIPT_TESTS_DIR, `${name}.test.ts`)
  await mkdir(path.dirname(testPath), { recursive: true })
  await writeNew(scriptPath, scriptTemplate(n), script)
  await writeNew(testPath, testTemplate(n), test)
  return { from: n, to: n + 1, script, test, scriptPath, testPath }
}
