import { AasError, asAasError } from '../errors.js'
import {
  apply,
  breakLease,
  doctor,
  exportSnapshot,
  fetchSnapshots,
  importSnapshot,
  listPreviews,
  locateSnapshots,
  migrate,
  recordedRun,
  pruneSnapshots,
  pushSnapshots,
  rollback,
  setRemote,
  status,
  unsetRemote,
  type MigrateOptions,
} from '../api.js'
import type { ApplyPreviewResult } from '../commands/apply.js'
import type { MigrateResult } from '../commands/migrate/migrate.js'
import type { PushReport } from '../commands/remote-sync.js'
import type { EngineEvent } from '../commands/session.js'
import { resolveAgentsRoot } from '../vault/agents-root.js'
import type { CliIo } from './io.js'
import { parseArgs, type CliAction, type CliRequest } from './program.js'
import { renderErrorJson, renderErrorText } from './render/error.js'
import { errorJson, renderJson } from './render/json.js'
import { makePaint, type Paint } from './render/paint.js'
import type { ReportRun } from './render/report.js'
import { makeProgress, silentProgress, type ProgressRenderer } from './render/progress.js'
import { renderStatusText } from './render/status.js'

// The --json `command` of each action.
const COMMAND: Record<CliRequest['action']['kind'], string> = {
  status: 'status',
  migrate: 'migrate',
  apply: 'apply',
  'list-previews': 'list-previews',
  'run-report': 'run-report',
  'list-snapshots': 'list-snapshots',
  rollback: 'rollback',
  'export-snapshot': 'export-snapshot',
  'import-snapshot': 'import-snapshot',
  doctor: 'doctor',
  'new-script': 'new-script',
  'push-snapshots': 'push-snapshots',
  'fetch-snapshots': 'fetch-snapshots',
  'prune-snapshots': 'prune-snapshots',
  'break-lease': 'break-lease',
  'unset-remote': 'unset-remote',
}

function commandOf(req: CliRequest): string {
  return req.action.kind === 'migrate' && req.action.dryRun ? 'dry-run' : COMMAND[req.action.kind]
}

// Progress only where a person watches: stderr a TTY, no --no-progress, no --json.
function progressFor(req: CliRequest, io: CliIo): ProgressRenderer {
  if (!req.progress || req.json || !io.stderrIsTTY) return silentProgress
  const delay = Number(io.env.AAS_PROGRESS_DELAY_MS)
  return makeProgress({ write: io.stderr, ...(Number.isFinite(delay) && io.env.AAS_PROGRESS_DELAY_MS !== '' ? { delayMs: delay } : {}) })
}

// Flags → library call → render → exit code. Never calls process.exit (main.ts does).
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(argv, io.env)
  const stderrPaint = makePaint(!argv.includes('--no-color') && !(io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '') && io.stderrIsTTY)
  if (parsed.kind === 'exit') {
    if (parsed.json && parsed.error) {
      io.stdout(renderErrorJson(parsed.error))
      io.stderr(renderErrorText(parsed.error, stderrPaint))
    } else if (parsed.json && parsed.version) {
      io.stdout(renderJson('version', { version: parsed.version }))
    } else {
      io.stdout(parsed.stdout)
      io.stderr(parsed.error ? `${renderErrorText(parsed.error, stderrPaint).split('\n')[0]}\nRun 'aas-migrate --help' for usage.\n` : parsed.stderr)
    }
    return parsed.code
  }
  const req = parsed.request
  const progress = progressFor(req, io)
  const paint = { out: makePaint(req.color && io.stdoutIsTTY), err: makePaint(req.color && io.stderrIsTTY) }
  try {
    return await dispatch(req, io, progress, paint)
  } catch (err) {
    progress.finish()
    const e = asAasError(err)
    if (req.json) io.stdout(renderErrorJson(e, commandOf(req)))
    io.stderr(renderErrorText(e, paint.err))
    return e.code === 'USAGE' ? 2 : 1
  }
}

