import { spawnSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { git } from '../helpers/make-vault.js'
import { captureGitState } from '../helpers/git-state.js'
import { binPath, cli } from '../helpers/run-cli.js'
import { captureTree, type TreeState } from '../helpers/tree-state.js'
import { cp } from 'node:fs/promises'
import { fixturesDir } from '../helpers/make-vault.js'

// Hostile input, table-driven: every case must exit with its code, print an `Error:`
// line naming the culprit, and leave the vault, everything beside it and the store
// byte-identical (the audit log, which gets a line for every refusal, aside: see
// docs/how-it-works.md, "The audit log").
// Cases refused after the snapshot was taken (script failures) may add that
// snapshot to the store; everything else, the store included, must not change.

const BASE_UNIT = 'caldwell/memory/feedback_debt_priority.md'

interface Ctx {
  base: string // temp dir holding the vault and a folder outside it
  root: string // agents_root
  outside: string
}

interface HostileCase {
  name: string
  setup?: (c: Ctx) => Promise<void>
  args?: (c: Ctx) => string[] // default: --to v2
  env?: Record<string, string>
  code: 1 | 2
  culprit: (c: Ctx) => string // text the Error: block must contain
  errorCode?: string // the AasError code in --json output, when checked
  snapshotMayBeTaken?: boolean
  asNobody?: boolean // run the built CLI without the capabilities that let root read chmod 000 files
  gitVault?: boolean
}

const bases: string[] = []
afterAll(async () => {
  for (const b of bases) {
    await run('chmod', ['-R', 'u+rwx', b])
    await rm(b, { recursive: true, force: true })
  }
})

async function run(cmd: string, args: string[]): Promise<void> {
  spawnSync(cmd, args)
}

async function makeCtx(gitVault: boolean): Promise<Ctx> {
  const base = await mkdtemp(path.join(tmpdir(), 'aas-hostile-'))
  bases.push(base)
  await chmod(base, 0o755)
  const root = path.join(base, 'vault')
  const outside = path.join(base, 'outside')
  await cp(path.join(fixturesDir, 'vault-v1'), root, { recursive: true, dereference: true })
  await mkdir(outside)
  await writeFile(path.join(outside, 'secret.md'), '---\nschema_version: 1\nname: secret\n---\noutside the vault\n')
  if (gitVault) {
    git(root, 'init', '-q', '-b', 'main')
    git(root, 'config', 'commit.gpgSign', 'false')
    git(root, 'config', 'gc.auto', '0')
    git(root, 'add', '-A')
    git(root, 'commit', '-q', '-m', 'vault')
  }
  return { base, root, outside }
}

const unit = (c: Ctx, rel: string): string => path.join(c.root, ...rel.split('/'))
const writeUnit = (c: Ctx, rel: string, text: string | Buffer): Promise<void> => writeFile(unit(c, rel), text)
const script = (c: Ctx, name: string, text: string): Promise<void> => writeFile(path.join(c.root, '_migrations', name), text)
const V1_TO_V2 = '_migrations/v1_to_v2.mjs'
const migration = (body: string): string => `export default { from: 1, to: 2, appliesTo: (u) => u.readFrontmatter().schema_version === 1, ${body} }\n`

// A tarball made by tar(1) from a staging folder, placed where --rollback/--import look.
async function tarball(c: Ctx, name: string, build: (stage: string) => Promise<string[]>): Promise<string> {
  const stage = path.join(c.base, `stage-${name}`)
  await mkdir(stage, { recursive: true })
  const members = await build(stage)
  const dir = path.join(c.root, '_migrations', 'snapshots')
  await mkdir(dir, { recursive: true })
  const file = path.join(dir, `${name}.tar.gz`)
  const r = spawnSync('tar', ['-czf', file, '-C', stage, '-P', ...members])
  if (r.status !== 0) throw new Error(r.stderr.toString())
  await rm(stage, { recursive: true, force: true })
  return file
}

async function migratedOnce(c: Ctx): Promise<string> {
  const r = await cli(['--agents-root', c.root, '--to', 'v2', '--json'])
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout).result.snapshot.name as string
}

