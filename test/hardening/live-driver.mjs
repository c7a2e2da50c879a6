// Runs one --to or --rollback through the built library (dist/) and reports, as one
// JSON document on stdout, its outcome and a timeline of the engine's events in
// microseconds since the epoch (the clock the writers log with, bash $EPOCHREALTIME).
// It can open gates (create files) when an event happens, so the writers of
// live-agents.test.ts start a kind of write at a known point of the command.
//
// usage: node live-driver.mjs SPEC_JSON
//   spec: { command: 'to' | 'rollback', root, target?, snapshot?, force?, lockTimeoutMs?,
//           gates?: { [event]: file } }
//   events: 'snapshot' (the run's snapshot taken), 'safety' (a rollback's safety
//   snapshot taken), 'phase:<name>' (a phase starts), 'writing' (the first live path
//   of the write phase is done)
import { writeFileSync } from 'node:fs'
import { migrate, rollback } from '../../dist/index.js'

const spec = JSON.parse(process.argv[2])
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000)
const timeline = { start: nowUs() }
const mark = (name) => {
  if (timeline[name] !== undefined) return
  timeline[name] = nowUs()
  const gate = spec.gates?.[name]
  if (gate) writeFileSync(gate, '')
}

const onEvent = (e) => {
  if (e.type === 'snapshot') mark(e.purpose === 'safety' ? 'safety' : 'snapshot')
  else if (e.type === 'phase') mark(`phase:${e.phase}`)
  else if (e.type === 'progress' && (e.phase === 'fast-forward' || e.phase === 'rollback')) {
    mark('writing')
    if (e.done === e.total) mark('written')
  }
}

const common = { agentsRoot: spec.root, env: {}, lockTimeoutMs: spec.lockTimeoutMs ?? 60_000, onEvent }
const result =
  spec.command === 'to' ? await migrate({ ...common, target: spec.target }) : await rollback({ ...common, snapshot: spec.snapshot, force: spec.force ?? false })
timeline.end = nowUs()

const error = result.error ? { code: result.error.code, message: result.error.message, data: result.error.data } : null
process.stdout.write(
  JSON.stringify({
    ok: result.ok,
    error,
    snapshot: result.snapshot?.name ?? null,
    safety: result.safety?.name ?? null,
    changed: result.changed,
    timeline,
  }) + '\n',
)