// The migrate document: the result without its AasError objects and file contents.
function migrateJson(r: MigrateResult): Record<string, unknown> {
  const { diff, error: _error, errors, ...rest } = r
  return {
    result: { ...rest, diff: diff.map((d) => ({ path: d.path, oldOid: d.oldOid, newOid: d.newOid, mode: d.newMode })) },
    errors: errors.map(errorJson),
  }
}

function migrateOptions(
  req: CliRequest,
  io: CliIo,
  action: Extract<CliAction, { kind: 'migrate' }>,
  onEvent: (event: EngineEvent) => void,
  paint: Paint,
): MigrateOptions {
  return {
    agentsRoot: req.agentsRoot,
    env: io.env,
    target: action.target,
    dryRun: action.dryRun,
    commit: action.commit,
    lockTimeoutMs: req.lockTimeoutMs,
    onEvent,
    python: req.python,
    // The diff a dry run prints, rendered by the chain's workers while they run: not for
    // --stat, a --report (which reads the contents) or --json.
    patches: action.dryRun && !action.stat && !action.report && !req.json ? { color: paint.enabled } : undefined,
  }
}

async function dispatch(req: CliRequest, io: CliIo, progress: ProgressRenderer, paint: { out: Paint; err: Paint }): Promise<number> {
  const action = req.action
  const command = commandOf(req)
  await remoteFlags(req, io)
  const { onEvent, pushDoc } = pushRecorder(eventPrinter(req, io, paint, progress, action.kind === 'migrate' && action.dryRun))
  switch (action.kind) {
    case 'status': {
      const result = await status({
        agentsRoot: req.agentsRoot,
        env: io.env,
        python: req.python,
        onEvent: eventPrinter(req, io, paint, progress, true),
        onProgress: (done) => progress.enumerate(done),
      })
      progress.finish()
      io.stdout(req.json ? renderJson(command, { status: result }) : renderStatusText(result, paint.out))
      return 0
    }
    case 'migrate': {
      const result = await migrate(migrateOptions(req, io, action, onEvent, paint.out))
      progress.finish()
      // Loaded here: the diff renderer brings the diff engine, which other commands do not need.
      const { renderMigrateSummary, writeDryRun } = await import('./render/migrate.js')
      if (req.json) io.stdout(renderJson(command, { ...migrateJson(result), ...pushDoc() }, result.error))
      else if (action.dryRun) {
        await writeDryRun(result, { stat: action.stat, paint: paint.out, write: io.stdout })
        io.stderr(renderMigrateSummary(result, paint.err))
      } else {
        io.stdout(renderMigrateSummary(result, paint.out))
      }
      if (!req.json) io.stderr((await import('./render/previews.js')).renderPruned(result.prunedPreviews))
      for (const e of result.errors) io.stderr(renderErrorText(e, paint.err))
      const reported =
        action.report === undefined ? true : await reportOf((await import('./render/report.js')).reportRunOf(result), action.report, action.open, io, paint.err)
      return result.ok && reported ? 0 : 1
    }
    case 'run-report': {
      const run = await recordedRun({ agentsRoot: req.agentsRoot, env: io.env, run: action.run })
      const r = await (await import('./render/report.js')).writeReport({ ...run, validation: null }, action.report)
      await announceReport(r, action.open, io)
      if (req.json) io.stdout(renderJson(command, { report: { ...r, runId: run.runId, ref: run.result.ref, patterns: run.patterns.length } }))
      return 0
    }
    case 'rollback': {
      const result = await rollback({
        agentsRoot: req.agentsRoot,
        env: io.env,
        snapshot: action.snapshot,
        force: action.force,
        commit: action.commit,
        lockTimeoutMs: req.lockTimeoutMs,
        onEvent,
      })
      progress.finish()
      const { error, errors, ...rest } = result
      if (req.json) io.stdout(renderJson(command, { result: rest, errors: errors.map(errorJson), ...pushDoc() }, error))
      else io.stdout((await import('./render/snapshots.js')).renderRollbackText(result))
      for (const e of errors) io.stderr(renderErrorText(e, paint.err))
      return result.ok ? 0 : 1
    }
    case 'apply': {
      const result = await apply({
        agentsRoot: req.agentsRoot,
        env: io.env,
        preview: action.preview,
        commit: action.commit,
        lockTimeoutMs: req.lockTimeoutMs,
        onEvent,
      })
      progress.finish()
      const { error, errors, ...rest } = result
      if (req.json) io.stdout(renderJson(command, { result: rest, errors: errors.map(errorJson) }, error))
      else io.stdout(await appliedText(result))
      for (const e of errors) io.stderr(renderErrorText(e, paint.err))
      return result.ok ? 0 : 1
    }
    case 'list-previews': {
      const list = await listPreviews({ agentsRoot: req.agentsRoot, env: io.env })
      io.stdout(req.json ? renderJson(command, { previews: list }) : (await import('./render/previews.js')).renderPreviewList(list))
      return 0
    }
    case 'list-snapshots':
    case 'push-snapshots':
    case 'fetch-snapshots':
    case 'prune-snapshots':
    case 'break-lease':
    case 'unset-remote':
      return dispatchSnapshotCommand(req, action, io, paint, command)
    case 'export-snapshot': {
      const r = await exportSnapshot({
        agentsRoot: req.agentsRoot,
        env: io.env,
        snapshot: action.snapshot,
        ...(action.out === undefined ? {} : { out: action.out }),
      })
      io.stdout(req.json ? renderJson(command, { export: r }) : `exported ${r.name} (${r.files} files) to ${r.file}\n`)
      return 0
    }
    case 'import-snapshot': {
      const r = await importSnapshot({ agentsRoot: req.agentsRoot, env: io.env, file: action.file })
      io.stdout(
        req.json
          ? renderJson(command, { import: r })
          : `imported ${r.name} (${r.files} files) as ${r.ref}${r.skipped.length > 0 ? `; ${r.skipped.length} members outside the snapshot scope skipped` : ''}\n`,
      )
      return 0
    }
    case 'doctor': {
      const r = await doctor({ agentsRoot: req.agentsRoot, env: io.env, python: req.python })
      const failed = r.checks.filter((c) => !c.ok)
      const error = r.ok
        ? null
        : new AasError('DOCTOR_UNHEALTHY', `${failed.length} of ${r.checks.length} checks failed: ${failed.map((c) => c.id).join(', ')}.`, {
            hint: 'Run the fix commands printed under each failed check, then run --doctor again.',
            data: { failed: failed.map((c) => c.id) },
          })
      io.stdout(req.json ? renderJson(command, { doctor: r }, error) : (await import('./render/doctor.js')).renderDoctorText(r, paint.out))
      if (error) io.stderr(renderErrorText(error, paint.err))
      return r.ok ? 0 : 1
    }
    case 'new-script': {
      const root = await resolveAgentsRoot({ flag: req.agentsRoot, env: io.env })
      const r = await (await import('./new-script.js')).writeNewScript({ agentsRoot: root.path, from: action.from, lang: action.lang })
      io.stdout(
        req.json
          ? renderJson(command, { newScript: r })
          : `wrote ${r.script} (v${r.from} -> v${r.to}) and ${r.test}\nnext: edit ${r.script}, run its test with \`npx tsx --test ${r.test}\`, then preview with \`aas-migrate --to v${r.to} --dry-run\`\n`,
      )
      return 0
    }
  }
}