const cases: HostileCase[] = [
  // ---- bad CLI values (usage errors, exit 2) ----
  { name: '--to with a non-version', args: (c) => ['--agents-root', c.root, '--to', 'vx'], code: 2, culprit: () => 'vx' },
  { name: '--to with a negative version', args: (c) => ['--agents-root', c.root, '--to', '-3'], code: 2, culprit: () => '--to' },
  { name: '--to with a fractional version', args: (c) => ['--agents-root', c.root, '--to', 'v2.5'], code: 2, culprit: () => 'v2.5' },
  {
    name: '--lock-timeout that is not a duration',
    args: (c) => ['--agents-root', c.root, '--to', 'v2', '--lock-timeout', 'soon'],
    code: 2,
    culprit: () => 'soon',
  },
  { name: 'two actions at once', args: (c) => ['--agents-root', c.root, '--to', 'v2', '--status'], code: 2, culprit: () => '--status' },
  { name: 'an unknown flag', args: (c) => ['--agents-root', c.root, '--frobnicate'], code: 2, culprit: () => '--frobnicate' },
  { name: '--rollback without a snapshot', args: (c) => ['--agents-root', c.root, '--rollback'], code: 2, culprit: () => '--rollback' },

  // ---- agents_root ----
  {
    name: 'agents_root that does not exist',
    args: (c) => ['--agents-root', path.join(c.base, 'nope'), '--to', 'v2'],
    code: 1,
    culprit: (c) => path.join(c.base, 'nope'),
  },
  {
    name: 'agents_root that is a file',
    setup: async (c) => writeFile(path.join(c.base, 'plain-file'), 'x'),
    args: (c) => ['--agents-root', path.join(c.base, 'plain-file'), '--to', 'v2'],
    code: 1,
    culprit: (c) => path.join(c.base, 'plain-file'),
  },
  {
    name: 'agents_root that is a symlink loop',
    setup: async (c) => symlink(path.join(c.base, 'loop'), path.join(c.base, 'loop')),
    args: (c) => ['--agents-root', path.join(c.base, 'loop'), '--to', 'v2'],
    code: 1,
    culprit: (c) => path.join(c.base, 'loop'),
  },
  {
    name: 'agents_root that its user cannot read',
    asNobody: true,
    setup: async (c) => chmod(c.root, 0o311),
    code: 1,
    culprit: (c) => c.root,
  },

  // ---- units ----
  {
    name: 'a unit with invalid YAML (an unquoted colon)',
    setup: (c) => writeUnit(c, BASE_UNIT, '---\nschema_version: 1\ndescription: Locked: avalanche first\n---\nbody\n'),
    code: 1,
    culprit: () => BASE_UNIT,
    errorCode: 'UNIT_UNREADABLE',
  },
  {
    name: 'a unit indented with tabs',
    setup: (c) => writeUnit(c, BASE_UNIT, '---\nschema_version: 1\nsources:\n\t- a\n---\nbody\n'),
    code: 1,
    culprit: () => BASE_UNIT,
    errorCode: 'UNIT_UNREADABLE',
  },
  {
    name: 'a unit with duplicate keys',
    setup: (c) => writeUnit(c, BASE_UNIT, '---\nschema_version: 1\nname: a\nname: b\n---\nbody\n'),
    code: 1,
    culprit: () => BASE_UNIT,
    errorCode: 'UNIT_UNREADABLE',
  },
  {
    name: 'a unit with an alias bomb',
    setup: (c) => {
      const lines = ['---', 'schema_version: 1', 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]']
      for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`)
      return writeUnit(c, BASE_UNIT, `${lines.join('\n')}\n---\nbody\n`)
    },
    code: 1,
    culprit: () => BASE_UNIT,
    errorCode: 'UNIT_UNREADABLE',
  },
  {
    name: 'a 50 MB unit whose front matter does not parse',
    setup: (c) => writeUnit(c, BASE_UNIT, `---\nschema_version: 1\nname: huge: yes\n---\n${'lorem ipsum dolor sit amet\n'.repeat(2_000_000)}`),
    code: 1,
    culprit: () => BASE_UNIT,
    errorCode: 'UNIT_UNREADABLE',
  },
  {
    name: 'binary content under a .md name',
    setup: (c) =>
      writeUnit(c, BASE_UNIT, Buffer.concat([Buffer.from('---\nschema_version: 1\n'), Buffer.from([0, 1, 2, 0xff, 0xfe, 0, 0x9c]), Buffer.from('\n---\n')])),
    code: 1,
    culprit: () => BASE_UNIT,
  },
  {
    name: 'a unit that is not UTF-8',
    setup: (c) => writeUnit(c, BASE_UNIT, Buffer.concat([Buffer.from('---\nschema_version: 1\nname: caf'), Buffer.from([0xe9]), Buffer.from('\n---\nbody\n')])),
    code: 1,
    culprit: () => BASE_UNIT,
  },
  {
    name: 'a unit its user cannot read',
    asNobody: true,
    setup: async (c) => chmod(unit(c, BASE_UNIT), 0o000),
    code: 1,
    culprit: () => BASE_UNIT,
  },

  // ---- scripts ----
  {
    name: 'a script with a syntax error (.mjs)',
    setup: (c) => script(c, 'v1_to_v2.mjs', 'export default { from: 1, to: 2,, }\n'),
    code: 1,
    culprit: () => V1_TO_V2,
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script with a syntax error (.ts)',
    setup: async (c) => {
      await unlink(path.join(c.root, '_migrations', 'v1_to_v2.mjs'))
      await script(c, 'v1_to_v2.ts', 'export default { from: 1 to: 2 }\n')
    },
    code: 1,
    culprit: () => '_migrations/v1_to_v2.ts',
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script without a default export',
    setup: (c) => script(c, 'v1_to_v2.mjs', 'export const migration = {}\n'),
    code: 1,
    culprit: () => V1_TO_V2,
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script whose default export is a function',
    setup: (c) => script(c, 'v1_to_v2.mjs', 'export default function () {}\n'),
    code: 1,
    culprit: () => V1_TO_V2,
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script whose versions do not match its name',
    setup: (c) => script(c, 'v1_to_v2.mjs', 'export default { from: 2, to: 3, appliesTo: () => true, migrate: () => true }\n'),
    code: 1,
    culprit: () => V1_TO_V2,
    snapshotMayBeTaken: true,
  },
  {
    name: 'two scripts for the same step (.mjs and .ts)',
    setup: (c) => script(c, 'v1_to_v2.ts', migration('migrate: () => true')),
    code: 1,
    culprit: () => 'v1_to_v2',
  },
  { name: 'a script that skips a version', setup: (c) => script(c, 'v2_to_v4.mjs', 'export default {}\n'), code: 1, culprit: () => 'v2_to_v4.mjs' },
  {
    name: 'a script name that looks like a step but is not one',
    setup: (c) => script(c, 'v1-to-v2.mjs', 'export default {}\n'),
    code: 1,
    culprit: () => 'v1-to-v2.mjs',
  },
  {
    name: 'a script that throws',
    setup: (c) => script(c, 'v1_to_v2.mjs', migration("migrate(u) { throw new Error('boom') }")),
    code: 1,
    culprit: () => V1_TO_V2,
    errorCode: 'SCRIPT_FAILED',
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script that throws a non-Error whose toString throws',
    setup: (c) => script(c, 'v1_to_v2.mjs', migration("migrate(u) { throw { toString() { throw new Error('no') } } }")),
    code: 1,
    culprit: () => V1_TO_V2,
    errorCode: 'SCRIPT_FAILED',
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script that returns an object with a throwing getter',
    setup: (c) =>
      script(
        c,
        'v1_to_v2.mjs',
        migration(
          "migrate(u) { const m = u.readFrontmatter(); m.schema_version = 2; u.writeFrontmatter(m); return { get changes() { throw new Error('gotcha') } } }",
        ),
      ),
    code: 1,
    culprit: () => V1_TO_V2,
    errorCode: 'SCRIPT_FAILED',
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script that never returns',
    env: { AAS_SCRIPT_TIMEOUT_MS: '1500' },
    setup: (c) => script(c, 'v1_to_v2.mjs', migration('migrate(u) { for (;;) {} }')),
    code: 1,
    culprit: () => V1_TO_V2,
    errorCode: 'SCRIPT_FAILED',
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script whose promise never settles',
    env: { AAS_SCRIPT_TIMEOUT_MS: '1500' },
    setup: (c) => script(c, 'v1_to_v2.mjs', migration('migrate(u) { return new Promise(() => {}) }')),
    code: 1,
    culprit: () => V1_TO_V2,
    errorCode: 'SCRIPT_FAILED',
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script that exhausts memory',
    env: { AAS_SCRIPT_MEMORY_MB: '64' },
    setup: (c) => script(c, 'v1_to_v2.mjs', migration("migrate(u) { const a = []; for (;;) a.push('x'.repeat(1024) + a.length) }")),
    code: 1,
    culprit: () => V1_TO_V2,
    errorCode: 'SCRIPT_FAILED',
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script that calls process.exit',
    setup: (c) => script(c, 'v1_to_v2.mjs', migration('migrate(u) { process.exit(0) }')),
    code: 1,
    culprit: () => V1_TO_V2,
    errorCode: 'SCRIPT_FAILED',
    snapshotMayBeTaken: true,
  },
  {
    name: "a script that sets unit.unitId = '../x'",
    setup: (c) => script(c, 'v1_to_v2.mjs', migration("migrate(u) { u.unitId = '../../outside/secret.md'; return true }")),
    code: 1,
    culprit: () => V1_TO_V2,
    errorCode: 'SCRIPT_FAILED',
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script that writes front matter with a getter',
    setup: (c) =>
      script(
        c,
        'v1_to_v2.mjs',
        migration(
          "migrate(u) { const m = u.readFrontmatter(); m.schema_version = 2; Object.defineProperty(m, 'name', { get() { throw new Error('x') }, enumerable: true }); u.writeFrontmatter(m); return true }",
        ),
      ),
    code: 1,
    culprit: () => V1_TO_V2,
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script that breaks Array.prototype.map in its worker',
    setup: (c) =>
      script(
        c,
        'v1_to_v2.mjs',
        `Array.prototype.map = function () { return [{ unitId: '../../outside/secret.md', after: 'pwned', touched: true }] }\n${migration('migrate(u) { return true }')}`,
      ),
    code: 1,
    culprit: () => V1_TO_V2,
    snapshotMayBeTaken: true,
  },
  {
    name: 'a script that does not bump schema_version',
    setup: (c) => script(c, 'v1_to_v2.mjs', migration('migrate(u) { return { changes: [] } }')),
    code: 1,
    culprit: () => V1_TO_V2,
    errorCode: 'SCRIPT_NO_BUMP',
    snapshotMayBeTaken: true,
  },

  // ---- snapshot names ----
  {
    name: 'a snapshot name that climbs out of the store',
    args: (c) => ['--agents-root', c.root, '--rollback', '../../../x'],
    code: 1,
    culprit: () => '../../../x',
  },
  { name: 'a snapshot name that is a ref', args: (c) => ['--agents-root', c.root, '--rollback', 'refs/heads/main'], code: 1, culprit: () => 'refs/heads/main' },
  { name: 'a snapshot name with ref syntax', args: (c) => ['--agents-root', c.root, '--rollback', 'HEAD@{1}'], code: 1, culprit: () => 'HEAD@{1}' },
  {
    name: 'a snapshot name with shell and option syntax',
    args: (c) => ['--agents-root', c.root, '--rollback', '--upload-pack=touch /tmp/x;'],
    code: 1,
    culprit: () => '--upload-pack',
  },
  { name: 'an export name that climbs out', args: (c) => ['--agents-root', c.root, '--export-snapshot', '../escape'], code: 1, culprit: () => '../escape' },

  // ---- hostile tarballs ----
  {
    name: 'a tarball with a .. member',
    setup: async (c) => {
      // tar(1) will not write a member named with '..': Python's tarfile will.
      const dir = path.join(c.root, '_migrations', 'snapshots')
      await mkdir(dir, { recursive: true })
      const py =
        "import tarfile,io,sys\nt=tarfile.open(sys.argv[1],'w:gz')\ni=tarfile.TarInfo('caldwell/../../evil.md')\ni.size=1\nt.addfile(i,io.BytesIO(b'x'))\nt.close()"
      const r = spawnSync('python3', ['-c', py, path.join(dir, 'dotdot.tar.gz')])
      expect(r.status, r.stderr.toString()).toBe(0)
    },
    args: (c) => ['--agents-root', c.root, '--import-snapshot', path.join(c.root, '_migrations', 'snapshots', 'dotdot.tar.gz')],
    code: 1,
    culprit: () => 'dotdot.tar.gz',
  },
  {
    name: 'a tarball with an absolute member',
    setup: async (c) => {
      await tarball(c, 'absolute', async () => [path.join(c.outside, 'secret.md')])
    },
    args: (c) => ['--agents-root', c.root, '--import-snapshot', path.join(c.root, '_migrations', 'snapshots', 'absolute.tar.gz')],
    code: 1,
    culprit: () => 'absolute.tar.gz',
  },
  {
    name: 'a tarball with a symlink leaving the vault',
    setup: async (c) => {
      await tarball(c, 'linkout', async (stage) => {
        await mkdir(path.join(stage, 'caldwell', 'memory'), { recursive: true })
        await symlink('/etc/passwd', path.join(stage, 'caldwell', 'memory', 'user_x.md'))
        return ['caldwell']
      })
    },
    args: (c) => ['--agents-root', c.root, '--import-snapshot', path.join(c.root, '_migrations', 'snapshots', 'linkout.tar.gz')],
    code: 1,
    culprit: () => 'linkout.tar.gz',
  },
  {
    name: 'a tarball with a device file',
    setup: async (c) => {
      await tarball(c, 'device', async () => ['/dev/null'])
    },
    args: (c) => ['--agents-root', c.root, '--import-snapshot', path.join(c.root, '_migrations', 'snapshots', 'device.tar.gz')],
    code: 1,
    culprit: () => 'device.tar.gz',
  },
  {
    name: 'a tarball that is not gzip',
    setup: async (c) => {
      await mkdir(path.join(c.root, '_migrations', 'snapshots'), { recursive: true })
      await writeFile(path.join(c.root, '_migrations', 'snapshots', 'junk.tar.gz'), 'this is not a tarball')
    },
    args: (c) => ['--agents-root', c.root, '--rollback', 'junk.tar.gz'],
    code: 1,
    culprit: () => 'junk.tar.gz',
  },

  // ---- corrupt stores ----
  {
    name: 'a snapshot ref that points at garbage',
    setup: async (c) => {
      await migratedOnce(c)
      const refDir = path.join(c.root, '_migrations', 'aas.git', 'refs', 'aas', 'snapshots')
      await mkdir(refDir, { recursive: true })
      await writeFile(path.join(refDir, 'bogus'), 'not-an-object-id\n')
    },
    args: (c) => ['--agents-root', c.root, '--rollback', 'bogus'],
    code: 1,
    culprit: () => 'bogus',
  },
  {
    name: 'a store missing the objects of a snapshot',
    setup: async (c) => {
      const name = await migratedOnce(c)
      await writeFile(path.join(c.base, 'snapshot-name'), name)
      const objects = path.join(c.root, '_migrations', 'aas.git', 'objects')
      for (const d of await readdir(objects)) {
        if (/^[0-9a-f]{2}$/.test(d)) await rm(path.join(objects, d), { recursive: true })
        if (d === 'pack') for (const p of await readdir(path.join(objects, d))) await rm(path.join(objects, d, p))
      }
    },
    args: (c) => ['--agents-root', c.root, '--rollback', spawnSync('cat', [path.join(c.base, 'snapshot-name')]).stdout.toString()],
    code: 1,
    culprit: () => 'aas.git',
    errorCode: 'STORE_CORRUPT',
  },

  // ---- git vaults ----
  {
    name: 'a ref-injection snapshot name in a git vault',
    gitVault: true,
    args: (c) => ['--agents-root', c.root, '--rollback', 'refs/heads/main'],
    code: 1,
    culprit: () => 'refs/heads/main',
  },
  {
    name: 'a script that throws in a git vault',
    gitVault: true,
    setup: (c) => script(c, 'v1_to_v2.mjs', migration("migrate(u) { throw new Error('boom') }")),
    code: 1,
    culprit: () => V1_TO_V2,
    errorCode: 'SCRIPT_FAILED',
    snapshotMayBeTaken: true,
  },
]

// Store and audit log: compared separately from the vault (see the file comment).
const engineFile = (rel: string): boolean => rel.endsWith('_migrations/migration.jsonl')
const storeFile = (rel: string): boolean => rel.includes('_migrations/aas.git') || rel.startsWith('vault/.git')

// The built CLI stripped of CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: file modes then
// apply to it as to any user, while it can still reach the checkout (which may sit in a
// folder only root may enter, so switching to another uid would not work everywhere).
const UNPRIVILEGED = ['setpriv', '--bounding-set=-dac_override,-dac_read_search', '--inh-caps=-dac_override,-dac_read_search', '--']

function runAsNobody(args: string[], env: Record<string, string>): { code: number; stdout: string; stderr: string } {
  const [cmd, ...pre] = UNPRIVILEGED as [string, ...string[]]
  const r = spawnSync(cmd, [...pre, process.execPath, binPath, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', NO_COLOR: '1', ...env },
    encoding: 'utf8',
  })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

describe('hostile input is refused and changes nothing', () => {
  it('the corpus has at least 40 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40)
  })

  it.each(cases.map((c) => [c.name, c] as const))(
    '%s',
    async (_name, hc) => {
      const c = await makeCtx(hc.gitVault === true)
      await hc.setup?.(c)
      const exclude = (rel: string): boolean => engineFile(rel) || (hc.snapshotMayBeTaken === true && storeFile(rel))
      const before: TreeState = await captureTree(c.base, { exclude })
      const gitBefore = hc.gitVault ? await captureGitState(c.root) : null
      const args = hc.args ? hc.args(c) : ['--agents-root', c.root, '--to', 'v2']
      const r = hc.asNobody ? runAsNobody(args, hc.env ?? {}) : await cli(args, hc.env ?? {})
      if (hc.asNobody) {
        // The unprivileged run really is subject to file modes (else this case proves nothing).
        const probe = path.join(c.base, 'mode-probe')
        await writeFile(probe, 'x', { mode: 0o000 })
        const [cmd, ...pre] = UNPRIVILEGED as [string, ...string[]]
        expect(spawnSync(cmd, [...pre, 'cat', probe]).status).not.toBe(0)
        await rm(probe)
      }
      expect(r.code, r.stderr).toBe(hc.code)
      const at = r.stderr.search(/^Error: /m)
      expect(at, r.stderr).toBeGreaterThanOrEqual(0)
      expect(r.stderr.slice(at)).toContain(hc.culprit(c))
      if (hc.errorCode) {
        const j = hc.asNobody ? runAsNobody([...args, '--json'], hc.env ?? {}) : await cli([...args, '--json'], hc.env ?? {})
        expect(JSON.parse(j.stdout).error?.code, j.stdout).toBe(hc.errorCode)
      }
      expect(await captureTree(c.base, { exclude })).toEqual(before)
      if (gitBefore) expect(await captureGitState(c.root)).toEqual(gitBefore)
    },
    120_000,
  )
})
