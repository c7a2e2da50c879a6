import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync, readFileSync } from 'node:fs'
import { cp, mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixturesDir, repoRoot } from '../helpers/make-vault.js'
import { binPath } from '../helpers/run-cli.js'

// The whole CLI on a vault with a 300 MB file under raw/: `--to v2` snapshots it,
// and `--rollback --force` after the file was replaced restores it through the write
// phase (streamed from the store into a temp file, then linked in). The peak RSS of
// each command (GNU time: the largest of the process and its git children; without
// GNU time, the Node process) stays far
// below the file size, and the restored file is byte-identical.

const SIZE = 300 * 1024 * 1024
const RSS_LIMIT_KB = 200 * 1024
const RAW = 'alice/raw/session-recording.bin'
const NOTE = 'alice/memory/user_household.md'

async function writeRandom(file: string, size: number): Promise<string> {
  const hash = createHash('sha1')
  const fh = await open(file, 'w')
  try {
    for (let done = 0; done < size; done += 1 << 20) {
      const chunk = randomBytes(Math.min(1 << 20, size - done))
      hash.update(chunk)
      await fh.write(chunk)
    }
  } finally {
    await fh.close()
  }
  return hash.digest('hex')
}

async function sha1File(file: string): Promise<string> {
  const hash = createHash('sha1')
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

const HAS_GNU_TIME = existsSync('/usr/bin/time')
const RSS_WRAPPER = path.join(repoRoot, 'bench', 'rss-wrapper.mjs')

// Runs the CLI under GNU time (else the bench's wrapper, which sees the Node process
// only); returns the JSON document and the peak RSS in KB.
function runMeasured(
  args: string[],
  rssFile: string,
): { doc: { ok: boolean; error?: { code: string; message: string } } & Record<string, unknown>; rssKb: number; seconds: number } {
  const started = Date.now()
  const cli = [binPath, ...args, '--json']
  const [cmd, argv] = HAS_GNU_TIME ? ['/usr/bin/time', ['-f', 'MAX_RSS_KB=%M', process.execPath, ...cli]] : [process.execPath, [RSS_WRAPPER, ...cli]]
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', AAS_BENCH_RSS_FILE: rssFile }, maxBuffer: 64 << 20 })
  const rss = HAS_GNU_TIME ? /MAX_RSS_KB=(\d+)/.exec(r.stderr)?.[1] : existsSync(rssFile) ? readFileSync(rssFile, 'utf8').trim() : undefined
  if (!r.stdout.trim() || rss === undefined) throw new Error(`aas-migrate ${args.join(' ')} (exit ${r.status}): ${r.stderr.slice(-2000)}`)
  return { doc: JSON.parse(r.stdout), rssKb: Number(rss), seconds: (Date.now() - started) / 1000 }
}

describe('a 300 MB file under raw/ through --to and --rollback', () => {
  let base: string
  let root: string
  let original: string

  beforeAll(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'aas-bigcli-'))
    root = path.join(base, 'vault')
    await mkdir(path.join(root, path.dirname(RAW)), { recursive: true })
    await mkdir(path.join(root, path.dirname(NOTE)), { recursive: true })
    await mkdir(path.join(root, '_migrations'), { recursive: true })
    await cp(path.join(fixturesDir, 'vault-v1', 'caldwell', 'memory', 'user_household.md'), path.join(root, NOTE))
    await cp(path.join(fixturesDir, 'migrations', 'v1_to_v2.mjs'), path.join(root, '_migrations', 'v1_to_v2.mjs'))
    original = await writeRandom(path.join(root, RAW), SIZE)
  }, 180_000)

  afterAll(async () => {
    if (base) await rm(base, { recursive: true, force: true })
  })

  it('when the file is snapshotted by --to and restored by --rollback then each command stays under 200 MB RSS and the bytes are identical', async () => {
    const to = runMeasured(['--agents-root', root, '--to', 'v2'], path.join(base, 'rss-to'))
    console.log(`--to v2 with a 300 MB raw file: ${to.seconds} s, peak RSS ${Math.round(to.rssKb / 1024)} MB`)
    expect(to.doc.ok, JSON.stringify(to.doc.error)).toBe(true)
    expect(to.rssKb).toBeLessThan(RSS_LIMIT_KB)
    expect(await readFile(path.join(root, NOTE), 'utf8')).toMatch(/^schema_version: 2$/m)
    const snapshot = (to.doc.result as { snapshot: { name: string } }).snapshot.name

    // Someone replaces the big file after the run: the rollback must write 300 MB back.
    const replaced = await writeRandom(path.join(root, RAW), 1 << 20)
    expect(replaced).not.toBe(original)
    const rb = runMeasured(['--agents-root', root, '--rollback', snapshot, '--force'], path.join(base, 'rss-rollback'))
    console.log(`--rollback --force restoring the 300 MB raw file: ${rb.seconds} s, peak RSS ${Math.round(rb.rssKb / 1024)} MB`)
    expect(rb.doc.ok, JSON.stringify(rb.doc.error)).toBe(true)
    expect(rb.rssKb).toBeLessThan(RSS_LIMIT_KB)
    expect((await stat(path.join(root, RAW))).size).toBe(SIZE)
    expect(await sha1File(path.join(root, RAW))).toBe(original)
    expect(await readFile(path.join(root, NOTE), 'utf8')).toMatch(/^schema_version: 1$/m)
  }, 600_000)
})
