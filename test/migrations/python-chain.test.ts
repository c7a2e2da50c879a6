import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { applyChain, type UnitInput } from '../../src/migrations/apply.js'
import { discoverScripts } from '../../src/migrations/discover.js'
import { loadScripts, type LoadResult } from '../../src/migrations/load.js'
import { planChain } from '../../src/migrations/plan.js'
import { checkPython, choosePython, probePython } from '../../src/migrations/python-interpreter.js'

// .py steps in the chain: discovery, the values that come back through the bridge and
// the minimal-diff editor, the errors, and the interpreter checks. Real python3.

let root: string
const opened: LoadResult[] = []

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'aas-pychain-'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})
afterEach(async () => {
  for (const r of opened.splice(0)) r.bridge?.close()
  await rm(path.join(root, '_migrations'), { recursive: true, force: true })
})

async function put(name: string, text: string): Promise<void> {
  await mkdir(path.join(root, '_migrations'), { recursive: true })
  await writeFile(path.join(root, '_migrations', name), text)
}

const PY_HEAD = (from: number, to: number): string =>
  `from atomic_agents.migration import MigratableUnit\nFROM_VERSION = ${from}\nTO_VERSION = ${to}\n\ndef applies_to(unit: MigratableUnit) -> bool:\n    return unit.read_frontmatter().get("schema_version") == FROM_VERSION\n\n`

async function chain(units: UnitInput[], { dryRun = false } = {}) {
  const { scripts, errors } = await discoverScripts(root)
  expect(errors).toEqual([])
  const loaded = await loadScripts(scripts)
  opened.push(loaded)
  expect(loaded.errors).toEqual([])
  return applyChain(loaded.loaded, units, { dryRun })
}

const UNIT = [
  '---',
  'schema_version: 1',
  'name: Debt priority order',
  "description: 'Locked: avalanche first'",
  'type: feedback',
  '# a comment that stays',
  'captured: 2026-04-15',
  "last_seen: '2026-05-06'",
  'sources:',
  '  - conversation_2026-04-15',
  'tags: [debt, strategy]',
  '---',
  'Body.',
  '',
].join('\n')
const unit = (text = UNIT, unitId = 'caldwell/memory/feedback_debt.md'): UnitInput => ({ unitId, unitType: 'memory', text })

describe('discovery of .py scripts', () => {
  it('when a chain mixes .py and .ts then both steps are found in order and planned', async () => {
    await put('v1_to_v2.py', PY_HEAD(1, 2))
    await put('v2_to_v3.ts', 'export default {}\n')
    const { scripts, errors } = await discoverScripts(root)
    expect(errors).toEqual([])
    expect(scripts.map((s) => [s.file, s.ext])).toEqual([
      ['_migrations/v1_to_v2.py', 'py'],
      ['_migrations/v2_to_v3.ts', 'ts'],
    ])
    const plan = planChain({ current: 1, target: 3, scripts })
    expect(plan.ok && plan.steps.map((s) => s.script.file)).toEqual(['_migrations/v1_to_v2.py', '_migrations/v2_to_v3.ts'])
  })

  it('when v1_to_v2.py and v1_to_v2.mjs both exist then SCRIPT_DUPLICATE names both', async () => {
    await put('v1_to_v2.py', PY_HEAD(1, 2))
    await put('v1_to_v2.mjs', 'export default {}\n')
    const { scripts, errors } = await discoverScripts(root)
    expect(scripts).toEqual([])
    expect(errors.map((e) => [e.code, e.data.files])).toEqual([['SCRIPT_DUPLICATE', ['_migrations/v1_to_v2.mjs', '_migrations/v1_to_v2.py']]])
    expect(errors[0]!.message).toContain('_migrations/v1_to_v2.mjs, _migrations/v1_to_v2.py')
  })

  it('when a .py name skips a version or does not match then it is refused by name, like the other languages', async () => {
    await put('v1_to_v3.py', PY_HEAD(1, 3))
    await put('v2-to-v3.py', PY_HEAD(2, 3))
    await put('_helpers.py', 'x = 1\n')
    const { errors } = await discoverScripts(root)
    expect(errors.map((e) => [e.code, e.data.file])).toEqual([
      ['SCRIPT_VERSION_SKIP', '_migrations/v1_to_v3.py'],
      ['SCRIPT_NAME_INVALID', '_migrations/v2-to-v3.py'],
    ])
  })
})

