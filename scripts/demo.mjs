#!/usr/bin/env node
// The main job on the bundled sample vault, on a temporary copy:
// status → dry-run diff → migrate → status → list → rollback → status.
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bin = path.join(repo, 'dist', 'cli', 'main.js')
const keep = process.argv.includes('--keep')
const dir = mkdtempSync(path.join(tmpdir(), 'aas-demo-'))
const vault = path.join(dir, 'vault')
cpSync(path.join(repo, 'fixtures', 'vault-v1'), vault, { recursive: true, dereference: true })

function run(args, { expect = 0, capture = false } = {}) {
  console.log(`\n$ aas-migrate ${args.join(' ')}`)
  const r = spawnSync(process.execPath, [bin, '--agents-root', vault, ...args], {
    stdio: capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
    env: { ...process.env, ATOMIC_AGENTS_ROOT: '' },
  })
  if (capture) process.stdout.write(r.stdout)
  if (r.status !== expect) {
    console.error(`\ndemo failed: aas-migrate ${args.join(' ')} exited ${r.status}, expected ${expect}`)
    process.exit(1)
  }
  return r.stdout ?? ''
}

console.log(`sample vault copied to ${vault}`)
run(['--status'])
run(['--to', 'v3', '--dry-run'])
const migrated = run(['--to', 'v3'], { capture: true })
const snapshot = /roll back with: aas-migrate --rollback (\S+)/.exec(migrated)?.[1]
if (!snapshot) {
  console.error('demo failed: the migration did not print its snapshot')
  process.exit(1)
}
run(['--status'])
run(['--list-snapshots'])
run(['--rollback', snapshot])
run(['--status'])
if (keep) console.log(`\nvault kept at ${vault}`)
else rmSync(dir, { recursive: true, force: true })
console.log('\ndemo complete: status → dry-run diff → migrate → status → list → rollback → status')
