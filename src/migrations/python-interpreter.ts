import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { AasError } from '../errors.js'
import type { ScriptFile } from './discover.js'

// Which Python runs the .py scripts, and whether it can: `--python PATH`, else
// $AAS_PYTHON, else the active virtualenv's python ($VIRTUAL_ENV/bin/python), else
// python3 on PATH. probePython() reports it for --status and --doctor; checkPython()
// refuses a run that needs it before anything is written.

export const DEFAULT_PYTHON = 'python3'
const MIN_VERSION: [number, number] = [3, 8]
const PROBE_TIMEOUT_MS = 20_000

export type PythonSource = 'flag' | 'AAS_PYTHON' | 'VIRTUAL_ENV' | 'PATH'

export interface PythonChoice {
  command: string // what is spawned
  source: PythonSource
}

export interface PythonProbe extends PythonChoice {
  ok: boolean // it runs, is recent enough and has PyYAML
  executable: string | null // sys.executable
  version: string | null // '3.11.7'
  yaml: string | null // PyYAML's version, null when missing
  libyaml: boolean // PyYAML's C loader (CSafeLoader) is there
  atomicAgents: string | null // where an installed atomic_agents package is; null: the bridge's stand-in is used
  error: AasError | null // why it cannot run .py scripts
}

export function choosePython({ flag, env = process.env }: { flag?: string | undefined; env?: NodeJS.ProcessEnv }): PythonChoice {
  if (flag) return { command: flag, source: 'flag' }
  if (env.AAS_PYTHON) return { command: env.AAS_PYTHON, source: 'AAS_PYTHON' }
  if (env.VIRTUAL_ENV) {
    const venv = path.join(env.VIRTUAL_ENV, 'bin', 'python')
    if (existsSync(venv)) return { command: venv, source: 'VIRTUAL_ENV' }
  }
  return { command: DEFAULT_PYTHON, source: 'PATH' }
}

const SOURCE_WORDS: Record<PythonSource, string> = { flag: '--python', AAS_PYTHON: '$AAS_PYTHON', VIRTUAL_ENV: 'the virtualenv in $VIRTUAL_ENV', PATH: 'PATH' }

// Where the interpreter choice came from, in words ('--python', '$AAS_PYTHON', …).
export function describePythonSource(source: PythonSource): string {
  return SOURCE_WORDS[source]
}

// Prints what the engine needs to know as one JSON line; with script paths, also
// compiles each (without running it) and reports the first syntax error of each.
const PROBE = `
import json, sys
out = {"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable, "yaml": None, "libyaml": False, "atomic_agents": None, "syntax": []}
try:
    import yaml
    out["yaml"] = getattr(yaml, "__version__", "?")
    out["libyaml"] = hasattr(yaml, "CSafeLoader")
except Exception:
    pass
try:
    import importlib.util
    spec = importlib.util.find_spec("atomic_agents")
    if spec is not None:
        out["atomic_agents"] = spec.origin or list(spec.submodule_search_locations or ["?"])[0]
except Exception:
    pass
for p in sys.argv[1:]:
    try:
        with open(p, "rb") as f:
            compile(f.read(), p, "exec", dont_inherit=True)
    except SyntaxError as e:
        out["syntax"].append({"path": p, "line": e.lineno, "column": e.offset, "message": "%s: %s" % (type(e).__name__, e.msg)})
    except Exception as e:
        out["syntax"].append({"path": p, "line": None, "column": None, "message": "%s: %s" % (type(e).__name__, e)})
print(json.dumps(out))
`

interface ProbeOutput {
  version: string
  executable: string
  yaml: string | null
  libyaml: boolean
  atomic_agents: string | null
  syntax: Array<{ path: string; line: number | null; column: number | null; message: string }>
}

function runProbe(command: string, scriptPaths: readonly string[]): Promise<{ out: ProbeOutput } | { failure: string; notFound: boolean }> {
  return new Promise((resolve) => {
    execFile(
      command,
      ['-B', '-c', PROBE, ...scriptPaths],
      { timeout: PROBE_TIMEOUT_MS, encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code
          const notFound = code === 'ENOENT' || code === 'EACCES'
          const reason = notFound
            ? code === 'ENOENT'
              ? 'not found'
              : 'not executable'
            : `${err.message.split('\n')[0]}${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`
          return resolve({ failure: reason, notFound })
        }
        try {
          resolve({ out: JSON.parse(stdout.trim().split('\n').pop() ?? '') as ProbeOutput })
        } catch {
          resolve({ failure: `it printed no answer to the probe (${stdout.trim().slice(0, 80) || 'nothing'})`, notFound: false })
        }
      },
    )
  })
}

