import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from './helpers/make-vault.js'

// The rooms of src/, lowest first: a module may import from its own room or a lower
// one, never from a higher one (docs/how-it-works.md, "Where things are").
const LAYERS: ReadonlyArray<readonly string[]> = [
  ['errors.ts', 'version.ts', 'fs-exists.ts', 'module-worker.ts', 'settled.ts'],
  ['vault'],
  ['schema'],
  ['migrations'],
  ['git'],
  ['transaction'],
  ['diff'],
  ['snapshots'],
  ['commands'],
  ['api.ts'],
  ['index.ts', 'testing.ts'],
  ['cli'],
]

const src = path.join(repoRoot, 'src')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? sourceFiles(p) : /\.(ts|mts)$/.test(e.name) ? [p] : []
  })
}

// The room of a file below src/: its top folder, or its own name at the top.
function roomOf(file: string): string {
  return (path.relative(src, file).split(path.sep)[0] as string).replace(/\.js$/, '.ts')
}

function layerOf(room: string): number {
  const i = LAYERS.findIndex((l) => l.includes(room))
  if (i < 0) throw new Error(`src/${room} belongs to no layer: add it to LAYERS in test/architecture.test.ts and to docs/how-it-works.md`)
  return i
}

// Relative module specifiers: static imports and re-exports, import(), new URL(…, import.meta.url).
function relativeImports(text: string): string[] {
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)['"](\.{1,2}\/[^'"$]+)['"]/g
  return [...text.matchAll(re)].map((m) => m[1] as string)
}

describe('the import graph of src/', () => {
  const files = sourceFiles(src)
  const edges = files
    .flatMap((file) => relativeImports(readFileSync(file, 'utf8')).map((spec) => ({ file, target: path.resolve(path.dirname(file), spec) })))
    .filter((e) => !path.relative(src, e.target).startsWith('..')) // package.json

  it('has edges to check', () => {
    expect(files.length).toBeGreaterThan(50)
    expect(edges.length).toBeGreaterThan(150)
  })

  it('when a module imports another then the other is in the same room or a lower one', () => {
    const upward = edges
      .filter((e) => layerOf(roomOf(e.target)) > layerOf(roomOf(e.file)))
      .map((e) => `${path.relative(src, e.file)} -> ${path.relative(src, e.target)}`)
    expect(upward).toEqual([])
  })

  it('knows every room of src/', () => {
    for (const room of new Set(files.map(roomOf))) expect(() => layerOf(room)).not.toThrow()
  })
})
