import { stat } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { homedir } from 'node:os'
import path from 'node:path'
import { AasError, describeFsError } from '../errors.js'

export interface AgentsRootSource {
  flag?: string | undefined
  env?: NodeJS.ProcessEnv
}

export type AgentsRootOrigin = 'flag' | 'env' | 'default'

export interface AgentsRoot {
  path: string
  origin: AgentsRootOrigin
}

// --agents-root, else $ATOMIC_AGENTS_ROOT, else ~/docs/agents; an empty value counts as
// unset (docs/how-it-works.md, "Units and versions").
export function chooseAgentsRoot({ flag, env = process.env }: AgentsRootSource = {}): AgentsRoot {
  if (flag !== undefined && flag !== '') return { path: path.resolve(flag), origin: 'flag' }
  const fromEnv = env.ATOMIC_AGENTS_ROOT
  if (fromEnv !== undefined && fromEnv !== '') return { path: path.resolve(fromEnv), origin: 'env' }
  return { path: path.join(homedir(), 'docs', 'agents'), origin: 'default' }
}

const originHint: Record<AgentsRootOrigin, string> = {
  flag: 'Pass --agents-root PATH with the folder that holds your agents.',
  env: 'Set ATOMIC_AGENTS_ROOT to the folder that holds your agents, or pass --agents-root PATH.',
  default: 'Pass --agents-root PATH or set ATOMIC_AGENTS_ROOT; the default ~/docs/agents does not exist here.',
}

// Resolve and check the vault folder; a missing folder or a file is refused before any work.
export async function resolveAgentsRoot(source: AgentsRootSource = {}): Promise<AgentsRoot> {
  const root = chooseAgentsRoot(source)
  let info: Stats
  try {
    info = await stat(root.path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new AasError('AGENTS_ROOT_MISSING', `agents_root ${root.path} does not exist (from ${root.origin}).`, {
        hint: originHint[root.origin],
        data: { agentsRoot: root.path, origin: root.origin },
        cause: err,
      })
    }
    throw new AasError('AGENTS_ROOT_INVALID', `agents_root ${root.path} cannot be read: ${describeFsError(err)}.`, {
      hint:
        code === 'ELOOP'
          ? 'The path is a symlink loop; point --agents-root at the real folder.'
          : 'Check the permissions of the folder, or pass another --agents-root.',
      data: { agentsRoot: root.path, origin: root.origin, errno: code },
      cause: err,
    })
  }
  if (!info.isDirectory()) {
    throw new AasError('AGENTS_ROOT_INVALID', `agents_root ${root.path} is not a directory.`, {
      hint: originHint[root.origin],
      data: { agentsRoot: root.path, origin: root.origin },
    })
  }
  return root
}
