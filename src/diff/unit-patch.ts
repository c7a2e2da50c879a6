import { hashBlob } from '../transaction/blob-hash.js'
import type { FileMode } from '../vault/walk.js'
import { renderTextChange, type RenderedPatch } from './unified.js'

// What a dry run's chain workers run for each unit they change (the module the engine
// names in SandboxOptions.patches): the unit's part of the diff, from its two texts (the
// UTF-8 of its bytes, see decodeUnit), with the blob id of its new bytes.
export function renderUnitPatch(
  unit: { unitId: string; oid: string; mode: FileMode },
  before: string,
  after: string,
  color: boolean,
): RenderedPatch & { newOid: string } {
  const newBytes = Buffer.from(after, 'utf8')
  const newOid = hashBlob(newBytes)
  const change = { path: unit.unitId, mode: unit.mode, oldOid: unit.oid, newOid, oldBytes: Buffer.from(before, 'utf8'), newBytes }
  return { ...renderTextChange(change, color), newOid }
}
