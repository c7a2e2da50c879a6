import jsYaml from 'js-yaml'
import type { FrontmatterValue } from './frontmatter-values.js'
import { loadSimple, NOT_BUILT } from './simple-frontmatter.js'

// The values of simple front matter without building a YAML document (docs/how-it-works.md,
// "Reading front matter fast"). The `yaml` library's document keeps every node's place in
// the text, which an edit needs; reading values only needs much less. It reads only what
// ./simple-frontmatter.ts calls loadable, where every YAML 1.2 core-schema reader agrees on
// every value (dates stay strings): that scan builds the values itself as it checks the
// lines, except for a front matter with a block scalar (`|`, `>`), which js-yaml reads
// (about ten times faster than the `yaml` document). Anything else returns null and the
// caller parses fully. test/vault/fast-load.test.ts compares the fast load with the full
// parser on a corpus, every fixture, edge cases and random mutations.

export function fastLoad(source: string): Record<string, FrontmatterValue> | null {
  const simple = loadSimple(source)
  if (simple !== NOT_BUILT) return simple
  let value: unknown
  try {
    value = jsYaml.load(source, { schema: jsYaml.CORE_SCHEMA })
  } catch {
    return null // the full parser reports it, with its own message
  }
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) return null
  return value as Record<string, FrontmatterValue>
}
