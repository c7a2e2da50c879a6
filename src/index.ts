// The public API: re-exports only (test/index.test.ts pins the list).
export { status, type StatusOptions, type StatusResult, type ChainSummary } from './commands/status.js'
export { migrate, type MigrateOptions, type MigrateResult } from './commands/migrate/migrate.js'
export { rollback, type RollbackOptions, type RollbackResult } from './commands/rollback.js'
export { doctor, type DoctorOptions, type DoctorResult, type DoctorCheck, type DoctorCheckId } from './commands/doctor.js'
export { listSnapshots, exportSnapshot, importSnapshot, type VaultOptions, type ExportSnapshotOptions, type ImportSnapshotOptions } from './api.js'
export type { Snapshot, ExportResult, ImportResult } from './snapshots/snapshots.js'
export type { EngineEvent } from './commands/session.js'
export type { ValidationResult, UnitFailure, ValidationIssue } from './schema/validate.js'
export type { Inventory } from './vault/inventory.js'
export {
  defineMigration,
  type Migration,
  type MigratableUnit,
  type ValidatedUnit,
  type MigrationResult,
  type MigrateReturn,
  type SchemaLike,
} from './migrations/define.js'
export type { FrontmatterData } from './vault/frontmatter.js'
export { AasError, isAasError, type AasErrorCode } from './errors.js'
