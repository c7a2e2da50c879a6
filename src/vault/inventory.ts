import { parseUnitText } from './frontmatter.js'
import { decodeUnit, quickReading, readingOfParsed, type UnitReading } from './unit-reading.js'

// The inventory and unit readings, with the full YAML parser loaded: for callers that
// parse anyway (a run's pre-flight, its workers, the testing kit). The inventory itself
// and the quick reading live in ./unit-reading.js, which loads the parser only for the
// units that need it (`--status`).

export {
  decodeUnit,
  quickReading,
  readingOfParsed,
  readUnit,
  summarize,
  takeInventory,
  unitVersionOf,
  type Inventory,
  type InventoryOptions,
  type InventoryResult,
  type ReadingCache,
  type UnitContent,
  type UnitRead,
  type UnitReading,
  type UnreadableUnit,
  type VersionCount,
} from './unit-reading.js'

// Classify one unit's content without executing anything.
export function readUnitVersion(bytes: Buffer): UnitReading {
  const decoded = decodeUnit(bytes)
  if (!decoded.ok) return { kind: 'unreadable', error: decoded.error }
  return readingOfText(decoded.text)
}

// The reading of a decoded unit text: the quick reading when it can decide, else a full parse.
export function readingOfText(text: string): UnitReading {
  return quickReading(text) ?? readingOfParsed(parseUnitText(text))
}

// The reading of a decoded unit text from a full parse, never the quick reading (the
// reference the quick reading is tested against).
export function fullReadingOfText(text: string): UnitReading {
  return readingOfParsed(parseUnitText(text))
}