describe('a .py step through the minimal-diff editor', () => {
  it('when the atomic-agents example migrates a unit then the diff is the two keys it sets, comments and quoting kept', async () => {
    await put(
      'v1_to_v2.py',
      PY_HEAD(1, 2) +
        'def migrate(unit):\n    meta = unit.read_frontmatter()\n    meta["schema_version"] = TO_VERSION\n    meta.setdefault("provenance", "v1_migrated")\n    unit.write_frontmatter(meta)\n    return {"unit_id": unit.unit_id, "changes": ["schema_version 1→2"]}\n',
    )
    const r = await chain([unit()])
    expect(r.errors).toEqual([])
    expect(r.units[0]!.after).toBe(
      UNIT.replace('schema_version: 1', 'schema_version: 2').replace('tags: [debt, strategy]\n', 'tags: [debt, strategy]\nprovenance: v1_migrated\n'),
    )
    expect(r.units[0]).toMatchObject({ touched: true, changes: ['schema_version 1→2'], steps: [{ status: 'touched' }] })
  })

  it('when a script sets dates and datetimes then they are written unquoted as PyYAML writes them, and untouched dates keep their bytes', async () => {
    const body = [
      'import datetime',
      'def migrate(unit):',
      '    m = unit.read_frontmatter()',
      '    m["schema_version"] = 2',
      '    m["last_seen"] = datetime.date(2026, 6, 1)',
      '    m["reviewed_at"] = datetime.datetime(2026, 6, 1, 9, 30, 0)',
      '    m["history"] = [m["captured"], {"day": datetime.date(2026, 1, 2), "score": 2.0, "note": None}]',
      '    unit.write_frontmatter(m)',
      '    return {"ok": True}',
    ].join('\n')
    await put('v1_to_v2.py', `${PY_HEAD(1, 2)}${body}\n`)
    const r = await chain([unit()])
    expect(r.errors).toEqual([])
    const after = r.units[0]!.after
    expect(after).toContain('\ncaptured: 2026-04-15\n') // the script read it as a date and did not change it
    expect(after).toContain('\nlast_seen: 2026-06-01\n') // was a quoted string, now a date
    expect(after).toContain('\nreviewed_at: 2026-06-01 09:30:00\n')
    expect(after).toContain('\nhistory:\n  - 2026-04-15\n  - day: 2026-01-02\n    score: 2.0\n    note: null\n')
    expect(after).toContain('# a comment that stays\n')
  })

  it('when a script writes a set then the run fails naming the unit, the script and the key', async () => {
    await put(
      'v1_to_v2.py',
      PY_HEAD(1, 2) +
        'def migrate(unit):\n    m = unit.read_frontmatter()\n    m["schema_version"] = 2\n    m["tags"] = set(m["tags"])\n    unit.write_frontmatter(m)\n    return {"ok": 1}\n',
    )
    const r = await chain([unit()])
    expect(r.ok).toBe(false)
    expect(r.errors.map((e) => [e.code, e.data.unit, e.data.script, e.data.key])).toEqual([
      ['UNIT_WRITE_INVALID', 'caldwell/memory/feedback_debt.md', '_migrations/v1_to_v2.py', 'tags'],
    ])
    expect(r.errors[0]!.message).toContain('a set at tags')
  })

  it('when a script raises then SCRIPT_FAILED names the script, the unit and the exception, with the traceback in data', async () => {
    await put('v1_to_v2.py', PY_HEAD(1, 2) + 'def migrate(unit):\n    meta = unit.read_frontmatter()\n    raise ValueError("no owner for " + meta["name"])\n')
    const r = await chain([unit(), unit(UNIT, 'caldwell/memory/feedback_other.md')])
    expect(r.ok).toBe(false)
    expect(r.failedStep).toEqual({ file: '_migrations/v1_to_v2.py', from: 1, to: 2 })
    expect(r.errors.map((e) => e.data.unit)).toEqual(['caldwell/memory/feedback_debt.md', 'caldwell/memory/feedback_other.md'])
    const e = r.errors[0]!
    expect(e.code).toBe('SCRIPT_FAILED')
    expect(e.message).toBe(
      '_migrations/v1_to_v2.py migrate() raised on caldwell/memory/feedback_debt.md (step v1 -> v2): ValueError: no owner for Debt priority order (_migrations/v1_to_v2.py:10)',
    )
    expect(e.data).toMatchObject({ script: '_migrations/v1_to_v2.py', phase: 'migrate', exception: 'ValueError', line: 10 })
    expect(String(e.data.traceback)).toMatch(/^Traceback[\s\S]*ValueError: no owner/)
  })

  it('when applies_to is true and the version does not move then SCRIPT_NO_BUMP names the unit', async () => {
    await put(
      'v1_to_v2.py',
      PY_HEAD(1, 2) + 'def migrate(unit):\n    m = unit.read_frontmatter()\n    m["x"] = 1\n    unit.write_frontmatter(m)\n    return {"ok": 1}\n',
    )
    const r = await chain([unit()])
    expect(r.errors.map((e) => [e.code, e.data.unit, e.data.found])).toEqual([['SCRIPT_NO_BUMP', 'caldwell/memory/feedback_debt.md', 1]])
  })

  it('when migrate returns an empty dict after writing then the write is kept, as the Python runner keeps it, and the step counts as skipped', async () => {
    await put(
      'v1_to_v2.py',
      PY_HEAD(1, 2) + 'def migrate(unit):\n    m = unit.read_frontmatter()\n    m["schema_version"] = 2\n    unit.write_frontmatter(m)\n    return {}\n',
    )
    const r = await chain([unit()])
    expect(r.errors).toEqual([])
    expect(r.units[0]!.after).toBe(UNIT.replace('schema_version: 1', 'schema_version: 2'))
    expect(r.units[0]!.steps).toEqual([{ file: '_migrations/v1_to_v2.py', from: 1, to: 2, status: 'skipped' }])
  })

  it('when a .py step is followed by an .mjs step then the .mjs step sees the .py output, in a dry run too', async () => {
    await put(
      'v1_to_v2.py',
      PY_HEAD(1, 2) +
        'def migrate(unit):\n    assert unit.dry_run\n    m = unit.read_frontmatter()\n    m["schema_version"] = 2\n    m["provenance"] = "py"\n    unit.write_frontmatter(m)\n    return {"ok": 1}\n',
    )
    await put(
      'v2_to_v3.mjs',
      "export default { from: 2, to: 3, appliesTo: (u) => u.readFrontmatter().schema_version === 2, migrate(u) { const m = u.readFrontmatter(); m.schema_version = 3; m.provenance += '+mjs'; u.writeFrontmatter(m); return true } }\n",
    )
    const r = await chain([unit(), unit('no front matter\n', 'caldwell/memory/user_plain.md')], { dryRun: true })
    expect(r.errors).toEqual([])
    expect(r.units[0]!.after).toContain('schema_version: 3\n')
    expect(r.units[0]!.after).toContain('provenance: py+mjs\n')
    expect(r.units[1]!.after).toBe('no front matter\n')
  })
})

