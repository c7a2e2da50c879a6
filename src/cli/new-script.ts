import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import { discoverScripts, scriptsDir } from '../migrations/discover.js'
import { takeInventory } from '../vault/unit-reading.js'
import { MIGRATIONS_DIR } from '../vault/rules.js'

// `--new-script`: the authoring kit's first step. Writes a script template (a typed
// TypeScript one, or with --lang py one in the atomic-agents style) and a test for it;
// discovery reads only files directly in _migrations/, so the test lives in
// _migrations/tests/ and is never taken for a script.

export type ScriptLang = 'ts' | 'py'
export const SCRIPT_LANGS: readonly ScriptLang[] = ['ts', 'py']

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

// The atomic-agents form (FROM_VERSION, TO_VERSION, applies_to, migrate), as the
// release's docs/migrations/vN_to_vM.py scripts are written; it runs unchanged under
// the Python runner too.
export function pyScriptTemplate(from: number): string {
  const to = from + 1
  return `"""v${from} -> v${to}: say here what this version changes and why.

Written by \`aas-migrate --new-script --lang py\` in the form atomic-agents ships its
migrations (docs/migrations/vN_to_vM.py); see docs/writing-migrations.md.
"""

from atomic_agents.migration import MigratableUnit

FROM_VERSION = ${from}
TO_VERSION = ${to}


def applies_to(unit: MigratableUnit) -> bool:
    return unit.read_frontmatter().get("schema_version") == FROM_VERSION


def migrate(unit: MigratableUnit) -> dict:
    meta = unit.read_frontmatter()  # a fresh copy, typed as PyYAML's safe loader reads it
    meta["schema_version"] = TO_VERSION
    # TODO: change the front matter here; only keys whose values change are rewritten, e.g.:
    # meta.setdefault("provenance", "v${from}_migrated")
    unit.write_frontmatter(meta)  # replaces the front matter; the body is kept
    return {"unit_id": unit.unit_id, "changes": ["schema_version ${from}→${to}"]}
`
}

// The test of a script: for a .py, runMigrationInMemory loads the file itself (through
// the Python bridge); for a .ts, the test imports its default export.
export function testTemplate(from: number, ext = 'ts', lang: ScriptLang = 'ts'): string {
  const to = from + 1
  const imports =
    lang === 'py'
      ? `import { fileURLToPath } from 'node:url'
import { runMigrationInMemory } from 'aas-migrate/testing'

const script = fileURLToPath(new URL('../v${from}_to_v${to}.py', import.meta.url))`
      : `import { runMigrationInMemory } from 'aas-migrate/testing'
import migration from '../v${from}_to_v${to}.${ext}'`
  const needs =
    lang === 'py'
      ? "// (needs aas-migrate installed where Node can resolve it, e.g. npm install -D aas-migrate,\n// and python3 with PyYAML, or --python's interpreter in $AAS_PYTHON)."
      : '// (needs aas-migrate installed where Node can resolve it, e.g. npm install -D aas-migrate).'
  const run = lang === 'py' ? 'scripts: [script]' : 'migrations: [migration]'
  return `// Run with: npx tsx --test _migrations/${SCRIPT_TESTS_DIR}/v${from}_to_v${to}.test.${ext}
${needs}
import assert from 'node:assert/strict'
import { test } from 'node:test'
${imports}

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
  const run = await runMigrationInMemory({ ${run}, units: [{ unitId: 'agent/memory/feedback_example.md', text: note }] })
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
export async function writeNewScript({
  agentsRoot,
  from,
  lang = 'ts',
}: {
  agentsRoot: string
  from?: number | undefined
  lang?: ScriptLang
}): Promise<NewScriptResult> {
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
  const script = `${MIGRATIONS_DIR}/${name}.${lang}`
  const test = `${MIGRATIONS_DIR}/${SCRIPT_TESTS_DIR}/${name}.test.ts`
  const scriptPath = path.join(dir, `${name}.${lang}`)
  const testPath = path.join(dir, SCRIPT_TESTS_DIR, `${name}.test.ts`)
  await mkdir(path.dirname(testPath), { recursive: true })
  await writeNew(scriptPath, lang === 'py' ? pyScriptTemplate(n) : scriptTemplate(n), script)
  await writeNew(testPath, testTemplate(n, 'ts', lang), test)
  return { from: n, to: n + 1, script, test, scriptPath, testPath }
}
