import jsYaml from 'js-yaml'
import type { FrontmatterValue } from './frontmatter-values.js'
import { isLoadableSimply } from './simple-frontmatter.js'

// The values of simple front matter without building a YAML document (docs/how-it-works.md,
// "Reading front matter fast"). The `yaml` library's document keeps every node's place in
// the text, which an edit needs; reading values only, js-yaml is about ten times faster
// (a 10,000-unit vault: ~0.1 s against ~1.2 s). It reads only what ./simple-frontmatter.ts
// calls loadable, where both libraries agree on every value (YAML 1.2 core schema: dates
// stay strings); anything else returns null and the caller parses fully.
// test/vault/fast-load.test.ts compares the two on a corpus, every fixture, edge cases
// and random mutations.

export function fastLoad(source: string): Record<string, FrontmatterValue> | null {
  if (!isLoadableSimply(source)) return null
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
