import { copyFile, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { EXAMPLES } from '../../src/cli/program.js'
import { git, makeVault, repoRoot, type TempVault } from '../helpers/make-vault.js'
import { cli } from '../helpers/run-cli.js'

// The convention (README "Documentation"): every `aas-migrate …` line of a ```sh or
// ```bash block runs, in order, on a fresh git copy of fixtures/vault-v1. SNAPSHOT is
// the snapshot printed last, --agents-root is the copy, FILE.tar.gz and FILE.html go to a temp
// folder; `# illustrative` lines are skipped, `# exits 1` lines must exit 1. A
// `cp …/docs/migrations/vN_to_vM.py …/_migrations/` line (the runbook's copy of a
// release's script) copies that script from fixtures/migrations-py/ into the copy's
// _migrations/, in place of the sample vault's script for the same step. The copy's
// repository has an `origin`: a bare repository in a temp folder.

interface DocCommand {
  source: string
  line: string
  args: string[]
  expect: number
  copyPy?: string // a release's .py script copied into _migrations/ (its file name)
}

const COPY_PY = /^cp\s+\S*docs\/migrations\/(v\d+_to_v\d+\.py)\s+\S*_migrations\/?$/

function commandsOf(markdown: string, source: string): DocCommand[] {
  const out: DocCommand[] = []
  let inBlock = false
  let runnable = false
  for (const raw of markdown.split('\n')) {
    const fence = /^\s*```(\S*)/.exec(raw)
    if (fence) {
      runnable = !inBlock && (fence[1] === 'sh' || fence[1] === 'bash')
      inBlock = !inBlock
      continue
    }
    const text = raw.trim().replace(/^\$ /, '')
    const copy = inBlock && runnable ? COPY_PY.exec(text) : null
    if (copy) {
      out.push({ source, line: text, args: [], expect: 0, copyPy: copy[1] as string })
      continue
    }
    if (!inBlock || !runnable || !text.startsWith('aas-migrate ')) continue
    const [command = '', comment = ''] = text.split(/\s+#\s*/, 2)
    if (comment.startsWith('illustrative')) continue
    out.push({ source, line: command.trim(), args: command.trim().split(/\s+/).slice(1), expect: comment.startsWith('exits 1') ? 1 : 0 })
  }
  return out
}

// The --help Examples: command, then two or more spaces, then what it does.
function helpCommands(): DocCommand[] {
  return EXAMPLES.split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('aas-migrate '))
    .map((l) => {
      const command = l.split(/\s{2,}/)[0] as string
      return { source: '--help', line: command, args: command.split(/\s+/).slice(1), expect: 0 }
    })
}

// --open must not launch a browser on a developer's desktop while the tests run.
const NO_DISPLAY = { DISPLAY: '', WAYLAND_DISPLAY: '' }

const SNAPSHOT_LINE = /(?:^|\n)(?:safety )?snapshot: (\S+) \(refs\/aas\/snapshots\//g

async function runSession(commands: DocCommand[]): Promise<void> {
  const v: TempVault = await makeVault('vault-v1', { git: true })
  const files = await mkdtemp(path.join(tmpdir(), 'aas-docs-'))
  // The copy's origin: a local bare repository, for the snapshot push and fetch commands.
  git(files, 'init', '-q', '--bare', path.join(files, 'origin.git'))
  git(v.dir, 'remote', 'add', 'origin', path.join(files, 'origin.git'))
  try {
    let snapshot: string | null = null
    for (const c of commands) {
      if (c.copyPy) {
        const dir = path.join(v.root, '_migrations')
        const step = c.copyPy.replace(/\.py$/, '.')
        for (const f of await readdir(dir)) if (f.startsWith(step)) await rm(path.join(dir, f))
        await copyFile(path.join(repoRoot, 'fixtures/migrations-py', c.copyPy), path.join(dir, c.copyPy))
        continue
      }
      const args: string[] = ['--agents-root', v.root]
      for (let i = 0; i < c.args.length; i++) {
        const a = c.args[i] as string
        if (a === '--agents-root') {
          i++
          continue
        }
        if (a === 'SNAPSHOT') {
          expect(snapshot, `${c.source}: ${c.line} needs a snapshot printed before it`).not.toBeNull()
          args.push(snapshot as string)
        } else if (a.endsWith('.tar.gz') || a.endsWith('.html')) args.push(path.join(files, path.basename(a)))
        else args.push(a)
      }
      const r = await cli(args, NO_DISPLAY)
      expect(r.code, `${c.source}: ${c.line}\n${r.stdout}\n${r.stderr}`).toBe(c.expect)
      for (const m of `${r.stdout}\n${r.stderr}`.matchAll(SNAPSHOT_LINE)) snapshot = m[1] as string
    }
  } finally {
    await v.cleanup()
    await rm(files, { recursive: true, force: true })
  }
}

const docs = [
  'README.md',
  ...(await readdir(path.join(repoRoot, 'docs')))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
]
const perFile = await Promise.all(docs.map(async (f) => ({ file: f, commands: commandsOf(await readFile(path.join(repoRoot, f), 'utf8'), f) })))

describe('documented commands', () => {
  it('the README, the runbook and the authoring guide each show commands to run', () => {
    const count = (f: string) => perFile.find((p) => p.file === f)?.commands.length ?? 0
    expect(count('README.md')).toBeGreaterThanOrEqual(5)
    expect(count('docs/upgrading.md')).toBeGreaterThanOrEqual(8)
    expect(count('docs/writing-migrations.md')).toBeGreaterThanOrEqual(3)
    // The runbook copies the release's .py into _migrations/, and its session runs that script.
    expect(
      perFile
        .find((p) => p.file === 'docs/upgrading.md')
        ?.commands.filter((c) => c.copyPy)
        .map((c) => c.copyPy),
    ).toEqual(['v1_to_v2.py'])
    expect(helpCommands().length).toBeGreaterThanOrEqual(15)
    // "Snapshots off the machine" runs against the copy's origin, a local bare repository.
    const runbook = perFile.find((p) => p.file === 'docs/upgrading.md')?.commands.map((c) => c.line) ?? []
    for (const flag of ['--push-snapshots', '--fetch-snapshots origin', '--prune-snapshots', '--break-lease', '--remote origin'])
      expect(
        runbook.some((l) => l.includes(flag)),
        flag,
      ).toBe(true)
  })

  it.each(perFile.filter((p) => p.commands.length > 0).map((p) => [p.file, p.commands] as const))(
    'every aas-migrate command of %s runs on the sample vault',
    async (_file, commands) => {
      await runSession([...commands])
    },
    240_000, // the runbook runs some thirty commands, each a process of git children
  )

  it('every --help example runs on the sample vault', async () => {
    await runSession(helpCommands())
  }, 240_000)
})
