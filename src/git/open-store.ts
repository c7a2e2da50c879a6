import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import { AasError } from '../errors.js'
import { CliStore } from './cli-store.js'
import { locateStore } from './locate.js'
import type { BackendName, Store } from './store.js'

export interface OpenStoreOptions {
  agentsRoot: string
  backend?: BackendName // default: $AAS_GIT, else 'cli' when a git binary is on PATH, else 'js'
  create?: boolean // create the embedded store on first write (default true); false: read-only
  env?: NodeJS.ProcessEnv // where AAS_GIT is read when backend is not given (default process.env)
}

let gitOnPath: boolean | null = null

// Whether an executable git is on PATH (looked up once per process, as spawn would
// look it up: running `git --version` cost a process start on every command).
export function hasGitBinary(): boolean {
  if (gitOnPath === null) gitOnPath = findOnPath('git', process.env.PATH ?? '')
  return gitOnPath
}

function findOnPath(name: string, searchPath: string): boolean {
  for (const dir of searchPath.split(path.delimiter)) {
    const file = path.join(dir === '' ? '.' : dir, name)
    try {
      accessSync(file, constants.X_OK)
      if (statSync(file).isFile()) return true
    } catch {
      // not here
    }
  }
  return false
}

export function chooseBackend(env: NodeJS.ProcessEnv = process.env): BackendName {
  const forced = env.AAS_GIT
  if (forced === 'cli' || forced === 'js') return forced
  if (forced !== undefined && forced !== '') {
    throw new AasError('USAGE', `AAS_GIT=${forced} is not a backend.`, { hint: 'Set AAS_GIT to cli or js, or unset it.', data: { AAS_GIT: forced } })
  }
  return hasGitBinary() ? 'cli' : 'js'
}

export async function openStore({ agentsRoot, env = process.env, backend = chooseBackend(env), create = true }: OpenStoreOptions): Promise<Store> {
  const location = await locateStore(agentsRoot)
  if (backend === 'cli') {
    if (!hasGitBinary()) {
      throw new AasError('STORE_FAILED', 'AAS_GIT=cli but no git binary is on PATH.', { hint: 'Install git or set AAS_GIT=js.', data: { backend } })
    }
    return new CliStore(agentsRoot, location, { create })
  }
  // isomorphic-git is loaded only when the js backend is used.
  const { JsStore } = await import('./js-store.js')
  return new JsStore(agentsRoot, location, { create })
}