describe('a .py step over a batch larger than a chunk', () => {
  const many = (n: number): UnitInput[] =>
    Array.from({ length: n }, (_, i) =>
      unit(UNIT.replace('name: Debt priority order', `name: unit ${i}`), `a/memory/feedback_u${String(i).padStart(3, '0')}.md`),
    )

  it('when 100 units go through a .py then an .mjs step then every unit gets its own result, in order', async () => {
    await put(
      'v1_to_v2.py',
      PY_HEAD(1, 2) +
        'def migrate(unit):\n    m = unit.read_frontmatter()\n    m["schema_version"] = 2\n    m["seen"] = m["name"]\n    unit.write_frontmatter(m)\n    return {"ok": 1}\n',
    )
    await put(
      'v2_to_v3.mjs',
      'export default { from: 2, to: 3, appliesTo: () => true, migrate(u) { const m = u.readFrontmatter(); m.schema_version = 3; u.writeFrontmatter(m); return true } }\n',
    )
    const r = await chain(many(100))
    expect(r.errors).toEqual([])
    expect(r.units.map((u) => u.unitId)).toEqual(many(100).map((u) => u.unitId))
    r.units.forEach((u, i) => expect(u.after).toContain(`schema_version: 3\nname: unit ${i}\n`))
    r.units.forEach((u, i) => expect(u.after).toContain(`\nseen: unit ${i}\n`))
  })

  it("when a later chunk fails at the .py step and an earlier one at the next step then only the earliest step's errors are reported", async () => {
    await put(
      'v1_to_v2.py',
      PY_HEAD(1, 2) +
        'def migrate(unit):\n    if unit.unit_id.endswith("u070.md"):\n        raise KeyError("x")\n    m = unit.read_frontmatter()\n    m["schema_version"] = 2\n    unit.write_frontmatter(m)\n    return {"ok": 1}\n',
    )
    await put(
      'v2_to_v3.mjs',
      "export default { from: 2, to: 3, appliesTo: () => true, migrate(u) { if (u.unitId.endsWith('u005.md')) throw new Error('later step'); const m = u.readFrontmatter(); m.schema_version = 3; u.writeFrontmatter(m); return true } }\n",
    )
    const r = await chain(many(100))
    expect(r.ok).toBe(false)
    expect(r.failedStep).toEqual({ file: '_migrations/v1_to_v2.py', from: 1, to: 2 })
    expect(r.errors.map((e) => [e.code, e.data.unit])).toEqual([['SCRIPT_FAILED', 'a/memory/feedback_u070.md']])
  })
})

