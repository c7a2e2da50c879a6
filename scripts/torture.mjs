// npm run torture -- --trials N [--units U] [--seed S]
// Kills the built CLI (SIGKILL) at random moments during `--to` and `--rollback` on a
// generated vault; after each kill, `--status` completes any interrupted transaction
// and the whole vault tree (files, modes, directories, no temp/claim file, no lock)
// must be exactly the state before or exactly the state after the command.
// Half the trials hit --to, half --rollback. Prints trials and mixed states; exits 1
// when any trial ends mixed.
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateVault } from '../test/helpers/gen-vault.ts'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const cliPath = path.join(repo, 'dist', 'cli', 'main.js')
const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : d
}
const trials = arg('trials', 100)
const units = arg('units', 600)
let seed = arg('seed', 1) >>> 0 || 1
const rand = () => {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return (seed >>> 0) / 0x100000000
}
const env = { ...process.env, NO_COLOR: '1' }
delete env.AAS_FAULT
delete env.ATOMIC_AGENTS_ROOT

// Engine bookkeeping is not vault content: the store, the audit log, and the vault lock
// (a kill before the journal exists leaves a stale lock, which --status reports and
// never removes on its own; counted separately below).
const notEngine = (rel) => rel.startsWith('_migrations/aas.git') || rel === '_migrations/migration.jsonl' || rel.startsWith('.migration.lock')
async function capture(root) {
  const out = {}
  const walk = async (dir) => {
    for (const d of (await readdir(path.join(root, dir), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const rel = dir ? `${dir}/${d.name}` : d.name
      if (notEngine(rel)) continue
      const abs = path.join(root, rel)
      const st = await lstat(abs)
      if (st.isDirectory()) {
        out[`${rel}/`] = `dir ${(st.mode & 0o777).toString(8)}`
        await walk(rel)
      } else if (st.isSymbolicLink()) out[rel] = `link ${await readlink(abs)}`
      else
        out[rel] = `file ${(st.mode & 0o777).toString(8)} ${createHash('sha1')
          .update(await readFile(abs))
          .digest('hex')}`
    }
  }
  await walk('')
  return JSON.stringify(out)
}

function run(args) {
  const r = spawnSync(process.execPath, [cliPath, ...args], { env, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`aas-migrate ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return r.stdout
}

function killedAt(args, ms) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: 'ignore', env })
    const timer = setTimeout(() => child.kill('SIGKILL'), ms)
    child.on('exit', (_code, signal) => {
      clearTimeout(timer)
      resolve(signal === 'SIGKILL')
    })
  })
}

// Beside the generated notes (1% of them CRLF): a unit with a BOM, a binary file and a
// run log, so the trials also cover bytes a text round trip would change.
async function addOddFiles(root) {
  const agent = (await readdir(root)).filter((n) => !n.startsWith('_') && !n.startsWith('.')).sort()[0]
  const memory = path.join(root, agent, 'memory')
  const note = (await readdir(memory, { recursive: true })).filter((n) => n.endsWith('.md') && !path.basename(n).startsWith('INDEX')).sort()[0]
  await writeFile(path.join(memory, 'user_bom_note.md'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), await readFile(path.join(memory, note))]))
  await mkdir(path.join(root, agent, 'raw'), { recursive: true })
  await writeFile(
    path.join(root, agent, 'raw', 'recording.bin'),
    createHash('sha512').update('torture').digest().subarray(0, 64).toString('binary').repeat(1024),
    'binary',
  )
  await mkdir(path.join(root, agent, 'log', '2026-12'), { recursive: true })
  await writeFile(path.join(root, agent, 'log', '2026-12', '2026-12-02.jsonl'), '{"event":"run"}\n')
}

const base = await mkdtemp(path.join(tmpdir(), 'aas-torture-'))
try {
  const pristine = path.join(base, 'pristine')
  await mkdir(path.join(pristine, '_migrations'), { recursive: true })
  await generateVault(pristine, { units, seed: 5, bodyBytes: 800 })
  await addOddFiles(pristine)
  // One .mjs step: no TypeScript compile per run, so more trials per minute reach the write phase.
  for (const f of ['v1_to_v2.mjs']) await cp(path.join(repo, 'fixtures', 'migrations', f), path.join(pristine, '_migrations', f))
  const pre = await capture(pristine)
  const migrated = path.join(base, 'migrated')
  await cp(pristine, migrated, { recursive: true })
  const t = Date.now()
  const snapshot = JSON.parse(run(['--agents-root', migrated, '--to', 'v2', '--json'])).result.snapshot.name
  const toRuns = [Date.now() - t]
  const post = await capture(migrated)
  // Each command's full time, the median of three runs on fresh copies: the kill moments
  // are drawn from it, and one fast run alone put every --to kill before the write phase.
  const probe = path.join(base, 'probe')
  const timed = async (from, args) => {
    await cp(from, probe, { recursive: true })
    const start = Date.now()
    run(['--agents-root', probe, ...args])
    const ms = Date.now() - start
    await rm(probe, { recursive: true, force: true })
    return ms
  }
  for (let k = 0; k < 2; k++) toRuns.push(await timed(pristine, ['--to', 'v2']))
  const rollbackRuns = []
  for (let k = 0; k < 3; k++) rollbackRuns.push(await timed(migrated, ['--rollback', snapshot]))
  const median = (xs) => [...xs].sort((a, b) => a - b)[1]
  const [toMs, rollbackMs] = [median(toRuns), median(rollbackRuns)]
  console.log(`vault: ${units} units; full --to ${toMs} ms (${toRuns.join(', ')}), full --rollback ${rollbackMs} ms (${rollbackRuns.join(', ')})`)

  let staleLocks = 0
  const tally = { to: { trials: 0, killed: 0, pre: 0, post: 0, mixed: 0 }, rollback: { trials: 0, killed: 0, pre: 0, post: 0, mixed: 0 } }
  for (let i = 0; i < trials; i++) {
    const kind = i % 2 === 0 ? 'to' : 'rollback'
    const full = kind === 'to' ? toMs : rollbackMs
    // Half uniform over the whole command, half over its last 60% (the write phase).
    const ms = Math.round(rand() < 0.5 ? rand() * full * 1.05 : full * (0.4 + 0.65 * rand()))
    const work = path.join(base, `w${i}`)
    await cp(kind === 'to' ? pristine : migrated, work, { recursive: true })
    const killed = await killedAt(['--agents-root', work, ...(kind === 'to' ? ['--to', 'v2'] : ['--rollback', snapshot])], ms)
    run(['--agents-root', work, '--status'])
    if (
      await lstat(path.join(work, '.migration.lock')).then(
        () => true,
        () => false,
      )
    )
      staleLocks++
    const now = await capture(work)
    const at = now === pre ? 'pre' : now === post ? 'post' : 'mixed'
    const s = tally[kind]
    s.trials++
    if (killed) s.killed++
    s[at]++
    if (at === 'mixed') console.log(`MIXED: trial ${i} (${kind}, killed after ${ms} ms) kept at ${work}`)
    else await rm(work, { recursive: true, force: true })
    if ((i + 1) % 50 === 0) console.log(`${i + 1}/${trials} trials…`)
  }
  for (const [kind, s] of Object.entries(tally)) {
    console.log(`--${kind}: trials ${s.trials}, killed mid-run ${s.killed}, ended before ${s.pre}, ended after ${s.post}, mixed ${s.mixed}`)
  }
  const mixed = tally.to.mixed + tally.rollback.mixed
  console.log(
    `total: trials ${tally.to.trials + tally.rollback.trials}, mixed states ${mixed} (stale vault locks left by kills before the journal: ${staleLocks})`,
  )
  process.exitCode = mixed === 0 ? 0 : 1
} finally {
  if (process.exitCode !== 1) await rm(base, { recursive: true, force: true })
}
