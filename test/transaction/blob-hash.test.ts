import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { hashBlob, hashFile, hashLiveEntry } from '../../src/transaction/blob-hash.js'
import { isAasError } from '../../src/errors.js'
import { BIG_BLOB_BYTES } from '../../src/git/store.js'
import { gitEnv } from '../helpers/make-vault.js'

function gitHashObject(cwd: string, file: string): string {
  return execFileSync('git', ['hash-object', '--no-filters', file], { cwd, env: gitEnv, encoding: 'utf8' }).trim()
}
function gitHashStdin(cwd: string, input: Buffer): string {
  return execFileSync('git', ['hash-object', '--no-filters', '--stdin'], { cwd, env: gitEnv, input, encoding: 'utf8' }).trim()
}

describe('blob ids', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aas-blob-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const contents: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['LF markdown', Buffer.from('---\nschema_version: 1\n---\nbody\n')],
    ['CRLF with BOM', Buffer.from('\ufeff---\r\nname: x\r\n---\r\n', 'utf8')],
    ['binary with NUL', Buffer.from([0, 1, 2, 255, 0, 10, 13])],
    ['UTF-8 text', Buffer.from('Schulden — Priorität ✓\n')],
  ]

  it.each(contents)('when hashing %s bytes then the id equals git hash-object --no-filters', async (_name, content) => {
    const file = path.join(dir, 'f.md')
    await writeFile(file, content)
    const expected = gitHashObject(dir, file)
    expect(hashBlob(content)).toBe(expected)
    expect(await hashFile(file, '100644')).toBe(expected)
  })

  it('when a file is above BIG_BLOB_BYTES then it is hashed in chunks to the same id as git hash-object', async () => {
    const file = path.join(dir, 'raw.bin')
    const content = randomBytes(BIG_BLOB_BYTES + 12345)
    await writeFile(file, content)
    await chmod(file, 0o755)
    const expected = gitHashObject(dir, file)
    expect(hashBlob(content)).toBe(expected)
    expect(await hashFile(file, '100644')).toBe(expected)
    expect(await hashLiveEntry(file)).toEqual({ mode: '100755', oid: expected })
  })

  it('when a .gitattributes would convert line endings then the id is still of the raw bytes', async () => {
    execFileSync('git', ['init', '-q'], { cwd: dir, env: gitEnv })
    await writeFile(path.join(dir, '.gitattributes'), '* text eol=lf\n')
    const content = Buffer.from('a\r\nb\r\n')
    await writeFile(path.join(dir, 'n.md'), content)
    expect(await hashFile(path.join(dir, 'n.md'), '100644')).toBe(gitHashObject(dir, 'n.md'))
    const filtered = execFileSync('git', ['hash-object', 'n.md'], { cwd: dir, env: gitEnv, encoding: 'utf8' }).trim()
    expect(hashBlob(content)).not.toBe(filtered)
  })

  it('when the entry is a symlink then the id is of the link target bytes, as git stores it', async () => {
    const target = '../wiki/Ünïcode page.md'
    await symlink(target, path.join(dir, 'link'))
    const expected = gitHashStdin(dir, Buffer.from(target))
    expect(await hashFile(path.join(dir, 'link'), '120000')).toBe(expected)
    expect(await hashLiveEntry(path.join(dir, 'link'))).toEqual({ mode: '120000', oid: expected })
    // Cross-check with git's own index entry for the symlink.
    execFileSync('git', ['init', '-q'], { cwd: dir, env: gitEnv })
    execFileSync('git', ['add', 'link'], { cwd: dir, env: gitEnv })
    const staged = execFileSync('git', ['ls-files', '-s', 'link'], { cwd: dir, env: gitEnv, encoding: 'utf8' })
    expect(staged.split(/\s+/).slice(0, 2)).toEqual(['120000', expected])
  })

  it('when a symlink is hashed as a regular file then refuses instead of following it', async () => {
    await writeFile(path.join(dir, 'real.md'), 'real\n')
    await symlink('real.md', path.join(dir, 'link.md'))
    const err = await hashFile(path.join(dir, 'link.md'), '100644').catch((e: unknown) => e)
    expect(isAasError(err, 'IO_FAILED')).toBe(true)
  })

  it('when reading live entries then reports mode from the executable bit and null for absent paths', async () => {
    await writeFile(path.join(dir, 'run.sh'), '#!/bin/sh\n')
    await chmod(path.join(dir, 'run.sh'), 0o755)
    await writeFile(path.join(dir, 'note.md'), 'n\n')
    expect(await hashLiveEntry(path.join(dir, 'run.sh'))).toEqual({ mode: '100755', oid: gitHashObject(dir, 'run.sh') })
    expect(await hashLiveEntry(path.join(dir, 'note.md'))).toEqual({ mode: '100644', oid: gitHashObject(dir, 'note.md') })
    expect(await hashLiveEntry(path.join(dir, 'missing.md'))).toBeNull()
    expect(await hashLiveEntry(path.join(dir, 'note.md', 'below'))).toBeNull()
    await mkdir(path.join(dir, 'sub'))
    const err = await hashLiveEntry(path.join(dir, 'sub')).catch((e: unknown) => e)
    expect(isAasError(err, 'IO_FAILED')).toBe(true)
  })

  it('when a FIFO stands where a file is expected then hashing fails instead of blocking', async () => {
    const fifo = path.join(dir, 'pipe.md')
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0)
    const err = await hashFile(fifo, '100644').catch((e: unknown) => e)
    expect(isAasError(err, 'IO_FAILED')).toBe(true)
    const err2 = await hashLiveEntry(fifo).catch((e: unknown) => e)
    expect(isAasError(err2, 'IO_FAILED')).toBe(true)
  })
})
