import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BridgeDied, PythonBridge, type BridgeOutcome, type BridgeScript } from '../../src/migrations/python-bridge.js'

// The bridge as a real python3 process, spoken to over its framed protocol.

let dir: string
const bridges: PythonBridge[] = []

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'aas-bridge-'))
  await mkdir(path.join(dir, '_migrations'))
})
afterAll(async () => {
  for (const b of bridges) b.close()
  await rm(dir, { recursive: true, force: true })
})

async function start(): Promise<PythonBridge> {
  const b = await PythonBridge.start({ python: 'python3', forwardStderr: false })
  bridges.push(b)
  return b
}

async function script(name: string, body: string): Promise<BridgeScript> {
  const p = path.join(dir, '_migrations', name)
  await writeFile(p, body)
  const m = /^v(\d+)_to_v(\d+)/.exec(name)!
  return { step: 0, path: p, file: `_migrations/${name}`, from: Number(m[1]), to: Number(m[2]) }
}

const HEAD =
  'from atomic_agents.migration import MigratableUnit\nFROM_VERSION = 1\nTO_VERSION = 2\ndef applies_to(unit):\n    return unit.read_frontmatter().get("schema_version") == 1\n'

async function runOne(body: string, fm: string, { dryRun = false } = {}): Promise<BridgeOutcome> {
  const b = await start()
  const s = await script(`v1_to_v2.py`, HEAD + body)
  expect(await b.load([s])).toEqual([])
  const [out] = await b.run(0, dryRun, [{ id: '/vault/a/memory/user_x.md', type: 'memory', fm }])
  b.close()
  return out as BridgeOutcome
}

const FM = 'schema_version: 1\nname: x\ncaptured: 2026-04-15\ntags: [a, b]\n'

