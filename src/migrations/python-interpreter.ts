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
  yaml: string | null // PyYAML's version, null when missing ('' when a light probe did not look: no atomic_agents)
  libyaml: boolean // PyYAML's C loader (CSafeLoader) is there
  atomicAgents: string | null // where an installed atomic_agents package is; null: the bridge's stand-in is used
  validators: AtomicValidators | null // that package's own validators; null when it is not installed
  error: AasError | null // why it cannot run .py scripts
}

// The installed atomic-agents' validators (atomic_agents._schema), as the probe found them.
export interface AtomicValidators {
  package: string | null // atomic_agents.__version__
  schemaVersion: number | null // CURRENT_SCHEMA_VERSION: the one version its validators accept
  note: boolean // validate_atomic_note_frontmatter exists
  wiki: boolean // validate_wiki_frontmatter exists
  error: string | null // why atomic_agents._schema cannot be imported
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
// compiles each (without running it) and reports the first syntax error of each. After
// --light, PyYAML is imported only when atomic_agents is installed (its validators run
// through it); else its version is '', not looked for.
const PROBE = `
import json, sys
out = {"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable, "yaml": None, "libyaml": False, "atomic_agents": None, "validators": None, "syntax": []}
args = sys.argv[1:]
light = args[:1] == ["--light"]
if light:
    args = args[1:]
try:
    import importlib.util
    spec = importlib.util.find_spec("atomic_agents")
    if spec is not None:
        out["atomic_agents"] = spec.origin or list(spec.submodule_search_locations or ["?"])[0]
except Exception:
    pass
if light and out["atomic_agents"] is None:
    out["yaml"] = ""
else:
    try:
        import yaml
        out["yaml"] = getattr(yaml, "__version__", "?")
        out["libyaml"] = hasattr(yaml, "CSafeLoader")
    except Exception:
        pass
if out["atomic_agents"] is not None:
    v = out["validators"] = {"package": None, "current": None, "note": False, "wiki": False, "error": None}
    try:
        import atomic_agents
        import atomic_agents._schema as schema
        version = getattr(atomic_agents, "__version__", None)
        v["package"] = version if isinstance(version, str) else None
        current = getattr(schema, "CURRENT_SCHEMA_VERSION", None)
        v["current"] = current if type(current) is int else None
        v["note"] = callable(getattr(schema, "validate_atomic_note_frontmatter", None))
        v["wiki"] = callable(getattr(schema, "validate_wiki_frontmatter", None))
    except BaseException as e:
        v["error"] = "%s: %s" % (type(e).__name__, e)
for p in args:
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
  validators: { package: string | null; current: number | null; note: boolean; wiki: boolean; error: string | null } | null
  syntax: Array<{ path: string; line: number | null; column: number | null; message: string }>
}

function runProbe(command: string, args: readonly string[], signal?: AbortSignal): Promise<{ out: ProbeOutput } | { failure: string; notFound: boolean }> {
  return new Promise((resolve) => {
    execFile(
      command,
      ['-B', '-c', PROBE, ...args],
      { timeout: PROBE_TIMEOUT_MS, encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, ...(signal ? { signal } : {}) },
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
// light: PyYAML is not looked for when atomic_agents is not installed (its version is
// then ''): enough to tell which validators a run would use, and through a version
// manager's shim the import was about a third of the probe's time.
export async function probePython({
  python,
  env = process.env,
  light = false,
}: {
  python?: string | undefined
  env?: NodeJS.ProcessEnv
  light?: boolean
} = {}): Promise<PythonProbe> {
  if (light && python === undefined && early?.env === env) {
    const { probing } = early
    early = null
    return probing
  }
  return (await probe(choosePython({ flag: python, env }), [], light)).probe
}

// A light probe started before its command asked for it, taken by the first
// probePython call that asks for exactly that one (light, no --python, the same env).
let early: { env: NodeJS.ProcessEnv; probing: Promise<PythonProbe>; stop: AbortController } | null = null

// Starts the light probe of the interpreter env chooses, ahead of the command that will
// ask for it: the CLI does so for --status before the rest of it loads. Through a
// version manager's shim (pyenv) a probe takes about 0.1 s, about as long as everything
// else a repeat --status of 10,000 units does after start-up, so a probe started by the
// command itself was its tail (docs/performance.md).
export function startEarlyProbe(env: NodeJS.ProcessEnv = process.env): void {
  dropEarlyProbe()
  const stop = new AbortController()
  early = { env, stop, probing: probe(choosePython({ env }), [], true, stop.signal).then((r) => r.probe) }
}

// Stops an early probe nothing took (the command failed first, or wanted another probe).
export function dropEarlyProbe(): void {
  early?.stop.abort()
  early = null
}

async function probe(
  choice: PythonChoice,
  scripts: readonly ScriptFile[],
  light = false,
  signal?: AbortSignal,
): Promise<{ probe: PythonProbe; syntax: ProbeOutput['syntax'] }> {
  const base = { ...choice, ok: false, executable: null, version: null, yaml: null, libyaml: false, atomicAgents: null, validators: null }
  const files = scripts.map((s) => s.file)
  const r = await runProbe(choice.command, [...(light ? ['--light'] : []), ...scripts.map((s) => s.path)], signal)
  if ('failure' in r) return { probe: { ...base, error: pythonUnavailable({ ...choice, scripts: files, reason: r.failure }) }, syntax: [] }
  const o = r.out
  const v = o.validators
  const validators = v ? { package: v.package, schemaVersion: v.current, note: v.note, wiki: v.wiki, error: v.error } : null
  const found = { ...base, executable: o.executable, version: o.version, yaml: o.yaml, libyaml: o.libyaml, atomicAgents: o.atomic_agents, validators }
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
  return (await checkPythonRun(scripts, choice, null)).error
}

// What a run validates with: the installed atomic-agents' own validators when the
// interpreter has atomic_agents (and they accept the target version), else the built-in
// rules. Without a .py step a missing interpreter is no error: the built-in rules apply.
export interface PythonRunCheck {
  error: AasError | null
  validators: (AtomicValidators & { origin: string; python: string }) | null // they apply to this run
}

// checkPython, and the validators for a run to `target` (null: no unit is validated).
export async function checkPythonRun(scripts: readonly ScriptFile[], choice: PythonChoice, target: number | null): Promise<PythonRunCheck> {
  const py = scripts.filter((s) => s.ext === 'py')
  if (py.length === 0 && target === null) return { error: null, validators: null }
  const r = await probe(choice, py)
  if (r.probe.error) return { error: py.length > 0 ? r.probe.error : null, validators: null }
  const syntax = syntaxError(py, r.syntax, choice)
  if (syntax) return { error: syntax, validators: null }
  const v = r.probe.validators
  const origin = r.probe.atomicAgents
  if (target === null || !v || !origin) return { error: null, validators: null }
  const unusable = validatorsUnusable(v, origin, choice, target)
  if (unusable) return { error: unusable, validators: null }
  if (!v.note && !v.wiki) return { error: null, validators: null }
  return { error: null, validators: { ...v, origin, python: choice.command } }
}

// An installed atomic-agents whose validators cannot judge the target: the vault would
// end in a state the installed agents reject, so the run is refused before anything is written.
function validatorsUnusable(v: AtomicValidators, origin: string, choice: PythonChoice, target: number): AasError | null {
  const at = `atomic-agents${v.package ? ` ${v.package}` : ''} (${origin}, in ${choice.command})`
  const other = `or pass --python PATH (or set AAS_PYTHON) to an interpreter without atomic_agents to validate with the built-in rules only. Nothing was written.`
  if (v.error) {
    return new AasError(
      'ATOMIC_VALIDATORS_UNUSABLE',
      `The installed ${at} cannot be imported, so its validators cannot check the migrated vault: ${v.error}.`,
      {
        hint: `Repair that installation (\`${choice.command} -c "import atomic_agents._schema"\` shows the error), ${other}`,
        data: { python: choice.command, atomicAgents: origin, package: v.package, reason: 'import', error: v.error },
      },
    )
  }
  if (v.schemaVersion !== null && v.schemaVersion !== target) {
    return new AasError(
      'ATOMIC_VALIDATORS_UNUSABLE',
      `The installed ${at} validates schema v${v.schemaVersion} only (its CURRENT_SCHEMA_VERSION), but this run migrates to v${target}: its agents would reject every migrated note.`,
      {
        hint: `Install the atomic-agents release that brings schema v${target} first (the upgrade runbook's step 2: \`${choice.command} -m pip install --upgrade atomic-agents-stack\` or your install method), then run this again; ${other}`,
        data: { python: choice.command, atomicAgents: origin, package: v.package, reason: 'version', schemaVersion: v.schemaVersion, target },
      },
    )
  }
  return null
}

function syntaxError(py: readonly ScriptFile[], syntax: ProbeOutput['syntax'], choice: PythonChoice): AasError | null {
  const first = syntax[0]
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
      others: syntax.slice(1).map((s) => s.path),
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
