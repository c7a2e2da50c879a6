import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateVault } from '../helpers/gen-vault.js'
import { fixturesDir } from '../helpers/make-vault.js'
import { binPath } from '../helpers/run-cli.js'

// Agent-like writers run throughout a --to and a --rollback on a 5,000-unit vault:
// one takes <agent>/.lock with flock(1) for every write, like the atomic-agents
// runtime; one takes no lock. Each creates units and appends to units (its own and
// existing ones), and logs a unique marker after each write completes. Whatever the
// engine decides (migrate, or refuse because a unit changed under it), every marker
// logged as done must be in its file at the end.

const UNITS = 5000
const WRITER = `#!/bin/sh
# usage: writer.sh ROOT AGENT MODE(flock|none) LOG STOPFILE
root=$1; agent=$2; mode=$3; log=$4; stop=$5; n=0
dir="$root/$agent/memory/live"; mkdir -p "$dir"
existing=$(ls "$root/$agent/memory/b0" | head -40)
write() {
  if [ "$mode" = flock ]; then flock "$root/$agent/.lock" sh -c "$1"; else sh -c "$1"; fi
}
while [ ! -e "$stop" ]; do
  n=$((n+1)); m="live-write $mode $n"
  case $((n % 4)) in
    0) f="$dir/user_live_$n.md"
       write "printf -- '---\\nschema_version: 1\\nname: live $n\\ndescription: written by a live agent\\ntype: user\\ncaptured: 2026-05-01\\nlast_seen: 2026-05-01\\nsources:\\n  - live\\nconfidence: low\\n---\\n$m\\n' > '$f'" ;;
    1|2) k=$(( (n / 4) * 4 )); [ $k -eq 0 ] && continue; f="$dir/user_live_$k.md"
       write "printf '%s\\n' '$m' >> '$f'" ;;
    3) f="$root/$agent/memory/b0/$(echo "$existing" | sed -n "$(( (n / 4) % 40 + 1 ))p")"
       write "printf '%s\\n' '$m' >> '$f'" ;;
  esac
  printf '%s\\t%s\\n' "$f" "$m" >> "$log"
done
`

let base: string
afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true })
})

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [binPath, ...args], { env: { ...process.env, NO_COLOR: '1' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

async function lostWrites(logs: string[]): Promise<{ reported: number; lost: string[] }> {
  let reported = 0
  const lost: string[] = []
  for (const log of logs) {
    const lines = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean)
    for (const line of lines) {
      const [file, marker] = line.split('\t') as [string, string]
      reported++
      const text = await readFile(file, 'utf8').catch(() => '')
      if (!text.split(/\r?\n/).includes(marker)) lost.push(`${file}: ${marker}`)
    }
  }
  return { reported, lost }
}

describe(`agent writers during --to and --rollback on ${UNITS} units`, () => {
  it('every write a writer reported as done is on disk at the end, with and without the agent lock', async () => {
    base = await mkdtemp(path.join(tmpdir(), 'aas-live-'))
    const root = path.join(base, 'vault')
    await mkdir(path.join(root, '_migrations'), { recursive: true })
    await generateVault(root, { units: UNITS, seed: 3, bodyBytes: 300 })
    await cp(path.join(fixturesDir, 'migrations', 'v1_to_v2.mjs'), path.join(root, '_migrations', 'v1_to_v2.mjs'))
    await writeFile(path.join(root, 'caldwell', '.lock'), '')
    const writerSh = path.join(base, 'writer.sh')
    await writeFile(writerSh, WRITER, { mode: 0o755 })
    const logs = [path.join(base, 'flock.log'), path.join(base, 'none.log')]
    const stop = path.join(base, 'stop')
    const writers: ChildProcess[] = [
      spawn('sh', [writerSh, root, 'caldwell', 'flock', logs[0]!, stop], { stdio: 'ignore' }),
      spawn('sh', [writerSh, root, 'scout', 'none', logs[1]!, stop], { stdio: 'ignore' }),
    ]
    const outcomes: string[] = []
    try {
      const to = await runCli(['--agents-root', root, '--to', 'v2', '--json', '--lock-timeout', '60'])
      if (!to.stdout.trim()) throw new Error(`--to printed nothing (exit ${to.code}): ${to.stderr.slice(-2000)}`)
      const toDoc = JSON.parse(to.stdout)
      outcomes.push(`--to: ${toDoc.ok ? 'ok' : toDoc.error.code}`)
      // A refusal is fine (a unit changed under the engine); a failure of another kind is not.
      expect(toDoc.ok || ['CONCURRENT_CHANGE', 'LOCKED'].includes(toDoc.error.code), to.stdout.slice(0, 3000)).toBe(true)
      const snapshot = toDoc.result.snapshot?.name as string
      expect(snapshot).toBeTruthy()
      const rb = await runCli(['--agents-root', root, '--rollback', snapshot, '--json', '--lock-timeout', '60'])
      const rbDoc = JSON.parse(rb.stdout)
      outcomes.push(`--rollback: ${rbDoc.ok ? 'ok' : rbDoc.error.code}`)
      expect(rbDoc.ok || ['CONCURRENT_CHANGE', 'LOCKED', 'ROLLBACK_FOREIGN_CHANGES'].includes(rbDoc.error.code), rb.stdout.slice(0, 3000)).toBe(true)
    } finally {
      await writeFile(stop, '')
      await Promise.all(writers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.on('exit', r)))))
    }
    const status = spawnSync(process.execPath, [binPath, '--agents-root', root, '--status', '--json'], { encoding: 'utf8' })
    expect(status.status, status.stderr).toBe(0)
    const { reported, lost } = await lostWrites(logs)
    console.log(`live writers: ${reported} writes reported done, ${lost.length} lost; ${outcomes.join(', ')}`)
    expect(reported).toBeGreaterThan(20)
    expect(lost).toEqual([])
  }, 600_000)
})
