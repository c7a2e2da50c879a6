import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'
import { MIGRATIONS_DIR } from '../vault/rules.js'

// Script discovery by file name only: nothing is read or executed here, so
// `--status` can list scripts without running their code (docs/how-it-works.md,
// "Status and doctor").

// .py: the atomic-agents form (FROM_VERSION, TO_VERSION, applies_to, migrate), run
// through the Python bridge; a chain may mix languages.
export type ScriptExt = 'mjs' | 'js' | 'ts' | 'mts' | 'py'

export const SCRIPT_EXTS: readonly ScriptExt[] = ['mjs', 'js', 'ts', 'mts', 'py']

export interface ScriptFile {
  file: string // vault-relative POSIX path, e.g. '_migrations/v1_to_v2.mjs'
  path: string // absolute path, for loading
  from: number
  to: number
  ext: ScriptExt
}

export interface DiscoveryResult {
  scripts: ScriptFile[] // valid, one per step, sorted by `from`
  errors: AasError[] // one per offending file (or per duplicated step)
}

const SCRIPT_NAME = /^v(0|[1-9]\d*)_to_v(0|[1-9]\d*)\.(mjs|js|ts|mts|py)$/
// Extensions that mark a file as meant to be code.
const CODE_EXT = /\.(mjs|cjs|js|ts|mts|cts|jsx|tsx|py)$/i
// Names that read like a step (v1-to-v2, V1_to_V2, v1_v2, v1_to_v2.mjs.bak…).
const STEP_LIKE = /^v\d+[\W_]+(to[\W_]*)?v?\d+/i

export function scriptsDir(agentsRoot: string): string {
  return path.join(agentsRoot, MIGRATIONS_DIR)
}

// Whether a file name in _migrations/ is meant to be a migration script.
function looksLikeScript(name: string): boolean {
  return CODE_EXT.test(name) || STEP_LIKE.test(name)
}

export async function discoverScripts(agentsRoot: string): Promise<DiscoveryResult> {
  const dir = scriptsDir(agentsRoot)
  let entries: import('node:fs').Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { scripts: [], errors: [] }
    if (code === 'ENOTDIR') {
      return {
        scripts: [],
        errors: [
          new AasError('SCRIPT_NAME_INVALID', `${MIGRATIONS_DIR} is not a directory.`, {
            hint: `Move ${dir} aside and create a ${MIGRATIONS_DIR}/ folder for migration scripts.`,
            data: { file: MIGRATIONS_DIR },
          }),
        ],
      }
    }
    return {
      scripts: [],
      errors: [
        new AasError('IO_FAILED', `${MIGRATIONS_DIR}/ cannot be listed: ${describeFsError(err)}.`, {
          hint: `Fix the permissions of ${dir}.`,
          data: { file: MIGRATIONS_DIR },
          cause: err,
        }),
      ],
    }
  }

  const found: ScriptFile[] = []
  const errors: AasError[] = []
  const names = entries
    .filter((e) => e.isFile() || e.isSymbolicLink())
    .map((e) => e.name)
    .sort()
  for (const name of names) {
    if (name.startsWith('_') || name.startsWith('.')) continue
    const file = `${MIGRATIONS_DIR}/${name}`
    const m = SCRIPT_NAME.exec(name)
    if (!m) {
      if (looksLikeScript(name)) errors.push(nameInvalid(file, name))
      continue
    }
    const from = Number(m[1])
    const to = Number(m[2])
    const ext = m[3] as ScriptExt
    if (to !== from + 1) {
      errors.push(
        new AasError(
          'SCRIPT_VERSION_SKIP',
          `Migration script ${file} goes from v${from} to v${to}; a script must move exactly one version (v${from} -> v${from + 1}).`,
          {
            hint: `Split it into one script per step (v${from}_to_v${from + 1}.${ext}, …), or prefix the name with _ to ignore it.`,
            data: { file, from, to },
          },
        ),
      )
      continue
    }
    found.push({ file, path: path.join(dir, name), from, to, ext })
  }

  const byStep = new Map<number, ScriptFile[]>()
  for (const s of found) byStep.set(s.from, [...(byStep.get(s.from) ?? []), s])
  const scripts: ScriptFile[] = []
  for (const [from, group] of [...byStep].sort((a, b) => a[0] - b[0])) {
    if (group.length === 1) {
      scripts.push(group[0]!)
      continue
    }
    const files = group.map((s) => s.file)
    errors.push(
      new AasError('SCRIPT_DUPLICATE', `Two migration scripts for v${from} -> v${from + 1}: ${files.join(', ')}.`, {
        hint: `Keep one of them; delete the others or prefix their names with _ to ignore them.`,
        data: { file: files[0], files, from, to: from + 1 },
      }),
    )
  }
  return { scripts, errors }
}

function nameInvalid(file: string, name: string): AasError {
  const nums = /(\d+)\D+(\d+)/.exec(name)
  const example = nums ? `v${Number(nums[1])}_to_v${Number(nums[2])}.mjs` : 'v1_to_v2.mjs'
  return new AasError('SCRIPT_NAME_INVALID', `${file} looks like a migration script but its name does not match v<N>_to_v<N+1>.{mjs,js,ts,mts,py}.`, {
    hint: `Rename it (e.g. ${example}), or prefix the name with _ to keep it in ${MIGRATIONS_DIR}/ and have it ignored.`,
    data: { file, expected: 'v<N>_to_v<N+1>.{mjs,js,ts,mts,py}' },
  })
}
