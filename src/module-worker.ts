import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker, type WorkerOptions } from 'node:worker_threads'

// A worker thread running the module `name` (no extension) beside the module `from`
// (its import.meta.url): the compiled .js, or, running from sources under tsx/vitest,
// the .ts loaded through tsx.
export function startModuleWorker(from: string, name: string, options: Omit<WorkerOptions, 'eval'>): Worker {
  const url = moduleUrl(from, name)
  if (url.endsWith('.js')) return new Worker(new URL(url), options)
  // The ESM build of tsx's API (resolving 'tsx/esm/api' from CommonJS gives the CJS one).
  const tsxDir = path.dirname(createRequire(import.meta.url).resolve('tsx/package.json'))
  const tsxApi = pathToFileURL(path.join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => m.tsImport(${JSON.stringify(url)}, ${JSON.stringify(url)}))`
  return new Worker(boot, { ...options, eval: true })
}

// The URL of the module `name` (a path without extension, relative to the module
// `from`): the compiled .js, else (running from sources) the .ts, which a worker started
// here can import.
export function moduleUrl(from: string, name: string): string {
  const js = new URL(`./${name}.js`, from)
  return existsSync(fileURLToPath(js)) ? js.href : new URL(`./${name}.ts`, from).href
}
