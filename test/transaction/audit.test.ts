import { mkdtemp, mkdir, readFile, rm, symlink, writeFile, appendFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { appendAudit, readAudit, type AuditRecord } from '../../src/transaction/audit.js'
import { isAasError } from '../../src/errors.js'

function record(overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    run_id: 'r1',
    timestamp: '2026-05-06T10:00:00.000Z',
    agents_root: '/vault',
    from_version: 1,
    to_version: 2,
    units_touched: 3,
    dry_run: false,
    rolled_back: false,
    error: '',
    command: '--to v2',
    result: 'ok',
    error_code: null,
    snapshot: '2026-05-06T100000_pre_v2_migration',
    result_commit: 'a'.repeat(40),
    duration_ms: 12,
    ...overrides,
  }
}

describe('audit log', () => {
  let root: string
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'aas-audit-'))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })
  const file = () => path.join(root, '_migrations', 'migration.jsonl')

  it('when appending to a vault without _migrations then creates it and writes one JSON line per record', async () => {
    await appendAudit(root, record())
    await appendAudit(root, record({ run_id: 'r2', result: 'refused', error: 'no', error_code: 'NOT_ABOVE_CURRENT' }))
    const text = await readFile(file(), 'utf8')
    expect(text.split('\n')).toHaveLength(3)
    expect(JSON.parse(text.split('\n')[0]!)).toEqual(record())
    const { records, skipped } = await readAudit(root)
    expect(records.map((r) => [r.run_id, r.result])).toEqual([
      ['r1', 'ok'],
      ['r2', 'refused'],
    ])
    expect(skipped).toEqual([])
  })

  it('when the last line is torn then readAudit skips it and the next append starts a new line', async () => {
    await appendAudit(root, record())
    await appendFile(file(), '{"run_id":"torn","timest')
    expect((await readAudit(root)).records.map((r) => r.run_id)).toEqual(['r1'])
    expect((await readAudit(root)).skipped).toEqual([{ line: 2, text: '{"run_id":"torn","timest' }])
    await appendAudit(root, record({ run_id: 'r3' }))
    const { records, skipped } = await readAudit(root)
    expect(records.map((r) => r.run_id)).toEqual(['r1', 'r3'])
    expect(skipped.map((s) => s.line)).toEqual([2])
  })

  it('when agents_root does not exist then appendAudit fails with IO_FAILED and creates nothing', async () => {
    const missing = path.join(root, 'no-such-root')
    const err = await appendAudit(missing, record()).catch((e: unknown) => e)
    expect(isAasError(err, 'IO_FAILED')).toBe(true)
    await expect(readFile(missing)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('when there is no audit log then readAudit returns nothing', async () => {
    expect(await readAudit(root)).toEqual({ records: [], skipped: [] })
  })

  it('when values contain newlines then each record still stays on one line', async () => {
    await appendAudit(root, record({ error: 'line 1\nline 2', error_code: 'SCRIPT_FAILED' }))
    const text = await readFile(file(), 'utf8')
    expect(text.endsWith('\n')).toBe(true)
    expect(text.slice(0, -1)).not.toContain('\n')
    expect((await readAudit(root)).records[0]?.error).toBe('line 1\nline 2')
  })

  it('when _migrations is a symlink then refuses with PATH_UNSAFE and writes nothing outside', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'aas-audit-out-'))
    try {
      await symlink(outside, path.join(root, '_migrations'))
      const err = await appendAudit(root, record()).catch((e: unknown) => e)
      expect(isAasError(err, 'PATH_UNSAFE')).toBe(true)
      await expect(readFile(path.join(outside, 'migration.jsonl'))).rejects.toMatchObject({ code: 'ENOENT' })
    } finally {
      await rm(outside, { recursive: true, force: true })
    }
  })

  it('when the log file is a symlink then refuses instead of appending through it', async () => {
    await mkdir(path.join(root, '_migrations'))
    await writeFile(path.join(root, 'elsewhere.txt'), 'keep\n')
    await symlink(path.join(root, 'elsewhere.txt'), file())
    const err = await appendAudit(root, record()).catch((e: unknown) => e)
    expect(isAasError(err, 'IO_FAILED')).toBe(true)
    expect(await readFile(path.join(root, 'elsewhere.txt'), 'utf8')).toBe('keep\n')
  })
})
