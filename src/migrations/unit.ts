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

// The MigratableUnit of docs/writing-migrations.md, "The contract", over an in-memory
// UnitText: no path, no file access; reads are deep copies so a script cannot change
// state by mutation.
export function createUnitHandle({ unitId, unitType, text, dryRun = false, script }: UnitHandleOptions): UnitHandle {
  let open = true
  let wrote = false
  const ensureOpen = (op: string): void => {
    if (!open)
      throw writeInvalid(unitId, script, `${op}() was called after migrate() returned`, 'Await every write inside migrate(); do not keep the unit handle.')
  }
  const unit: MigratableUnit = Object.freeze({
    unitId,
    unitType,
    dryRun,
    readFrontmatter(): FrontmatterData {
      return text.readFrontmatter() // already a deep copy
    },
    writeFrontmatter(meta: FrontmatterData): void {
      ensureOpen('writeFrontmatter')
      if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
        throw writeInvalid(
          unitId,
          script,
          `writeFrontmatter() needs a plain object, got ${Array.isArray(meta) ? 'an array' : meta === null ? 'null' : typeof meta}`,
          'Pass the whole front matter object, e.g. the result of readFrontmatter() with your changes.',
        )
      }
      let copy: FrontmatterData
      try {
        copy = plainCopy(meta, '', new Set()) as FrontmatterData
      } catch (err) {
        if (!(err instanceof BadValue)) throw err
        throw writeInvalid(unitId, script, `writeFrontmatter() got ${err.what} at ${err.at}`, err.hint, undefined, err.at)
      }
      text.writeFrontmatter(copy)
      wrote = true
    },
    readBody(): string {
      return text.readBody()
    },
    writeBody(body: string): void {
      ensureOpen('writeBody')
      if (typeof body !== 'string')
        throw writeInvalid(unitId, script, `writeBody() needs a string, got ${body === null ? 'null' : typeof body}`, 'Pass the whole new body as a string.')
      text.writeBody(body)
      wrote = true
    },
  })
  return { unit, close: () => void (open = false), wrote: () => wrote }
}

class BadValue extends Error {
  constructor(
    readonly what: string,
    readonly at: string,
    readonly hint: string,
  ) {
    super(what)
  }
}

const PLAIN_HINT = 'Front matter may hold only strings, finite numbers, booleans, null, arrays and plain objects.'

// A deep copy that admits only values YAML writes and reads back unchanged, so
// the next step (and the file) sees exactly what the script wrote.
function plainCopy(value: unknown, at: string, seen: Set<object>): unknown {
  const where = at === '' ? 'the top level' : at
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value
    throw new BadValue(String(value), where, PLAIN_HINT)
  }
  if (value instanceof Date) throw new BadValue('a Date', where, "Write dates as 'YYYY-MM-DD' strings, as they are read.")
  if (typeof value !== 'object') throw new BadValue(value === undefined ? 'undefined' : `a ${typeof value}`, where, PLAIN_HINT)
  if (seen.has(value)) throw new BadValue('a circular reference', where, PLAIN_HINT)
  seen.add(value)
  try {
    if (Array.isArray(value)) return value.map((v, i) => plainCopy(v, `${at}[${i}]`, seen))
    const proto = Object.getPrototypeOf(value) as unknown
    if (proto !== Object.prototype && proto !== null) throw new BadValue(`a ${(value as object).constructor?.name ?? 'non-plain'} object`, where, PLAIN_HINT)
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue // like JSON: an undefined key is left out
      out[k] = plainCopy(v, at === '' ? k : `${at}.${k}`, seen)
    }
    return out
  } finally {
    seen.delete(value)
  }
}

function writeInvalid(unitId: string, script: string | undefined, what: string, hint: string, cause?: unknown, field?: string): AasError {
  return new AasError('UNIT_WRITE_INVALID', `${script ?? 'A migration script'} wrote an invalid value to ${unitId}: ${what}.`, {
    hint: `${hint} (in ${script ?? 'the script'})`,
    data: { unit: unitId, ...(script ? { script } : {}), ...(field ? { field } : {}) },
    cause,
  })
}
