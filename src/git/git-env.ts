// The fixed identity of every commit the store writes: never the user's config.
export const AAS_IDENT = { name: 'aas-migrate', email: 'aas-migrate@localhost' } as const

// `-c` settings for every git invocation: no hooks, filters, attribute conversion,
// autocrlf, fsmonitor, signing or auto-gc may apply to what the store writes.
export function safeConfigArgs(): string[] {
  const pairs: Array<[string, string]> = [
    // Not a directory, so no hook can ever be found there (a shared temp dir could be planted).
    ['core.hooksPath', '/dev/null'],
    ['core.autocrlf', 'false'],
    ['core.safecrlf', 'false'],
    ['core.attributesFile', '/dev/null'],
    ['core.fsmonitor', 'false'],
    ['core.splitIndex', 'false'],
    ['commit.gpgSign', 'false'],
    ['gc.auto', '0'],
    ['maintenance.auto', 'false'],
  ]
  return pairs.flatMap(([k, v]) => ['-c', `${k}=${v}`])
}

// The environment of a git child: inherited GIT_* variables removed (the engine may be
// started from a hook), the private index and the fixed identity set.
export function gitChildEnv({ gitDir, indexFile, timestamp }: { gitDir: string; indexFile: string; timestamp?: number }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.toUpperCase().startsWith('GIT_')) env[k] = v
  env.GIT_DIR = gitDir
  env.GIT_INDEX_FILE = indexFile
  env.GIT_AUTHOR_NAME = AAS_IDENT.name
  env.GIT_AUTHOR_EMAIL = AAS_IDENT.email
  env.GIT_COMMITTER_NAME = AAS_IDENT.name
  env.GIT_COMMITTER_EMAIL = AAS_IDENT.email
  env.GIT_TERMINAL_PROMPT = '0'
  env.GIT_OPTIONAL_LOCKS = '0'
  env.LC_ALL = 'C'
  if (timestamp !== undefined) {
    env.GIT_AUTHOR_DATE = `@${timestamp} +0000`
    env.GIT_COMMITTER_DATE = `@${timestamp} +0000`
  }
  return env
}
