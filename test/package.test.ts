import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from './helpers/make-vault.js'

// Every dependency is used, and every package src/ imports is a run-time dependency: a
// dependency nothing uses (gray-matter and tar were listed for months) fails here.

const read = (...p: string[]): string => readFileSync(path.join(repoRoot, ...p), 'utf8')
const pkg = JSON.parse(read('package.json')) as {
  name: string
  scripts: Record<string, string>
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir), { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? (e.name === 'node_modules' ? [] : sourceFiles(p)) : /\.[cm]?[jt]s$/.test(e.name) ? [p] : []
  })
}

// The packages a file imports: `import … from 'x'`, `export … from 'x'`, `import 'x'`,
// `import('x')`, `require('x')`, `require.resolve('x')`; a subpath `x/y` counts as x.
function importedPackages(text: string): string[] {
  const re = /(?:\bfrom\s+|\bimport\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|\.resolve\s*\(\s*)['"]([@\w][\w@./-]*)['"]/g
  return [...text.matchAll(re)]
    .map((m) => m[1] as string)
    .map((s) =>
      s
        .split('/')
        .slice(0, s.startsWith('@') ? 2 : 1)
        .join('/'),
    )
}

const external = (name: string): boolean => !name.startsWith('node:') && !builtinModules.includes(name) && name !== pkg.name

// The command names a package installs (its package.json `bin`; none when not installed).
function binaries(name: string): string[] {
  if (!existsSync(path.join(repoRoot, 'node_modules', name, 'package.json'))) return []
  const { bin } = JSON.parse(read('node_modules', name, 'package.json')) as { bin?: string | Record<string, string> }
  return typeof bin === 'string' ? [name.replace(/^@[^/]+\//, '')] : Object.keys(bin ?? {})
}

describe('package.json dependencies', () => {
  const importsIn = (dirs: string[]): Set<string> => new Set(dirs.flatMap(sourceFiles).flatMap((f) => importedPackages(read(f)).filter(external)))
  const used = importsIn(['src', 'test', 'bench', 'scripts'])
  const commands = [...Object.values(pkg.scripts), read('.ci', 'run')].join('\n')
  const tsTypes = (JSON.parse(read('tsconfig.json')) as { compilerOptions: { types?: string[] } }).compilerOptions.types ?? []

  it('finds imports to check', () => {
    expect(used).toContain('zod')
    expect(used).toContain('vitest')
  })

  it('when a dependency is listed then something imports it, runs its command, or (@types/x) tsconfig loads its types or x is imported', () => {
    const unused = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)].filter((name) => {
      if (used.has(name)) return false
      const typed = name.slice('@types/'.length)
      if (name.startsWith('@types/') && (tsTypes.includes(typed) || used.has(typed))) return false
      return !binaries(name).some((bin) => new RegExp(`(^|[\\s;&|(])${bin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=\\s|$)`, 'm').test(commands))
    })
    expect(unused).toEqual([])
  })

  it('when src/ imports a package then it is a run-time dependency, not only a devDependency', () => {
    expect([...importsIn(['src'])].filter((name) => !(name in pkg.dependencies))).toEqual([])
  })
})