// The interpreter that would run .py scripts: path, version, PyYAML, atomic_agents.
export async function probePython({ python, env = process.env }: { python?: string | undefined; env?: NodeJS.ProcessEnv } = {}): Promise<PythonProbe> {
  return (await probe(choosePython({ flag: python, env }), [])).probe
}

async function probe(choice: PythonChoice, scripts: readonly ScriptFile[]): Promise<{ probe: PythonProbe; syntax: ProbeOutput['syntax'] }> {
  const base = { ...choice, ok: false, executable: null, version: null, yaml: null, libyaml: false, atomicAgents: null }
  const files = scripts.map((s) => s.file)
  const r = await runProbe(
    choice.command,
    scripts.map((s) => s.path),
  )
  if ('failure' in r) return { probe: { ...base, error: pythonUnavailable({ ...choice, scripts: files, reason: r.failure }) }, syntax: [] }
  const o = r.out
  const found = { ...base, executable: o.executable, version: o.version, yaml: o.yaml, libyaml: o.libyaml, atomicAgents: o.atomic_agents }
  const [major = 0, minor = 0] = o.version.split('.').map(Number)
  if (major < MIN_VERSION[0] || (major === MIN_VERSION[0] && minor < MIN_VERSION[1])) {
    return {
      probe: {
        ...found,
        error: pythonUnavailable({ ...choice, scripts: files, reason: `it is Python ${o.version}; ${MIN_VERSION.join('.')} or later is needed` }),
      },
      syntax: [],
    }
  }
  if (o.yaml === null)
    return {
      probe: {
        ...found,
        error: pythonUnavailable({ ...choice, scripts: files, reason: `it (Python ${o.version}, ${o.executable}) has no PyYAML`, noYaml: true }),
      },
      syntax: [],
    }
  return { probe: { ...found, ok: true, error: null }, syntax: o.syntax }
}

// Before a run writes anything: when the chain has .py steps, the interpreter must run,
// have PyYAML, and every .py script must compile (a syntax error is refused with file:line).
export async function checkPython(scripts: readonly ScriptFile[], choice: PythonChoice): Promise<AasError | null> {
  const py = scripts.filter((s) => s.ext === 'py')
  if (py.length === 0) return null
  const r = await probe(choice, py)
  if (r.probe.error) return r.probe.error
  const first = r.syntax[0]
  if (!first) return null
  const script = py.find((s) => s.path === first.path) ?? (py[0] as ScriptFile)
  const where = `${script.file}${first.line ? `:${first.line}` : ''}${first.line && first.column ? `:${first.column}` : ''}`
  return new AasError('SCRIPT_LOAD_FAILED', `Migration script ${script.file} failed to load: ${where}: ${first.message}.`, {
    hint: `Fix the syntax at ${where} (\`${choice.command} -m py_compile ${script.path}\` shows it), or prefix its name with _ to ignore it. Nothing was written.`,
    data: {
      file: script.file,
      from: script.from,
      to: script.to,
      line: first.line,
      column: first.column,
      kind: 'syntax',
      others: r.syntax.slice(1).map((s) => s.path),
    },
  })
}

export function pythonUnavailable({
  command,
  source,
  scripts,
  reason,
  noYaml = false,
  stderr,
}: {
  command: string
  source?: PythonSource
  scripts: readonly string[]
  reason: string
  noYaml?: boolean
  stderr?: string
}): AasError {
  const from = source ? ` (from ${SOURCE_WORDS[source]})` : ''
  const needs = scripts.length === 0 ? '' : `; ${scripts.join(', ')} ${scripts.length === 1 ? 'needs' : 'need'} it`
  const nothing = scripts.length === 0 ? '' : ' Nothing was written.'
  const hint = noYaml
    ? `Install PyYAML for that interpreter: \`apt-get install python3-yaml\` (Debian, Ubuntu), or \`${command} -m pip install pyyaml\` in a virtualenv; or pass --python PATH (or set AAS_PYTHON) to an interpreter that has it.${nothing}`
    : `Install Python 3 with PyYAML (\`apt-get install python3 python3-yaml\`), or pass --python PATH (or set AAS_PYTHON) to the interpreter to use.${nothing}`
  return new AasError('PYTHON_UNAVAILABLE', `The Python interpreter ${command}${from} cannot run .py migration scripts: ${reason}${needs}.`, {
    hint,
    data: {
      python: command,
      ...(source ? { source } : {}),
      scripts: [...scripts],
      reason,
      ...(noYaml ? { missing: 'PyYAML' } : {}),
      ...(stderr ? { stderr } : {}),
    },
  })
}
