// The public API: re-exports only (test/index.test.ts pins the list).
export {
  status,
  migrate,
  apply,
  rollback,
  doctor,
  listSnapshots,
  listPreviews,
  exportSnapshot,
  importSnapshot,
  pushSnapshots,
  fetchSnapshots,
  locateSnapshots,
  setRemote,
  unsetRemote,
  pruneSnapshots,
  breakLease,
  type StatusOptions,
  type MigrateOptions,
  type ApplyOptions,
  type RollbackOptions,
  type DoctorOptions,
  type VaultOptions,
  type ExportSnapshotOptions,
  type ImportSnapshotOptions,
  type RemoteOptions,
  type PruneSnapshotsOptions,
} from './api.js'
export type { StatusResult, ChainSummary } from './commands/status.js'
export type { MigrateResult, StepStatus } from './commands/migrate/migrate.js'
export type { ApplyPreviewResult } from './commands/apply.js'
export type { Preview, PreviewStatus } from './commands/previews.js'
export type { RollbackResult } from './commands/rollback.js'
export type { DoctorResult, DoctorCheck, DoctorCheckId } from './commands/doctor.js'
export type { Snapshot } from './snapshots/list.js'
export type { ExportResult } from './snapshots/export-tarball.js'
export type { ImportResult } from './snapshots/import-tarball.js'
export type { LeaseHolder, LeaseState } from './snapshots/lease.js'
export type { PruneResult, RetentionPolicy } from './snapshots/prune.js'
export type { TransferResult, DivergedRef, SnapshotListing, LocatedSnapshot, SnapshotLocation } from './snapshots/remote.js'
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
