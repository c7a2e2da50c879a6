// The snapshots room: naming, listing, taking, and tarball export/import, one concept
// per file; this gathers the calls src/api.ts wraps.
export { listSnapshots, resolveSnapshotName, type Snapshot } from './list.js'
export { takeSnapshot, type TakeSnapshotOptions, type TakeSnapshotResult } from './take.js'
export { exportSnapshot, type ExportResult } from './export-tarball.js'
export { importSnapshot, type ImportResult } from './import-tarball.js'