describe('the Python bridge', () => {
  it('when started without atomic_agents installed then says hello with the interpreter, PyYAML with libyaml, and the stand-in', async () => {
    const b = await start()
    expect(b.hello.python).toMatch(/^3\.\d+\.\d+$/)
    expect(b.hello.yaml).toMatch(/^\d+\./)
    expect(b.hello.libyaml).toBe(true)
    expect(b.hello.atomicAgents).toBeNull()
    b.close()
  })

  it('when a script sets one key then only that key travels back, typed; an unchanged date is not sent', async () => {
    const out = await runOne(
      'def migrate(unit):\n    m = unit.read_frontmatter()\n    m["schema_version"] = 2\n    unit.write_frontmatter(m)\n    return {"changes": ["bump"]}\n',
      FM,
    )
    expect(out).toEqual({ op: 'unit', i: 0, applies: true, returned: true, changes: ['bump'], wrote: true, removed: [], set: [['schema_version', 2]] })
  })

  it('when a script writes dates, datetimes, floats, None and nested values then each comes back tagged as PyYAML types it', async () => {
    const body = [
      'import datetime',
      'def migrate(unit):',
      '    m = unit.read_frontmatter()',
      '    assert isinstance(m["captured"], datetime.date)',
      '    m["schema_version"] = 2',
      '    m["reviewed"] = m["captured"] + datetime.timedelta(days=1)',
      '    m["at"] = datetime.datetime(2026, 1, 2, 3, 4, 5)',
      '    m["score"] = 2.0',
      '    m["gone"] = None',
      '    m["nested"] = {"when": [datetime.date(2026, 1, 1)], "$odd": 1, "n": (1, 2)}',
      '    del m["tags"]',
      '    unit.write_frontmatter(m)',
      '    return {}',
    ].join('\n')
    const out = await runOne(`${body}\n`, FM)
    expect(out).toMatchObject({ applies: true, returned: false, wrote: true, removed: ['tags'] })
    expect((out as { set: unknown }).set).toEqual([
      ['schema_version', 2],
      ['reviewed', { $date: '2026-04-16' }],
      ['at', { $datetime: '2026-01-02 03:04:05' }],
      ['score', { $float: '2.0' }],
      ['gone', null],
      ['nested', { $map: { when: [{ $date: '2026-01-01' }], $odd: 1, n: [1, 2] } }],
    ])
  })

  it('when a value changes type but not by == (1 -> True) then it is sent', async () => {
    const out = await runOne(
      'def migrate(unit):\n    m = unit.read_frontmatter()\n    m["schema_version"] = True\n    unit.write_frontmatter(m)\n    return {"x": 1}\n',
      FM,
    )
    expect((out as { set: unknown }).set).toEqual([['schema_version', true]])
  })

  it('when a script writes a set then the unit is refused naming the key and the path', async () => {
    const out = await runOne(
      'def migrate(unit):\n    m = unit.read_frontmatter()\n    m["meta"] = {"tags": {"a", "b"}}\n    unit.write_frontmatter(m)\n    return {"x": 1}\n',
      FM,
    )
    expect(out).toMatchObject({ invalid: { key: 'meta', path: 'meta.tags', what: 'a set' } })
  })

  it('when a script raises then the outcome has the exception, its last line, the script line and the traceback', async () => {
    const out = await runOne('def migrate(unit):\n    m = unit.read_frontmatter()\n    return m["missing"]\n', FM)
    expect(out).toMatchObject({ error: { phase: 'migrate', type: 'KeyError', message: "KeyError: 'missing'", line: 8, memory: false } })
    expect((out as { error: { traceback: string } }).error.traceback).toMatch(/Traceback[\s\S]*line 8, in migrate[\s\S]*KeyError/)
  })

  it('when the front matter does not parse under PyYAML then the outcome is a parse error with its line', async () => {
    const out = await runOne('def migrate(unit):\n    return {}\n', 'a: 1\nb: [x\n')
    expect(out).toMatchObject({ error: { phase: 'parse' } })
    expect((out as { error: { line: number } }).error.line).toBeGreaterThan(0)
  })

  it('when a script prints to stdout, writes to fd 1 and reads stdin then the frames stay intact', async () => {
    const body =
      'import os, sys\ndef migrate(unit):\n    print("hello from the script")\n    os.write(1, b"\\x00\\x00\\x00\\x05junk")\n    sys.stdout.write("more\\n")\n    assert sys.stdin.read() == ""\n    m = unit.read_frontmatter()\n    m["schema_version"] = 2\n    unit.write_frontmatter(m)\n    return {"ok": 1}\n'
    const b = await start()
    const s = await script('v1_to_v2.py', HEAD + body)
    expect(await b.load([s])).toEqual([])
    const units = Array.from({ length: 50 }, (_, i) => ({ id: `/v/a/memory/user_${i}.md`, type: 'memory' as const, fm: FM }))
    const seen: number[] = []
    const outs = await b.run(0, false, units, (i) => seen.push(i))
    expect(outs).toHaveLength(50)
    expect(outs.every((o) => 'set' in o && o.set.length === 1)).toBe(true)
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i))
    b.close()
  })

  it('when the handle is read then read_frontmatter gives a fresh copy, and a dry run still records the write', async () => {
    const body =
      'def migrate(unit):\n    a = unit.read_frontmatter()\n    a["tags"].append("c")\n    assert unit.read_frontmatter()["tags"] == ["a", "b"]\n    assert unit.dry_run is True\n    assert unit.unit_id == "/vault/a/memory/user_x.md" and unit.unit_type == "memory"\n    a["schema_version"] = 2\n    unit.write_frontmatter(a)\n    assert unit.read_frontmatter()["tags"] == ["a", "b", "c"]\n    return {"ok": 1}\n'
    const out = await runOne(body, FM, { dryRun: true })
    expect(out).toMatchObject({
      applies: true,
      set: [
        ['schema_version', 2],
        ['tags', ['a', 'b', 'c']],
      ],
    })
  })

  it('when scripts do not load then each failure is reported with its kind and line', async () => {
    const b = await start()
    const syntax = await script('v1_to_v2.py', 'FROM_VERSION = 1\nTO_VERSION = 2\ndef applies_to(unit)\n    return True\n')
    const imp = { ...(await script('v2_to_v3.py', 'FROM_VERSION = 2\nTO_VERSION = 3\nimport no_such_module_here\n')), step: 1 }
    const bad = { ...(await script('v3_to_v4.py', 'FROM_VERSION = 3\nTO_VERSION = 5\ndef applies_to(unit):\n    return True\n')), step: 2 }
    const errors = await b.load([syntax, imp, bad])
    expect(errors).toMatchObject([
      { step: 0, kind: 'syntax', line: 3 },
      { step: 1, kind: 'import', line: 3, message: "ModuleNotFoundError: No module named 'no_such_module_here'" },
      { step: 2, kind: 'invalid', problems: ['migrate is missing', 'TO_VERSION is 5 but the file name says 4'] },
    ])
    b.close()
    expect(existsSync(path.join(dir, '_migrations', '__pycache__'))).toBe(false)
    expect((await readdir(path.join(dir, '_migrations'))).sort()).toEqual(['v1_to_v2.py', 'v2_to_v3.py', 'v3_to_v4.py'])
  })

  it('when the process is killed mid-batch then the run rejects with BridgeDied naming the signal', async () => {
    const b = await start()
    const s = await script('v1_to_v2.py', HEAD + 'import time\ndef migrate(unit):\n    time.sleep(0.05)\n    return {}\n')
    expect(await b.load([s])).toEqual([])
    const units = Array.from({ length: 40 }, (_, i) => ({ id: `/v/a/memory/user_${i}.md`, type: 'memory' as const, fm: FM }))
    const run = b.run(0, false, units, (i) => {
      if (i === 5) b.kill('SIGKILL')
    })
    await expect(run).rejects.toBeInstanceOf(BridgeDied)
    await expect(run).rejects.toThrow(/SIGKILL/)
  })

  it('when a script allocates past the memory limit then the unit fails with a MemoryError marked as memory, and the bridge goes on', async () => {
    const b = await PythonBridge.start({ python: 'python3', memoryMb: 64, forwardStderr: false })
    bridges.push(b)
    const s = await script(
      'v1_to_v2.py',
      HEAD +
        'def migrate(unit):\n    if unit.unit_id.endswith("big.md"):\n        x = bytearray(512 * 1024 * 1024)\n    m = unit.read_frontmatter()\n    m["schema_version"] = 2\n    unit.write_frontmatter(m)\n    return {"ok": 1}\n',
    )
    expect(await b.load([s])).toEqual([])
    const outs = await b.run(0, false, [
      { id: '/v/a/memory/big.md', type: 'memory', fm: FM },
      { id: '/v/a/memory/small.md', type: 'memory', fm: FM },
    ])
    expect(outs[0]).toMatchObject({ error: { phase: 'migrate', type: 'MemoryError', memory: true } })
    expect(outs[1]).toMatchObject({ applies: true, set: [['schema_version', 2]] })
    b.close()
  })

  it('when the interpreter does not exist then start rejects with BridgeDied', async () => {
    await expect(PythonBridge.start({ python: '/nonexistent/python3', forwardStderr: false })).rejects.toThrow(/not found/)
  })
})
