import { execFileSync } from 'node:child_process'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openStore } from '../../src/git/open-store.js'
import type { Store } from '../../src/git/store.js'
import { makeVault, type TempVault } from '../helpers/make-vault.js'

// The js backend answers isomorphic-git's probes from memory (js-store.ts gitFs): it
// lists objects/pack once. A pack written after that listing must still be read.

let vault: TempVault | null = null
afterEach(async () => {
  await vault?.cleanup()
  vault = null
})

function gitIn(gitDir: string, args: string[], input?: string): string {
  return execFileSync('git', [`--git-dir=${gitDir}`, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] }).trim()
}

async function packs(gitDir: string): Promise<string[]> {
  return (await readdir(path.join(gitDir, 'objects', 'pack'))).filter((f) => f.endsWith('.idx')).sort()
}

// A vault with one note snapshotted by git (one pack), and a js store over the same
// store that has read the note (so it has listed the packs).
async function packedByGit(): Promise<{ gitDir: string; first: string; js: Store }> {
  vault = await makeVault(null)
  await writeFile(path.join(vault.root, 'note.md'), 'first note\n')
  const cli = await openStore({ agentsRoot: vault.root, backend: 'cli' })
  await cli.writeVaultTree()
  const gitDir = cli.location.gitDir
  const first = gitIn(gitDir, ['hash-object', '--stdin'], 'first note\n')
  expect(await packs(gitDir)).toHaveLength(1)
  const js = await openStore({ agentsRoot: vault.root, backend: 'js' })
  expect((await js.readBlob(first)).toString()).toBe('first note\n')
  return { gitDir, first, js }
}

describe('js backend reads through isomorphic-git', () => {
  it('when a pack is written after the store listed its packs then its objects are read, and loose and missing objects are told apart', async () => {
    const { gitDir, js } = await packedByGit()

    // A second pack, made by git after the js store has listed objects/pack.
    const second = gitIn(gitDir, ['hash-object', '-w', '--stdin'], 'second note\n')
    gitIn(gitDir, ['pack-objects', '-q', path.join(gitDir, 'objects', 'pack', 'pack')], `${second}\n`)
    gitIn(gitDir, ['prune-packed'])
    expect(await packs(gitDir)).toHaveLength(2)
    expect((await js.readBlob(second)).toString()).toBe('second note\n')

    // A loose object, and one that is nowhere.
    const loose = gitIn(gitDir, ['hash-object', '-w', '--stdin'], 'loose note\n')
    expect((await js.readBlob(loose)).toString()).toBe('loose note\n')
    expect(await js.blobSizes([loose, second])).toEqual(
      new Map([
        [loose, 11],
        [second, 12],
      ]),
    )
    await expect(js.readBlob('0123456789abcdef0123456789abcdef01234567')).rejects.toMatchObject({ code: 'STORE_CORRUPT' })
  })

  it('when an object is in a pack already listed then it is read from there, whatever a loose file of its name holds', async () => {
    const { gitDir, first, js } = await packedByGit()
    // As git does, the packs are looked in first: a damaged loose copy (a crash while
    // git wrote it) is not read, which also spares a rollback one failed open per blob.
    await mkdir(path.join(gitDir, 'objects', first.slice(0, 2)), { recursive: true })
    await writeFile(path.join(gitDir, 'objects', first.slice(0, 2), first.slice(2)), 'not zlib')
    expect((await js.readBlob(first)).toString()).toBe('first note\n')
    expect(await js.blobSizes([first])).toEqual(new Map([[first, 11]]))
  })
})
