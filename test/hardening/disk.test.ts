import { spawnSync } from 'node:child_process'
import { chmod, cp, mkdir, mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { generateVault } from '../helpers/gen-vault.js'
import { fixturesDir } from '../helpers/make-vault.js'
import { bin, binPath } from '../helpers/run-cli.js'
import { captureTree, filesOf } from '../helpers/tree-state.js'

// Disks that refuse writes: a read-only directory met during the fast-forward (run
// without the capabilities that let root ignore permissions) and a file system that fills
// up mid-run (a real 1 MB tmpfs). Either way: exit 1, an `Error:` naming the path,
// the vault exactly as before, no journal left behind.

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

const notEngine = (rel: string): boolean => rel.startsWith('_migrations/aas.git') || rel === '_migrations/migration.jsonl' || rel.startsWith('.migration.lock')

async function v1Vault(root: string, units: number, bodyBytes: number, padTo?: number): Promise<void> {
  await mkdir(path.join(root, '_migrations'), { recursive: true })
  const paths = await generateVault(root, { units, seed: 2, bodyBytes })
  if (padTo !== undefined) {
    for (const rel of paths) {
      const file = path.join(root, rel)
      const text = await readFile(file)
      if (text.length < padTo) await writeFile(file, Buffer.concat([text, Buffer.from('.'.repeat(padTo - text.length - 1) + '\n')]))
    }
  }
  await cp(path.join(fixturesDir, 'migrations', 'v1_to_v2.mjs'), path.join(root, '_migrations', 'v1_to_v2.mjs'))
}

describe('write failures during the fast-forward', () => {
  it('when a unit folder is read-only for the user running the migration then it is rolled back and the Error: names the path', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'aas-ro-'))
    cleanups.push(() => rm(base, { recursive: true, force: true }))
    await chmod(base, 0o755)
    const root = path.join(base, 'vault')
    await v1Vault(root, 60, 400)
    const readOnly = path.join(root, 'scout', 'memory', 'b0')
    await chmod(readOnly, 0o555)
    const before = filesOf(await captureTree(root, { exclude: notEngine }))
    // Without the capabilities that let root write anywhere, so the folder's mode applies.
    const r = spawnSync(
      'setpriv',
      [
        '--bounding-set=-dac_override,-dac_read_search',
        '--inh-caps=-dac_override,-dac_read_search',
        '--',
        process.execPath,
        binPath,
        '--agents-root',
        root,
        '--to',
        'v2',
      ],
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', NO_COLOR: '1' },
        encoding: 'utf8',
      },
    )
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toMatch(/^Error: .*EACCES/m)
    expect(r.stderr.slice(r.stderr.search(/^Error: /m))).toContain(readOnly)
    // Some units were written before the refusal: the undo put every one back.
    expect(filesOf(await captureTree(root, { exclude: notEngine }))).toEqual(before)
    const s = bin(['--agents-root', root, '--status', '--json'])
    expect(JSON.parse(s.stdout).result?.interrupted ?? null).toBeFalsy()
  }, 120_000)

  it('when the file system fills up mid-run then the vault is rolled back and the Error: names the path', async () => {
    const mnt = await mkdtemp(path.join(tmpdir(), 'aas-full-'))
    cleanups.push(async () => {
      spawnSync('umount', [mnt])
      await rm(mnt, { recursive: true, force: true })
    })
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt])
    expect(m.status, `this test needs a tmpfs mount (root): ${m.stderr}`).toBe(0)
    const root = path.join(mnt, 'vault')
    // Units of 4,080 bytes: the migration's added key makes each need a second page.
    await v1Vault(root, 120, 2000, 4080)
    const dry = bin(['--agents-root', root, '--to', 'v2', '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    const fs = await statfs(mnt)
    const free = fs.bavail * fs.bsize
    await writeFile(path.join(mnt, 'filler'), Buffer.alloc(Math.max(0, free - 200 * 1024)))
    const before = filesOf(await captureTree(root, { exclude: notEngine }))
    const r = bin(['--agents-root', root, '--to', 'v2'])
    expect(r.code, r.stderr).toBe(1)
    expect(r.stderr).toMatch(/^Error: .*ENOSPC/m)
    // Mid-run: the failing write is a unit's, after the journal and the first writes.
    expect(r.stderr.slice(r.stderr.search(/^Error: /m))).toMatch(new RegExp(`${root}/[^ ]+/(memory|wiki)/`))
    await rm(path.join(mnt, 'filler'))
    const s = bin(['--agents-root', root, '--status'])
    expect(s.code, s.stderr).toBe(0)
    expect(filesOf(await captureTree(root, { exclude: notEngine }))).toEqual(before)
  }, 120_000)
})