describe('the interpreter', () => {
  it('when --python, $AAS_PYTHON, $VIRTUAL_ENV are given then they are chosen in that order, else python3', async () => {
    const venv = path.join(root, 'venv')
    await mkdir(path.join(venv, 'bin'), { recursive: true })
    await writeFile(path.join(venv, 'bin', 'python'), '')
    expect(choosePython({ flag: '/x/py', env: { AAS_PYTHON: '/y/py', VIRTUAL_ENV: venv } })).toEqual({ command: '/x/py', source: 'flag' })
    expect(choosePython({ env: { AAS_PYTHON: '/y/py', VIRTUAL_ENV: venv } })).toEqual({ command: '/y/py', source: 'AAS_PYTHON' })
    expect(choosePython({ env: { VIRTUAL_ENV: venv } })).toEqual({ command: path.join(venv, 'bin', 'python'), source: 'VIRTUAL_ENV' })
    expect(choosePython({ env: { VIRTUAL_ENV: path.join(root, 'no-venv') } })).toEqual({ command: 'python3', source: 'PATH' })
  })

  it('when probed then the interpreter reports its path, version, PyYAML and no atomic_agents', async () => {
    const p = await probePython({ env: { PATH: process.env.PATH } })
    expect(p).toMatchObject({ ok: true, command: 'python3', source: 'PATH', libyaml: true, atomicAgents: null, error: null })
    expect(p.version).toMatch(/^3\./)
    expect(p.executable).toMatch(/python/)
  })

  it('when the interpreter does not exist then PYTHON_UNAVAILABLE names it, the scripts and the fix', async () => {
    await put('v1_to_v2.py', PY_HEAD(1, 2))
    const { scripts } = await discoverScripts(root)
    const e = await checkPython(scripts, { command: '/nonexistent/python3', source: 'flag' })
    expect(e?.code).toBe('PYTHON_UNAVAILABLE')
    expect(e?.message).toBe(
      'The Python interpreter /nonexistent/python3 (from --python) cannot run .py migration scripts: not found; _migrations/v1_to_v2.py needs it.',
    )
    expect(e?.hint).toContain('apt-get install python3 python3-yaml')
  })

  it('when the interpreter has no PyYAML then the refusal gives the command that installs it', async () => {
    await put('v1_to_v2.py', PY_HEAD(1, 2))
    const noYaml = path.join(root, 'python-without-yaml')
    await writeFile(noYaml, '#!/bin/sh\nexec python3 -S "$@"\n') // -S: no site-packages, so no PyYAML
    await chmod(noYaml, 0o755)
    const { scripts } = await discoverScripts(root)
    const e = await checkPython(scripts, { command: noYaml, source: 'AAS_PYTHON' })
    expect(e?.code).toBe('PYTHON_UNAVAILABLE')
    expect(e?.data.missing).toBe('PyYAML')
    expect(e?.hint).toContain('apt-get install python3-yaml')
  })

  it('when a .py script has a syntax error then the check refuses it with file:line before it runs', async () => {
    await put('v1_to_v2.py', 'FROM_VERSION = 1\nTO_VERSION = 2\n\ndef applies_to(unit)\n    return True\n')
    const { scripts } = await discoverScripts(root)
    const e = await checkPython(scripts, choosePython({ env: { PATH: process.env.PATH } }))
    expect(e?.code).toBe('SCRIPT_LOAD_FAILED')
    expect(e?.message).toMatch(/^Migration script _migrations\/v1_to_v2\.py failed to load: _migrations\/v1_to_v2\.py:4(:\d+)?: SyntaxError: /)
    expect(e?.data).toMatchObject({ file: '_migrations/v1_to_v2.py', line: 4, kind: 'syntax' })
  })
})
