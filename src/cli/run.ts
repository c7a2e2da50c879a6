import { AasError } from '../errors.js'
import { status } from '../engine/status.js'
import type { CliIo } from './io.js'
import { parseArgs, type CliRequest } from './program.js'
import { renderErrorJson, renderErrorText, toAasError } from './render/error.js'
import { renderJson } from './render/json.js'
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
