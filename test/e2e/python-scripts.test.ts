import { existsSync } from 'node:fs'
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { fixturesDir, git, makeVault, type TempVault } from '../helpers/make-vault.js'
import { bin } from '../helpers/run-cli.js'
import { captureTree, filesOf, type TreeState } from '../helpers/tree-state.js'

// The atomic-agents example script (fixtures/migrations-py/v1_to_v2.py), unchanged, run
// by the built CLI on the sample vault, in a git vault and in a plain folder; and every
// fault a .py chain can meet, each leaving the vault byte for byte as it was.

const PY_FIXTURE = path.join(fixturesDir, 'migrations-py', 'v1_to_v2.py')
const vaults: TempVault[] = []
afterEach(async () => {
  for (const v of vaults.splice(0)) await v.cleanup()
})

// The sample vault with only the .py script in _migrations/ (the fixture's own chain
// removed), committed when `useGit`.
async function pyVault({ useGit = false, script }: { useGit?: boolean; script?: string } = {}): Promise<TempVault> {
  const v = await makeVault('vault-v1')
  vaults.push(v)
  await rm(path.join(v.root, '_migrations', 'v1_to_v2.mjs'))
  await rm(path.join(v.root, '_migrations', 'v2_to_v3.ts'))
  if (script === undefined) await copyFile(PY_FIXTURE, path.join(v.root, '_migrations', 'v1_to_v2.py'))
  else await writeFile(path.join(v.root, '_migrations', 'v1_to_v2.py'), script)
  if (useGit) {
    git(v.dir, 'init', '-q', '-b', 'main')
    git(v.dir, 'config', 'commit.gpgSign', 'false')
    git(v.dir, 'config', 'gc.auto', '0')
    git(v.dir, 'config', 'core.autocrlf', 'false')
    git(v.dir, 'add', '-A')
    git(v.dir, 'commit', '-q', '-m', 'vault')
  }
  return v
}

// The vault's own files: not the engine's store, audit log or lock; not git's folder.
const vaultOnly = (rel: string): boolean =>
  rel.startsWith('_migrations/aas.git') ||
  rel === '_migrations/migration.jsonl' ||
  rel.startsWith('.migration.lock') ||
  rel === '.git' ||
  rel.startsWith('.git/')
const state = async (root: string): Promise<TreeState> => filesOf(await captureTree(root, { exclude: vaultOnly }))

const UNITS = [
  'caldwell/memory/archive/feedback_2025_budget_app.md',
  'caldwell/memory/decision_2026-q2_emergency_fund.md',
  'caldwell/memory/feedback_debt_priority.md',
  'caldwell/memory/project_quarterly_taxes.md',
  'caldwell/memory/user_household.md',
  'caldwell/wiki/avalanche_method.md',
  'projects/atlas/agents/researcher/memory/decision_2026_vector_store.md',
  'projects/atlas/agents/researcher/wiki/evaluation_plan.md',
  'scout/memory/feedback_citation_style.md',
  'scout/memory/reference_2026_arxiv_feeds.md',
  'scout/wiki/topics/retrieval_augmented_generation.md',
  'writer/memory/project_newsletter.md',
  'writer/wiki/newsletter_outline.md',
]

// What the example script must make of a v1 unit: `schema_version: 2` in place and a
// `provenance` line at the end of the front matter; every other byte the same.
function expectedV2(text: string): string {
  const eol = text.includes('\r\n') ? '\r\n' : '\n'
  const close = text.indexOf(`${eol}---`, 4)
  const fm = text.slice(0, close + eol.length).replace(/^schema_version: 1(\r?\n)/m, 'schema_version: 2$1')
  return `${fm}provenance: v1_migrated${eol}${text.slice(close + eol.length)}`
}

async function readUnits(root: string): Promise<Record<string, string>> {
  return Object.fromEntries(await Promise.all(UNITS.map(async (u) => [u, await readFile(path.join(root, u), 'utf8')] as const)))
}