// What --apply prints: the preview applied, and the previews it pruned.
async function appliedText(result: ApplyPreviewResult): Promise<string> {
  const { renderApplyText, renderPruned } = await import('./render/previews.js')
  return renderApplyText(result) + renderPruned(result.prunedPreviews)
}

// --report (and --open) after a dry run: where the report is, on stderr. A run that
// stopped before its preview has nothing to show, and says so.
async function reportOf(result: ReportRun, file: string, open: boolean, io: CliIo, paint: Paint): Promise<boolean> {
  if (result.result === null) {
    io.stderr(`no report: the dry run stopped before its preview (${file} not written)\n`)
    return true
  }
  try {
    await announceReport(await (await import('./render/report.js')).writeReport(result, file), open, io)
    return true
  } catch (err) {
    io.stderr(renderErrorText(asAasError(err), paint))
    return false
  }
}

async function announceReport(r: { file: string; files: number; bytes: number }, open: boolean, io: CliIo): Promise<void> {
  io.stderr(`report: ${r.file} (${r.files} changed file${r.files === 1 ? '' : 's'}, ${(r.bytes / 1024).toFixed(0)} KB)\n`)
  if (!open) return
  const opener = (await import('./render/report.js')).openReport(r.file, io.env)
  io.stderr(opener ? `opened with ${opener}\n` : `no display to open it on: open ${r.file} in a browser\n`)
}

