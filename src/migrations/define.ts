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

// Identity helper: returns its argument unchanged, for type checking only.
export function defineMigration<T extends Migration>(migration: T): T {
  return migration
}
