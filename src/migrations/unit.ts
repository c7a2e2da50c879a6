import { AasError } from '../errors.js'
import type { FrontmatterData, UnitText } from '../vault/frontmatter.js'
import type { UnitType } from '../vault/rules.js'
import type { MigratableUnit } from './define.js'

export interface UnitHandleOptions {
  unitId: string
  unitType: UnitType
  text: UnitText // the scratch copy the handle reads and writes
  dryRun?: boolean
  script?: string // named in write errors
}

export interface UnitHandle {
  unit: MigratableUnit
  // After close(), writes through the handle are refused: a script cannot keep
  // it and write later, after its step has been checked.
  close(): void
  wrote(): boolean // whether writeFrontmatter or writeBody was called
}

// The MigratableUnit of SPEC §2 over an in-memory UnitText: no path, no file
// access; reads are deep copies so a script cannot change state by mutation.
export function createUnitHandle({ unitId, unitType, text, dryRun = false, script }: UnitHandleOptions): UnitHandle {
  let open = true
  let wrote = false
  const ensureOpen = (op: string): void => {
    if (!open) throw writeInvalid(unitId, script, `${op}() was called after migrate() returned`, 'Await every write inside migrate(); do not keep the unit handle.')
  }
  const unit: MigratableUnit = Object.freeze({
    unitId,
    unitType,
    dryRun,
    readFrontmatter(): FrontmatterData {
      return structuredClone(text.readFrontmatter())
    },
    writeFrontmatter(meta: FrontmatterData): void {
      ensureOpen('writeFrontmatter')
      if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
        throw writeInvalid(unitId, script, `writeFrontmatter() needs a plain object, got ${Array.isArray(meta) ? 'an array' : meta === null ? 'null' : typeof meta}`, 'Pass the whole front matter object, e.g. the result of readFrontmatter() with your changes.')
      }
      let copy: FrontmatterData
      try {
        copy = structuredClone(meta)
      } catch (err) {
        throw writeInvalid(unitId, script, `writeFrontmatter() got a value that cannot be stored as YAML (${(err as Error).message})`, 'Use only strings, numbers, booleans, null, arrays and plain objects.', err)
      }
      text.writeFrontmatter(copy)
      wrote = true
    },
    readBody(): string {
      return text.readBody()
    },
    writeBody(body: string): void {
      ensureOpen('writeBody')
      if (typeof body !== 'string') throw writeInvalid(unitId, script, `writeBody() needs a string, got ${body === null ? 'null' : typeof body}`, 'Pass the whole new body as a string.')
      text.writeBody(body)
      wrote = true
    },
  })
  return { unit, close: () => void (open = false), wrote: () => wrote }
}

function writeInvalid(unitId: string, script: string | undefined, what: string, hint: string, cause?: unknown): AasError {
  return new AasError('UNIT_WRITE_INVALID', `${script ?? 'A migration script'} wrote an invalid value to ${unitId}: ${what}.`, {
    hint: `${hint} (in ${script ?? 'the script'})`,
    data: { unit: unitId, ...(script ? { script } : {}) },
    cause,
  })
}