describe.each([
  ['a git vault', true],
  ['a plain folder', false],
])('the atomic-agents v1_to_v2.py on %s', (_name, useGit) => {
  it('when previewed, migrated and rolled back then the diff is one line per key, the files are exactly v2, then exactly as before', async () => {
    const v = await pyVault({ useGit })
    const before = await state(v.root)
    const v1 = await readUnits(v.root)

    const dry = bin(['--agents-root', v.root, '--to', 'v2', '--dry-run', '--no-progress'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain('diff --git a/caldwell/memory/feedback_debt_priority.md b/caldwell/memory/feedback_debt_priority.md')
    expect(dry.stdout).toContain('-schema_version: 1\n+schema_version: 2\n')
    expect(dry.stdout.match(/^\+provenance: v1_migrated$/gm)).toHaveLength(UNITS.length)
    expect(dry.stdout.match(/^[-+](?![-+])/gm)).toHaveLength(UNITS.length * 3) // per unit: -version, +version, +provenance
    expect(await state(v.root)).toEqual(before)

    const run = bin(['--agents-root', v.root, '--to', 'v2', '--json'])
    expect(run.code, run.stderr).toBe(0)
    const doc = JSON.parse(run.stdout)
    expect(doc).toMatchObject({ ok: true, result: { steps: [{ from: 1, to: 2, file: '_migrations/v1_to_v2.py' }], touched: UNITS.length } })
    const v2 = await readUnits(v.root)
    for (const u of UNITS) expect(v2[u], u).toBe(expectedV2(v1[u] as string))
    // Nothing but the units changed, and no __pycache__/ appeared in _migrations/.
    const after = await state(v.root)
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort())
    expect(existsSync(path.join(v.root, '_migrations', '__pycache__'))).toBe(false)
    if (useGit)
      expect(
        git(v.dir, 'status', '--porcelain')
          .split('\n')
          .filter((l) => l.endsWith('.md')).length,
      ).toBe(UNITS.length)

    const back = bin(['--agents-root', v.root, '--rollback', doc.result.snapshot.name, '--no-progress'])
    expect(back.code, back.stderr).toBe(0)
    expect(await state(v.root)).toEqual(before)
    if (useGit) expect(git(v.dir, 'status', '--porcelain', '--', '.', ':(exclude)_migrations/migration.jsonl')).toBe('')
  })
})

// Records what the script saw: each key with its value's Python type, in order.
const TYPES_SCRIPT = `from atomic_agents.migration import MigratableUnit
FROM_VERSION = 1
TO_VERSION = 2
def applies_to(unit):
    return unit.read_frontmatter().get("schema_version") == 1
def migrate(unit):
    meta = unit.read_frontmatter()
    seen = ",".join("%s=%s%s" % (k, type(v).__name__, "[%s]" % "|".join(type(x).__name__ for x in v) if isinstance(v, list) else "") for k, v in meta.items())
    meta["schema_version"] = 2
    meta["seen"] = seen
    unit.write_frontmatter(meta)
    return {"unit_id": unit.unit_id}
`

describe('front matter typed by the engine for a .py script', () => {
  it('when a script records the Python types it sees then they are the same with and without the typed path (AAS_FAST_YAML=0)', async () => {
    const typed = await pyVault({ script: TYPES_SCRIPT })
    const parsed = await pyVault({ script: TYPES_SCRIPT })
    const a = bin(['--agents-root', typed.root, '--to', 'v2', '--no-progress'])
    const b = bin(['--agents-root', parsed.root, '--to', 'v2', '--no-progress'], { env: { AAS_FAST_YAML: '0' } })
    expect(a.code, a.stderr).toBe(0)
    expect(b.code, b.stderr).toBe(0)
    const [ua, ub] = [await readUnits(typed.root), await readUnits(parsed.root)]
    expect(ua).toEqual(ub)
    const unit = ua['caldwell/memory/feedback_debt_priority.md'] as string
    expect(unit).toMatch(
      /^seen: schema_version=int,name=str,description=str,type=str,captured=date,last_seen=date,sources=list\[str\],confidence=str,pinned=bool,expires_at=NoneType/m,
    )
  })
})

describe('--status with a .py script', () => {
  it('when the vault has a .py script then --status names the interpreter, its version, PyYAML and atomic_agents, running no script', async () => {
    const v = await pyVault({ script: 'raise SystemExit("a script that runs fails the test")\n' })
    const text = bin(['--agents-root', v.root, '--status'])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(
      /^python: +python3 \(from PATH\): Python 3\.\d+\.\d+ \(.+\), PyYAML \d[^,]*, atomic_agents not installed \(the built-in stand-in is used\)$/m,
    )
    const doc = JSON.parse(bin(['--agents-root', v.root, '--status', '--json', '--python', '/nonexistent/python3']).stdout)
    expect(doc.status.python).toMatchObject({ command: '/nonexistent/python3', source: 'flag', ok: false, error: { code: 'PYTHON_UNAVAILABLE' } })
    const none = await makeVault('vault-v1')
    vaults.push(none)
    expect(JSON.parse(bin(['--agents-root', none.root, '--status', '--json']).stdout).status.python).toBeNull()
  })
})

describe('faults of a .py chain', () => {
  async function refused(
    args: string[],
    script: string | undefined,
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ code: number; stdout: string; stderr: string; snapshots: unknown[] }> {
    const v = await pyVault({ script })
    const before = await state(v.root)
    const r = bin(['--agents-root', v.root, '--to', 'v2', '--no-progress', ...args], { env })
    expect(await state(v.root)).toEqual(before)
    const list = JSON.parse(bin(['--agents-root', v.root, '--list-snapshots', '--json']).stdout)
    return { ...r, snapshots: list.snapshots }
  }

  const RAISES = `from atomic_agents.migration import MigratableUnit
FROM_VERSION = 1
TO_VERSION = 2

def applies_to(unit):
    return True

def migrate(unit):
    if unit.unit_id.endswith("feedback_debt_priority.md"):
        raise RuntimeError("boom on " + unit.read_frontmatter()["name"])
    meta = unit.read_frontmatter()
    meta["schema_version"] = 2
    unit.write_frontmatter(meta)
    return {"ok": True}
`

  it('when a script raises on one unit then the run fails naming the script, the unit and the exception, traceback in --json', async () => {
    const message =
      '_migrations/v1_to_v2.py migrate() raised on caldwell/memory/feedback_debt_priority.md (step v1 -> v2): RuntimeError: boom on Debt priority order — credit cards before mortgage prepay (_migrations/v1_to_v2.py:10)'
    const text = await refused([], RAISES)
    expect(text.code).toBe(1)
    expect(text.stderr).toContain(`Error: ${message}\n`)
    const r = await refused(['--json'], RAISES)
    expect(r.code).toBe(1)
    const doc = JSON.parse(r.stdout)
    expect(doc.error).toMatchObject({
      code: 'SCRIPT_FAILED',
      message,
      data: { script: '_migrations/v1_to_v2.py', unit: 'caldwell/memory/feedback_debt_priority.md', exception: 'RuntimeError', line: 10 },
    })
    expect(doc.error.data.traceback).toMatch(/^Traceback \(most recent call last\):[\s\S]*line 10, in migrate[\s\S]*RuntimeError: boom/)
  })

  it('when a script has a syntax error then it is refused before the snapshot with file:line', async () => {
    const r = await refused([], 'FROM_VERSION = 1\nTO_VERSION = 2\n\ndef applies_to(unit):\n    return True\n\ndef migrate(unit)\n    return {}\n')
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^Error: Migration script _migrations\/v1_to_v2\.py failed to load: _migrations\/v1_to_v2\.py:7(:\d+)?: SyntaxError: /m)
    expect(r.snapshots).toEqual([])
  })

  it('when a script fails at import then it is refused naming the exception and the line', async () => {
    const r = await refused([], 'import atomic_agents.migration\nimport no_such_module_anywhere\nFROM_VERSION = 1\nTO_VERSION = 2\n')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      "Error: Migration script _migrations/v1_to_v2.py failed to load: ModuleNotFoundError: No module named 'no_such_module_anywhere' (at _migrations/v1_to_v2.py:2).",
    )
  })

  it('when the Python process is killed mid-batch then the run fails cleanly naming the script and the signal', async () => {
    const script = RAISES.replace(
      'raise RuntimeError("boom on " + unit.read_frontmatter()["name"])',
      'import os, signal\n        os.kill(os.getpid(), signal.SIGKILL)',
    )
    const r = await refused([], script)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      /^Error: _migrations\/v1_to_v2\.py on caldwell\/memory\/feedback_debt_priority\.md \(step v1 -> v2\) stopped the Python interpreter: the Python process was killed by SIGKILL/m,
    )
  })

  it('when --python names no interpreter then the run is refused before the snapshot with the fix', async () => {
    const r = await refused(['--python', '/nonexistent/python3'], undefined)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      'Error: The Python interpreter /nonexistent/python3 (from --python) cannot run .py migration scripts: not found; _migrations/v1_to_v2.py needs it.',
    )
    expect(r.stderr).toContain('apt-get install python3 python3-yaml')
    expect(r.snapshots).toEqual([])
  })

  it('when $AAS_PYTHON names no interpreter then the refusal says where the choice came from', async () => {
    const r = await refused([], undefined, { AAS_PYTHON: '/nonexistent/py' })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('The Python interpreter /nonexistent/py (from $AAS_PYTHON) cannot run')
  })

  it('when a script loops forever then the unit timeout stops it, naming the unit, and the interpreter is gone', async () => {
    const v = await pyVault({
      script: RAISES.replace(
        'raise RuntimeError("boom on " + unit.read_frontmatter()["name"])',
        'import os\n        open(os.environ["PID_FILE"], "w").write(str(os.getpid()))\n        while True: pass',
      ),
    })
    const before = await state(v.root)
    const pidFile = path.join(tmpdir(), `aas-bridge-${process.pid}-${Date.now()}.pid`)
    const r = bin(['--agents-root', v.root, '--to', 'v2', '--no-progress'], { env: { AAS_SCRIPT_TIMEOUT_MS: '1500', PID_FILE: pidFile } })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('Error: _migrations/v1_to_v2.py on caldwell/memory/feedback_debt_priority.md (step v1 -> v2) did not return within 1500 ms.')
    expect(await state(v.root)).toEqual(before)
    const pid = Number(await readFile(pidFile, 'utf8'))
    const alive = (): boolean => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    }
    for (let i = 0; i < 50 && alive(); i++) await new Promise((res) => setTimeout(res, 100))
    expect(alive()).toBe(false)
    await rm(pidFile, { force: true })
  })

  it('when a script prints to stdout then --json stays one JSON document and the prints go to stderr', async () => {
    const script = (await readFile(PY_FIXTURE, 'utf8')).replace(
      '    meta = unit.read_frontmatter()\n    meta["schema_version"]',
      '    print("migrating", unit.unit_id)\n    meta = unit.read_frontmatter()\n    meta["schema_version"]',
    )
    const v = await pyVault({ script })
    const r = bin(['--agents-root', v.root, '--to', 'v2', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, result: { touched: UNITS.length } })
    expect(r.stderr.match(/^migrating \//gm)?.length).toBeGreaterThanOrEqual(UNITS.length)
  })
})
