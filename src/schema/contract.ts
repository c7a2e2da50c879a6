import type { FrontmatterData } from '../vault/frontmatter.js'
import type { UnitType } from '../vault/rules.js'

// The validation types that scripts and the validator share. They live here, with the
// validator that owns them; src/migrations/define.ts re-exports them as part of the
// script contract.

// A zod-compatible schema: anything with `safeParse` returning zod-shaped issues.
export interface SchemaLike {
  safeParse(data: unknown): { success: true } | { success: false; error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> } }
}

// What `validate` receives besides the front matter: the unit, read-only.
export interface ValidatedUnit {
  readonly unitId: string
  readonly unitType: UnitType
  readFrontmatter(): FrontmatterData
  readBody(): string
}

// What a script whose `to` is the validated version adds to the rules: its own
// schemas, its own `validate`, or both. A loaded migration script is one.
export interface VersionRulesSource {
  file: string
  to: number
  migration: {
    validate?(frontmatter: FrontmatterData, unit: ValidatedUnit): string[] | Promise<string[]>
    schema?: { memory?: SchemaLike; wiki?: SchemaLike }
  }
}
