import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, mkdir, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { acquireAgentLocks, acquireVaultLock, inspectVaultLock, shellQuote, withAgentLocks, type LockHolder } from '../../src/transaction/lock.js'
import { AasError, isAasError } from '../../src/errors.js'

// A pid that is certainly gone: a child that has already exited.
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  return Number(child.stdout)
}

async function caught(p: Promise<unknown>): Promise<AasError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  )
  if (!(err instanceof AasError)) throw new Error(`expected an AasError, got ${String(err)}`)
  return err
}

describe('vault lock', () => {
  let root: string
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "aas-lock-it's "))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })
  const lockFile = () => path.join(root, '.migration.lock')

  it('when the vault is free then the lock file holds pid, host, start time and command, and release removes it', async () => {
    expect(await inspectVaultLock(root)).toEqual({ state: 'free', path: lockFile() })
    const lock = await acquireVaultLock(root, { command: 'migrate --to v2', now: () => new Date('2026-05-06T10:00:00Z') })
    const onDisk = JSON.parse(await readFile(lockFile(), 'utf8')) as LockHolder
    expect(onDisk).toMatchObject({ pid: process.pid, host: hostname(), startedAt: '2026-05-06T10:00:00.000Z', command: 'migrate --to v2' })
    expect(await inspectVaultLock(root)).toMatchObject({ state: 'held', holder: { pid: process.pid, command: 'migrate --to v2' } })
    expect(await readdir(root)).toEqual(['.migration.lock'])
    expect(await lock.release()).toBe(true)
    expect(await readdir(root)).toEqual([])
    expect(await lock.release()).toBe(false)
  })

  it('when a live process holds the lock then refuses with LOCKED and the holder', async () => {
    const lock = await acquireVaultLock(root, { command: 'migrate --to v2' })
    const err = await caught(acquireVaultLock(root, { command: 'rollback x' }))
    expect(err.code).toBe('LOCKED')
    expect(err.data.holder).toMatchObject({ pid: process.pid, host: hostname(), command: 'migrate --to v2' })
    expect(err.data.stale).toBeUndefined()
    expect(err.hint).toBeTruthy()
    await lock.release()
  })

  it('when the holder process is gone then refuses as stale with the exact rm command, quoted', async () => {
    const holder = { pid: deadPid(), host: hostname(), startedAt: '2026-01-01T00:00:00.000Z', command: 'migrate --to v2' }
    await writeFile(lockFile(), JSON.stringify(holder))
    const inspection = await inspectVaultLock(root)
    expect(inspection).toMatchObject({ state: 'stale', holder })
    const err = await caught(acquireVaultLock(root, { command: 'migrate --to v3' }))
    expect(err.code).toBe('LOCKED')
    expect(err.data.stale).toBe(true)
    const clear = `rm ${shellQuote(lockFile())}`
    expect(err.data.clearCommand).toBe(clear)
    expect(err.hint).toContain(clear)
    // The printed command really clears the lock, even with a quote in the path.
    spawnSync('sh', ['-c', clear])
    expect(await inspectVaultLock(root)).toEqual({ state: 'free', path: lockFile() })
  })

  it('when the lock file is unparseable then it is reported stale and left in place', async () => {
    await writeFile(lockFile(), '{"pid": 12')
    expect(await inspectVaultLock(root)).toMatchObject({ state: 'stale' })
    const err = await caught(acquireVaultLock(root, { command: 'migrate' }))
    expect(err.data.stale).toBe(true)
    expect(await readFile(lockFile(), 'utf8')).toBe('{"pid": 12')
  })

  it('when the holder is on another host then the lock counts as held, not stale', async () => {
    await writeFile(lockFile(), JSON.stringify({ pid: deadPid(), host: 'elsewhere.example', startedAt: 'x', command: 'migrate' }))
    expect(await inspectVaultLock(root)).toMatchObject({ state: 'held', holder: { host: 'elsewhere.example' } })
  })

  it('when breakStale is set and the lock is stale then it is replaced by ours', async () => {
    await writeFile(lockFile(), JSON.stringify({ pid: deadPid(), host: hostname(), startedAt: 'x', command: 'migrate' }))
    const lock = await acquireVaultLock(root, { command: 'recover', breakStale: true })
    expect(JSON.parse(await readFile(lockFile(), 'utf8'))).toMatchObject({ pid: process.pid, command: 'recover' })
    expect(await readdir(root)).toEqual(['.migration.lock'])
    await lock.release()
  })

  it('when breakStale is set and the lock is live then still refuses', async () => {
    const lock = await acquireVaultLock(root, { command: 'migrate' })
    const err = await caught(acquireVaultLock(root, { command: 'recover', breakStale: true }))
    expect(err.code).toBe('LOCKED')
    expect(err.data.holder).toMatchObject({ pid: process.pid, command: 'migrate' })
    await lock.release()
  })

  it('when the lock was replaced by another process then release leaves it alone', async () => {
    const lock = await acquireVaultLock(root, { command: 'migrate' })
    const other = JSON.stringify({ pid: process.pid, host: hostname(), startedAt: 'x', command: 'other', token: 'someone-else' })
    await writeFile(lockFile(), other)
    expect(await lock.release()).toBe(false)
    expect(await readFile(lockFile(), 'utf8')).toBe(other)
  })

  it('when a killed process left its lock temp behind then the next holder removes it once it is a minute old', async () => {
    const old = path.join(root, '.migration.lock.aas-tmp-17732a2123f31495')
    const fresh = path.join(root, '.migration.lock.aas-tmp-0123456789abcdef')
    const marker = path.join(root, '.migration.lock.aas-tmp-breaking')
    for (const f of [old, fresh, marker]) await writeFile(f, '{"pid":1}\n')
    const minutesAgo = new Date(Date.now() - 2 * 60_000)
    for (const f of [old, marker]) await utimes(f, minutesAgo, minutesAgo)
    const lock = await acquireVaultLock(root, { command: 'migrate' })
    expect((await readdir(root)).sort()).toEqual(['.migration.lock', '.migration.lock.aas-tmp-0123456789abcdef'])
    await lock.release()
  })

  it('when many acquirers race then exactly one gets the lock', async () => {
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => acquireVaultLock(root, { command: `c${i}` })))
    const won = results.filter((r) => r.status === 'fulfilled')
    expect(won).toHaveLength(1)
    for (const r of results) if (r.status === 'rejected') expect(isAasError(r.reason, 'LOCKED')).toBe(true)
    expect(await readdir(root)).toEqual(['.migration.lock'])
  })
})

