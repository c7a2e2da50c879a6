import path from 'node:path'
import { AasError } from '../errors.js'
import type { Migration } from './define.js'
import type { ScriptFile } from './discover.js'
import type { LoadedMigration, LoadOptions } from './load.js'
import { BridgeDied, PythonBridge, type BridgeLoadError } from './python-bridge.js'
import { DEFAULT_PYTHON, pythonUnavailable } from './python-interpreter.js'

// Loading .py scripts: one bridge for all of a worker's .py steps, each script imported
// into it as the Python runner imports it. A step's units then go to that bridge.

export interface PythonStep {
  bridge: PythonBridge
  step: number // the index the bridge knows this script by
  agentsRoot: string // unit_id = agentsRoot/unitId, the absolute path atomic-agents scripts see
  onUnit?: (unitId: string) => void // called as each unit starts (the sandbox's heartbeat)
}

export type PythonLoadResult = { results: Map<string, { loaded: LoadedMigration } | { error: AasError }>; bridge: PythonBridge | null }

// The chain never calls these for a .py step (apply.ts sends it to the bridge); they
// exist so a .py step is a Migration like the others (validation looks up its schema).
function placeholder(script: ScriptFile): Migration {
  const never = (): never => {
    throw new Error(`${script.file} runs through the Python bridge`)
  }
  return { from: script.from, to: script.to, appliesTo: never, migrate: never }
}

export async function loadPythonScripts(scripts: readonly ScriptFile[], { python = DEFAULT_PYTHON, memoryMb = 0 }: LoadOptions): Promise<PythonLoadResult> {
  const results: PythonLoadResult['results'] = new Map()
  let bridge: PythonBridge
  try {
    bridge = await PythonBridge.start({ python, memoryMb })
  } catch (err) {
    if (!(err instanceof BridgeDied)) throw err
    const error = pythonUnavailable({
      command: python,
      scripts: scripts.map((s) => s.file),
      reason: err.message,
      noYaml: /PyYAML/.test(err.stderrTail),
      stderr: err.stderrTail,
    })
    for (const s of scripts) results.set(s.file, { error })
    return { results, bridge: null }
  }
  let failures: BridgeLoadError[]
  try {
    failures = await bridge.load(scripts.map((s, step) => ({ step, path: s.path, file: s.file, from: s.from, to: s.to })))
  } catch (err) {
    if (!(err instanceof BridgeDied)) throw err
    bridge.close()
    const error = new AasError(
      'SCRIPT_LOAD_FAILED',
      `Loading ${scripts.map((s) => s.file).join(', ')} stopped the Python interpreter: ${err.message}${lastLine(err.stderrTail)}.`,
      {
        hint: `Run \`${python} ${scripts[0]?.path ?? ''}\` to see what the import does; nothing was written.`,
        data: { files: scripts.map((s) => s.file), reason: 'crash', stderr: err.stderrTail },
      },
    )
    for (const s of scripts) results.set(s.file, { error })
    return { results, bridge: null }
  }
  const byStep = new Map(failures.map((f) => [f.step, f]))
  scripts.forEach((script, step) => {
    const failure = byStep.get(step)
    if (failure) results.set(script.file, { error: loadError(script, failure, python) })
    else {
      const agentsRoot = path.dirname(path.dirname(script.path))
      results.set(script.file, { loaded: { ...script, migration: placeholder(script), python: { bridge, step, agentsRoot } } })
    }
  })
  return { results, bridge }
}

function lastLine(text: string): string {
  const line = text.trim().split('\n').pop()?.trim()
  return line ? ` (${line})` : ''
}

function loadError(script: ScriptFile, f: BridgeLoadError, python: string): AasError {
  const where = f.line ? `${script.file}:${f.line}` : script.file
  const data = { file: script.file, from: script.from, to: script.to, line: f.line, kind: f.kind, ...(f.traceback ? { traceback: f.traceback } : {}) }
  if (f.kind === 'invalid') {
    return new AasError('SCRIPT_INVALID', `Migration script ${script.file} is not a valid migration: ${f.problems.join('; ')}.`, {
      hint: `Define FROM_VERSION = ${script.from}, TO_VERSION = ${script.to}, applies_to(unit) and migrate(unit) in ${script.file}, as atomic-agents scripts do.`,
      data: { ...data, problems: f.problems },
    })
  }
  if (f.kind === 'syntax') {
    return new AasError('SCRIPT_LOAD_FAILED', `Migration script ${script.file} failed to load: ${where}: ${f.message}.`, {
      hint: `Fix the syntax at ${where} (\`${python} -m py_compile ${script.path}\` shows it), or prefix its name with _ to ignore it.`,
      data,
    })
  }
  return new AasError('SCRIPT_LOAD_FAILED', `Migration script ${script.file} failed to load: ${f.message}${f.line ? ` (at ${where})` : ''}.`, {
    hint: `Fix the error in ${script.file} (\`${python} ${script.path}\` shows the whole traceback), or prefix its name with _ to ignore it.`,
    data,
  })
}
