import { stat } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { AasError } from '../errors.js'
import type { Migration } from './define.js'
import type { ScriptFile } from './discover.js'
import type { PythonBridge } from './python-bridge.js'
import { loadPythonScripts, type PythonStep } from './python-load.js'

export interface LoadedMigration extends ScriptFile {
  migration: Migration
  python?: PythonStep // a .py script: the chain runs this step through the Python bridge
}

export interface LoadResult {
  loaded: LoadedMigration[] // in the order given
  errors: AasError[] // SCRIPT_LOAD_FAILED / SCRIPT_INVALID / PYTHON_UNAVAILABLE, one per failing file
  bridge?: PythonBridge // started for the .py scripts: the caller closes it
}

export interface LoadOptions {
  python?: string // the interpreter for .py scripts (see python-interpreter.ts), default python3
  memoryMb?: number // the Python process's address-space limit
}

// Import one script and check its default export; throws AasError
// (SCRIPT_LOAD_FAILED when importing throws, SCRIPT_INVALID when the export is wrong).
export async function loadScript(script: ScriptFile): Promise<LoadedMigration> {
  let ns: Record<string, unknown>
  try {
    ns = await importScript(script)
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new AasError('SCRIPT_LOAD_FAILED', `Migration script ${script.file} failed to load: ${reason}`, {
      hint: `Fix the error in ${script.file} (run it with \`node ${script.path}\` or \`npx tsx ${script.path}\` to see the full stack), or prefix its name with _ to ignore it.`,
      data: { file: script.file, from: script.from, to: script.to },
      cause: err,
    })
  }
  const exported = defaultExport(ns, script)
  const problems = checkMigration(exported, script)
  if (problems.length > 0) {
    throw new AasError('SCRIPT_INVALID', `Migration script ${script.file} is not a valid migration: ${problems.join('; ')}.`, {
      hint: `Make ${script.file} \`export default { from: ${script.from}, to: ${script.to}, appliesTo(unit) { … }, migrate(unit) { … } }\`.`,
      data: { file: script.file, from: script.from, to: script.to, problems },
    })
  }
  return { ...script, migration: exported as Migration }
}

// Load every script, collecting failures instead of stopping at the first. The .py
// scripts all go to one Python bridge, started here when there is one.
export async function loadScripts(scripts: readonly ScriptFile[], options: LoadOptions = {}): Promise<LoadResult> {
  const loaded: LoadedMigration[] = []
  const errors: AasError[] = []
  const py = scripts.some((s) => s.ext === 'py')
    ? await loadPythonScripts(
        scripts.filter((s) => s.ext === 'py'),
        options,
      )
    : null
  for (const script of scripts) {
    if (script.ext === 'py') {
      const r = py?.results.get(script.file)
      if (r && 'error' in r) errors.push(r.error)
      else if (r) loaded.push(r.loaded)
      continue
    }
    try {
      loaded.push(await loadScript(script))
    } catch (err) {
      if (err instanceof AasError) errors.push(err)
      else throw err
    }
  }
  return py?.bridge ? { loaded, errors, bridge: py.bridge } : { loaded, errors }
}

// The module URL carries the file's size and mtime so an edited script is
// re-imported by a long-lived process instead of served from the module cache.
async function importScript(script: ScriptFile): Promise<Record<string, unknown>> {
  const st = await stat(script.path)
  const url = new URL(pathToFileURL(script.path).href)
  url.searchParams.set('v', `${st.size}-${Math.trunc(st.mtimeMs)}`)
  if (script.ext === 'ts' || script.ext === 'mts') {
    const { tsImport } = await import('tsx/esm/api')
    return (await tsImport(url.href, import.meta.url)) as Record<string, unknown>
  }
  return (await import(url.href)) as Record<string, unknown>
}

// tsx compiles a .ts file outside a `"type": "module"` package as CommonJS, so
// the namespace's `default` is `module.exports` with the real default nested inside.
function defaultExport(ns: Record<string, unknown>, script: ScriptFile): unknown {
  const d = ns.default
  if ((script.ext === 'ts' || script.ext === 'mts' || script.ext === 'js') && isObject(d) && (d as { __esModule?: unknown }).__esModule === true) {
    return (d as { default?: unknown }).default
  }
  return d
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null
}

function checkMigration(exp: unknown, script: ScriptFile): string[] {
  if (exp === undefined) return ['it has no default export']
  if (!isObject(exp) || Array.isArray(exp))
    return [`its default export is ${Array.isArray(exp) ? 'an array' : typeof exp === 'function' ? 'a function' : typeof exp}, not an object`]
  const problems: string[] = []
  if (exp.from !== script.from) problems.push(`from is ${describe(exp.from)} but the file name says ${script.from}`)
  if (exp.to !== script.to) problems.push(`to is ${describe(exp.to)} but the file name says ${script.to}`)
  if (typeof exp.appliesTo !== 'function')
    problems.push(`appliesTo is ${exp.appliesTo === undefined ? 'missing' : describe(exp.appliesTo)}; it must be a function (unit) => boolean`)
  if (typeof exp.migrate !== 'function')
    problems.push(`migrate is ${exp.migrate === undefined ? 'missing' : describe(exp.migrate)}; it must be a function (unit) => result`)
  if (exp.validate !== undefined && typeof exp.validate !== 'function')
    problems.push(`validate is ${describe(exp.validate)}; it must be a function (frontmatter, unit) => string[]`)
  if (exp.description !== undefined && typeof exp.description !== 'string') problems.push(`description is ${describe(exp.description)}; it must be a string`)
  if (exp.schema !== undefined) {
    if (!isObject(exp.schema)) problems.push(`schema is ${describe(exp.schema)}; it must be { memory?: zodSchema, wiki?: zodSchema }`)
    else {
      for (const key of Object.keys(exp.schema)) {
        const s = exp.schema[key]
        if (key !== 'memory' && key !== 'wiki') problems.push(`schema.${key} is not a unit type; use schema.memory or schema.wiki`)
        else if (s !== undefined && !(isObject(s) && typeof s.safeParse === 'function')) problems.push(`schema.${key} is not a zod schema (no safeParse)`)
      }
    }
  }
  return problems
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing'
  if (typeof v === 'function') return 'a function'
  if (typeof v === 'string') return JSON.stringify(v)
  if (v === null || typeof v !== 'object') return String(v)
  return Array.isArray(v) ? 'an array' : 'an object'
}