describe('agent locks', () => {
  let root: string
  const holders: ChildProcess[] = []
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'aas-agentlock-'))
    await mkdir(path.join(root, 'alice'))
    await mkdir(path.join(root, 'bob'))
  })
  afterEach(async () => {
    for (const h of holders.splice(0)) killGroup(h)
    await rm(root, { recursive: true, force: true })
  })

  // flock(1) hands the locked fd to its command: kill the whole process group.
  function killGroup(child: ChildProcess): void {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      child.kill('SIGKILL')
    }
  }

  // An agent-like process that holds <agent>/.lock with flock(1) until killed.
  async function holdWithFlock(agentDir: string): Promise<ChildProcess> {
    const child = spawn('flock', [path.join(agentDir, '.lock'), '-c', 'echo held; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'], detached: true })
    holders.push(child)
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()))
    return child
  }

  // Whether another process could take the lock right now (non-blocking flock).
  function lockIsFree(agentDir: string): boolean {
    return spawnSync('flock', ['-n', path.join(agentDir, '.lock'), 'true']).status === 0
  }

  it('when agents are idle then their locks are held until release, and the lock files stay', async () => {
    await writeFile(path.join(root, 'alice', '.lock'), '4242\n')
    const locks = await acquireAgentLocks([path.join(root, 'bob'), path.join(root, 'alice')], { timeoutMs: 2000 })
    expect(locks.agents).toEqual([path.join(root, 'alice'), path.join(root, 'bob')])
    expect(lockIsFree(path.join(root, 'alice'))).toBe(false)
    expect(lockIsFree(path.join(root, 'bob'))).toBe(false)
    await locks.release()
    expect(lockIsFree(path.join(root, 'alice'))).toBe(true)
    expect(lockIsFree(path.join(root, 'bob'))).toBe(true)
    expect(await readFile(path.join(root, 'alice', '.lock'), 'utf8')).toBe('4242\n')
  })

  it('when an agent holds its lock past the timeout then refuses with LOCKED naming the agent and its pid', async () => {
    await writeFile(path.join(root, 'bob', '.lock'), JSON.stringify({ pid: 777 }))
    await holdWithFlock(path.join(root, 'bob'))
    const err = await caught(acquireAgentLocks([path.join(root, 'alice'), path.join(root, 'bob')], { timeoutMs: 300 }))
    expect(err.code).toBe('LOCKED')
    expect(err.data).toMatchObject({ agent: 'bob', holderPid: 777 })
    // The lock already taken on alice was given back.
    expect(lockIsFree(path.join(root, 'alice'))).toBe(true)
    expect(await readFile(path.join(root, 'bob', '.lock'), 'utf8')).toBe(JSON.stringify({ pid: 777 }))
  })

  it('when the holder releases within the timeout then the lock is acquired', async () => {
    const holder = await holdWithFlock(path.join(root, 'alice'))
    setTimeout(() => killGroup(holder), 200)
    const result = await withAgentLocks([path.join(root, 'alice')], { timeoutMs: 10_000 }, async () => lockIsFree(path.join(root, 'alice')))
    expect(result).toBe(false)
    expect(lockIsFree(path.join(root, 'alice'))).toBe(true)
  })

  it('when the process holding agent locks is killed then the locks are freed', async () => {
    const script = `import { acquireAgentLocks } from ${JSON.stringify(new URL('../../src/transaction/lock.ts', import.meta.url).href)}
await acquireAgentLocks([${JSON.stringify(path.join(root, 'alice'))}], { timeoutMs: 2000 })
process.stdout.write('ok\\n'); setInterval(() => {}, 1000)`
    await writeFile(path.join(root, 'child.mts'), script)
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'child.mts')], { stdio: ['ignore', 'pipe', 'inherit'] })
    holders.push(child)
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()))
    expect(lockIsFree(path.join(root, 'alice'))).toBe(false)
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
    // flock -w waits for the orphaned holder to see its stdin close.
    expect(spawnSync('flock', ['-w', '10', path.join(root, 'alice', '.lock'), 'true']).status).toBe(0)
  })

  it('when the agent folder does not exist then fails with IO_FAILED naming the lock file', async () => {
    const err = await caught(acquireAgentLocks([path.join(root, 'nobody')], { timeoutMs: 500 }))
    expect(err.code).toBe('IO_FAILED')
    expect(err.data.file).toBe(path.join(root, 'nobody', '.lock'))
  })
})
