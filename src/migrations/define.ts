import type { FrontmatterData } from '../vault/frontmatter.js'
import type { UnitType } from '../vault/rules.js'
import type { SchemaLike, ValidatedUnit } from '../schema/contract.js'

export type { SchemaLike, ValidatedUnit }

// The contract between the engine and a migration script (docs/writing-migrations.md,
// "The contract"). Scripts are plain objects; nothing here is needed at run time except
// `defineMigration`, which only exists so TypeScript users get these types checked.

// The handle a script gets for one unit. It never exposes a filesystem path:
// writes go to an in-memory scratch copy, never to the live file.
export interface MigratableUnit {
  readonly unitId: string // vault-relative POSIX path, e.g. 'caldwell/memory/user_household.md'
  readonly unitType: UnitType
  readonly dryRun: boolean
  readFrontmatter(): FrontmatterData // a deep copy; dates stay 'YYYY-MM-DD' strings
  writeFrontmatter(meta: FrontmatterData): void // full replacement; the body is kept
  readBody(): string
  writeBody(text: string): void
}

// A truthy return counts the unit as touched, a falsy one as skipped.
export interface MigrationResult {
  changes?: string[]
}

export type MigrateReturn = MigrationResult | boolean | null | undefined | void

export interface Migration {
  from: number
  to: number
  description?: string
  appliesTo(unit: MigratableUnit): boolean | Promise<boolean>
  migrate(unit: MigratableUnit): MigrateReturn | Promise<MigrateReturn>
  // How to validate a unit at version `to`: error strings ('field: message'), empty = valid.
  validate?(frontmatter: FrontmatterData, unit: ValidatedUnit): string[] | Promise<string[]>
  schema?: { memory?: SchemaLike; wiki?: SchemaLike }
}

/**
 * Types a migration script's default export and returns it unchanged: an identity helper
 * for type checking only. Scripts work without it (a plain object is enough).
 * @example
 * // _migrations/v1_to_v2.ts
 * import { defineMigration } from 'aas-migrate'
 *
 * export default defineMigration({
 *   from: 1,
 *   to: 2,
 *   description: 'add provenance',
 *   appliesTo: (unit) => unit.readFrontmatter().schema_version === 1,
 *   migrate(unit) {
 *     const meta = unit.readFrontmatter()
 *     meta.schema_version = 2
 *     meta.provenance ??= 'v1_migrated'
 *     unit.writeFrontmatter(meta)
 *     return { changes: ['schema_version 1→2'] }
 *   },
 * })
 */
export function defineMigration<T extends Migration>(migration: T): T {
  return migration
}