// --remote REMOTE or --unset-remote with a command: aas.remote is set or removed first.
async function remoteFlags(req: CliRequest, io: CliIo): Promise<void> {
  if (req.remote !== undefined) await storeRemote(req, io)
  if (req.unsetRemote && req.action.kind !== 'unset-remote') io.stderr(describeUnset(await unsetRemote({ agentsRoot: req.agentsRoot, env: io.env })))
}

// --remote REMOTE, on any command: aas.remote is set first.
async function storeRemote(req: CliRequest, io: CliIo): Promise<void> {
  const set = await setRemote({ agentsRoot: req.agentsRoot, env: io.env, remote: req.remote as string })
  const { displayRemote } = await import('../git/remote.js')
  io.stderr(`aas.remote = ${displayRemote(set.remote)} (${set.file})\n`)
}

// aas.remote set: the push after a run, kept for the --json document (`push`).
function pushRecorder(printEvent: (e: EngineEvent) => void): { onEvent: (e: EngineEvent) => void; pushDoc: () => Record<string, unknown> } {
  let push: PushReport | null = null
  return {
    onEvent: (e) => {
      if (e.type === 'push') push = e.push
      printEvent(e)
    },
    pushDoc: () => (push ? { push: { ...push, error: push.error && errorJson(push.error) } } : {}),
  }
}

// The snapshot commands that may talk to a remote: list, push, fetch, prune, the lease,
// and --unset-remote alone.
async function dispatchSnapshotCommand(
  req: CliRequest,
  action: Extract<CliRequest['action'], { kind: 'list-snapshots' | 'push-snapshots' | 'fetch-snapshots' | 'prune-snapshots' | 'break-lease' | 'unset-remote' }>,
  io: CliIo,
  paint: { out: Paint; err: Paint },
  command: string,
): Promise<number> {
  switch (action.kind) {
    case 'list-snapshots': {
      const { snapshots, remote } = await locateSnapshots({ agentsRoot: req.agentsRoot, env: io.env })
      const remoteDoc = remote && { name: remote.name, reachable: remote.reachable, error: remote.error && errorJson(remote.error) }
      io.stdout(
        req.json
          ? renderJson(command, { snapshots, remote: remoteDoc })
          : (await import('./render/snapshots.js')).renderSnapshotList(snapshots, remote?.reachable ? remote.name : null),
      )
      if (remote?.error) io.stderr(`${paint.err.warn('warning')}: ${remote.error.message} Only the local snapshots are listed.\n`)
      return 0
    }
    case 'push-snapshots':
    case 'fetch-snapshots': {
      const options = { agentsRoot: req.agentsRoot, env: io.env }
      const r =
        action.kind === 'push-snapshots'
          ? await pushSnapshots({ ...options, remote: action.remote })
          : await fetchSnapshots({ ...options, remote: action.remote })
      const { error, ...rest } = r
      io.stdout(
        req.json
          ? renderJson(command, { transfer: rest }, error)
          : (await import('./render/remote.js')).renderTransferText(action.kind === 'push-snapshots' ? 'push' : 'fetch', r),
      )
      if (error) io.stderr(renderErrorText(error, paint.err))
      return r.ok ? 0 : 1
    }
    case 'prune-snapshots': {
      const r = await pruneSnapshots({
        agentsRoot: req.agentsRoot,
        env: io.env,
        keepLast: action.keepLast,
        keepWithinSeconds: action.keepWithinSeconds,
        remote: req.remote,
      })
      const { error, ...rest } = r
      io.stdout(req.json ? renderJson(command, { prune: rest }, error) : (await import('./render/remote.js')).renderPruneText(r))
      if (error) io.stderr(renderErrorText(error, paint.err))
      return r.ok ? 0 : 1
    }
    case 'break-lease': {
      const r = await breakLease({ agentsRoot: req.agentsRoot, env: io.env, remote: req.remote })
      const { describeHolder } = await import('../snapshots/lease.js')
      const text = r.broken ? `removed the lease on ${r.remote}, held by ${describeHolder(r.holder)}\n` : `no lease on ${r.remote}: nothing to remove\n`
      io.stdout(req.json ? renderJson(command, { lease: r }) : text)
      return 0
    }
    case 'unset-remote': {
      const r = await unsetRemote({ agentsRoot: req.agentsRoot, env: io.env })
      io.stdout(req.json ? renderJson(command, { unset: { setting: 'aas.remote', ...r } }) : describeUnset(r))
      return 0
    }
  }
}

