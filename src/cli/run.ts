import { AasError } from '../errors.js'
import { openStore } from '../git/open-store.js'
import { migrate } from '../engine/migrate.js'
import { rollback } from '../engine/rollback.js'
import { exportSnapshot, importSnapshot, listSnapshots } from '../engine/snapshots.js'
import { resolveAgentsRoot } from '../vault/agents-root.js'
import type { EngineEvent } from '../engine/session.js'
import { status } from '../engine/status.js'
import type { CliIo } from './io.js'
import { parseArgs, type CliRequest } from './program.js'
import { renderErrorJson, renderErrorText, toAasError } from './render/error.js'
import { renderJson } from './render/json.js'
import { renderDryRun, renderMigrateSummary } from './render/migrate.js'
import { makePaint, type Paint } from './render/paint.js'
import { renderRollbackText, renderSnapshotList } from './render/snapshots.js'
import { renderStatusText } from './render/status.js'

// Flags → library call → render → exit code. Never calls process.exit (main.ts does).
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(argv, io.env)
  if (parsed.kind === 'exit') {
    io.stdout(parsed.stdout)
    io.stderr(parsed.stderr)
    return parsed.code
  }
  const req = parsed.request
  try {
    return await dispatch(req, io)
  } catch (err) {
    const e = toAasError(err)
    if (req.json) io.stdout(renderErrorJson(e))
    io.stderr(renderErrorText(e))
    return e.code === 'USAGE' ? 2 : 1
  }
}

async function dispatch(req: CliRequest, io: CliIo): Promise<number> {
  const action = req.action
  switch (action.kind) {
    case 'status': {
      const result = await status({ agentsRoot: req.agentsRoot, env: io.env })
      io.stdout(req.json ? renderJson('status', { status: result }) : renderStatusText(result))
      return 0
    }
    case 'migrate': {
      const paint = makePaint(req.color && (action.dryRun ? io.stdoutIsTTY : io.stderrIsTTY))
      const result = await migrate({
        agentsRoot: req.agentsRoot,
        env: io.env,
        target: action.target,
        dryRun: action.dryRun,
        lockTimeoutMs: req.lockTimeoutMs,
        onEvent: eventPrinter(req, io, paint, action.dryRun),
      })
      if (req.json) {
        const { diff, error, errors, ...rest } = result
        io.stdout(renderJson(action.dryRun ? 'dry-run' : 'migrate', { result: { ...rest, diff: diff.map((d) => ({ path: d.path, oldOid: d.oldOid, newOid: d.newOid, mode: d.newMode })) }, ...(error ? { ok: false, error: error.toJSON(), errors: errors.map((e) => e.toJSON()) } : {}) }))
        return result.ok ? 0 : 1
      }
      if (action.dryRun) {
        io.stdout(renderDryRun(result, { stat: action.stat, paint }))
        io.stderr(renderMigrateSummary(result, paint))
      } else {
        io.stdout(renderMigrateSummary(result, paint))
      }
      for (const e of result.errors) io.stderr(renderErrorText(e))
      return result.ok ? 0 : 1
    }
    case 'rollback': {
      const paint = makePaint(req.color && io.stderrIsTTY)
      const result = await rollback({
        agentsRoot: req.agentsRoot,
        env: io.env,
        snapshot: action.snapshot,
        force: action.force,
        lockTimeoutMs: req.lockTimeoutMs,
        onEvent: eventPrinter(req, io, paint),
      })
      if (req.json) {
        const { error, ...rest } = result
        io.stdout(renderJson('rollback', { result: rest, ...(error ? { ok: false, error: error.toJSON() } : {}) }))
      } else {
        io.stdout(renderRollbackText(result))
      }
      if (result.error) io.stderr(renderErrorText(result.error))
      return result.ok ? 0 : 1
    }
    case 'list-snapshots': {
      const store = await openStore({ agentsRoot: (await resolveAgentsRoot({ flag: req.agentsRoot, env: io.env })).path, create: false })
      const list = await listSnapshots(store)
      io.stdout(req.json ? renderJson('list-snapshots', { snapshots: list }) : renderSnapshotList(list))
      return 0
    }
    case 'export-snapshot': {
      const store = await openStore({ agentsRoot: (await resolveAgentsRoot({ flag: req.agentsRoot, env: io.env })).path, create: false })
      const r = await exportSnapshot(store, action.snapshot, action.out === undefined ? {} : { out: action.out })
      io.stdout(req.json ? renderJson('export-snapshot', { export: r }) : `exported ${r.name} (${r.files} files) to ${r.file}\n`)
      return 0
    }
    case 'import-snapshot': {
      const store = await openStore({ agentsRoot: (await resolveAgentsRoot({ flag: req.agentsRoot, env: io.env })).path })
      const r = await importSnapshot(store, action.file)
      io.stdout(req.json ? renderJson('import-snapshot', { import: r }) : `imported ${r.name} (${r.files} files) as ${r.ref}${r.skipped.length > 0 ? `; ${r.skipped.length} members outside the snapshot scope skipped` : ''}\n`)
      return 0
    }
    default:
      throw new AasError('NOT_IMPLEMENTED', `${flagOf(action.kind)} is not implemented yet.`, {
        hint: 'Use --status for now; this command lands with the transaction engine.',
        data: { action: action.kind },
      })
  }
}

function flagOf(kind: CliRequest['action']['kind']): string {
  return kind === 'migrate' ? '--to' : `--${kind}`
}

// Announcements that must appear while the command runs (the snapshot name before any
// live write, a recovery); progress lines come later with the progress renderer.
function eventPrinter(req: CliRequest, io: CliIo, paint: Paint, quietStdout = false): (e: EngineEvent) => void {
  // stdout carries only the patch (dry run) or the JSON document.
  const say = req.json || quietStdout ? io.stderr : io.stdout
  return (e) => {
    if (e.type === 'snapshot') say(`${e.purpose === 'safety' ? 'safety snapshot' : 'snapshot'}: ${paint.bold(e.name)} (${e.ref}, ${e.files} files)\n`)
    if (e.type === 'recovered') {
      io.stderr(`${paint.warn('recovered')}: an interrupted ${e.recovery.kind} (run ${e.recovery.runId}) was undone; ${e.recovery.restored} path${e.recovery.restored === 1 ? '' : 's'} restored to the state before it\n`)
    }
  }
}