// --unset-remote: what was removed, or that there was nothing to remove.
function describeUnset(r: { removed: string | null; file: string }): string {
  return r.removed === null ? `aas.remote was not set (${r.file}): nothing to remove\n` : `aas.remote ${r.removed} removed (${r.file})\n`
}

// Announcements that must appear while the command runs (the snapshot name before any
// live write, a recovery), and the progress lines.
function eventPrinter(
  req: CliRequest,
  io: CliIo,
  paints: { out: Paint; err: Paint },
  progress: ProgressRenderer,
  quietStdout = false,
): (e: EngineEvent) => void {
  // stdout carries only the patch (dry run) or the JSON document.
  const toStderr = req.json || quietStdout
  const say = toStderr ? io.stderr : io.stdout
  const paint = toStderr ? paints.err : paints.out
  return (e) => {
    progress.onEvent(e)
    if (e.type === 'snapshot' && e.ref === null) say(`preview base: ${e.commit.slice(0, 12)} (${e.files} files; a dry run keeps no snapshot ref)\n`)
    else if (e.type === 'snapshot') say(`${e.purpose === 'safety' ? 'safety snapshot' : 'snapshot'}: ${paint.bold(e.name)} (${e.ref}, ${e.files} files)\n`)
    if (e.type === 'push' && e.push.ok) say(`pushed ${e.push.transferred} ref${e.push.transferred === 1 ? '' : 's'} to ${e.push.remote} (aas.remote)\n`)
    else if (e.type === 'push') {
      io.stderr(
        `${paints.err.warn('warning')}: the run is done, but its snapshots were not pushed to ${e.push.remote}: ${e.push.error?.message ?? 'unknown error'}\n  push them later with: aas-migrate --push-snapshots\n`,
      )
    }
    if (e.type === 'lease' && e.error) {
      io.stderr(
        `${paints.err.warn('warning')}: the lease on ${e.remote} was not given back: ${e.error.message}\n  once no run of this vault is in progress, remove it with: aas-migrate --break-lease\n`,
      )
    }
    if (e.type === 'recovered') {
      io.stderr(
        `${paints.err.warn('recovered')}: an interrupted ${e.recovery.kind} (run ${e.recovery.runId}) was undone; ${e.recovery.restored} path${e.recovery.restored === 1 ? '' : 's'} restored to the state before it\n`,
      )
    }
  }
}
