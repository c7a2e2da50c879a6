import type { SchemaLike, ValidatedUnit, VersionRulesSource } from './contract.js'
import { parseUnitText, type UnitText } from '../vault/frontmatter.js'
import type { UnitType } from '../vault/rules.js'

// Validation of every unit against the target version: all failures of all
// units, each as `path: field: message`, never only the first.

export interface ValidationUnit {
  unitId: string
  unitType: UnitType
  text: string
  parsed?: UnitText // already parsed from exactly `text` (and settled): not parsed again
}

export interface ValidationIssue {
  field: string // 'name', 'sources[0]', 'front matter', 'file name', …
  message: string
}

export interface UnitFailure {
  unitId: string
  unitType: UnitType
  issues: ValidationIssue[]
}

export type ValidationMode = 'schema' | 'structure-only'

export interface ValidationResult {
  ok: boolean
  version: number
  checked: number // units looked at (every unit given)
  mode: ValidationMode // 'structure-only' when no schema is known for any unit type
  coverage: Record<UnitType, ValidationMode>
  note: string // what was checked, in words
  failures: UnitFailure[]
}

export interface ValidateOptions {
  version: number
  scripts?: readonly VersionRulesSource[] // the script whose `to` is `version` supplies schema/validate
  onUnit?: (unitId: string) => void // called before each unit is checked (a watchdog's heartbeat)
}

interface Rules {
  schema: Partial<Record<UnitType, SchemaLike>>
  validate: VersionRulesSource | null
  fileNameRule: ((unitId: string) => string | null) | null // the v1 memory-note file-name rule
  source: string
}

export async function validateUnits(units: readonly ValidationUnit[], options: ValidateOptions): Promise<ValidationResult> {
  const validator = makeValidator(options)
  const v = await validator
  for (const unit of units) await v.check(unit)
  return v.finish(units.length)
}

// validateUnits one unit at a time, for callers that stream units (and drop each after).
export async function makeValidator({
  version,
  scripts = [],
  onUnit,
}: ValidateOptions): Promise<{ check(unit: ValidationUnit): Promise<void>; finish(checked: number): ValidationResult }> {
  // The built-in v1 schemas (and zod with them) are loaded only when v1 is validated.
  const rules = rulesFor(version, scripts, version === 1 ? await import('./v1.js') : null)
  const failures: UnitFailure[] = []
  return {
    async check(unit) {
      onUnit?.(unit.unitId)
      const issues = await checkUnit(unit, version, rules)
      if (issues.length > 0) failures.push({ unitId: unit.unitId, unitType: unit.unitType, issues })
    },
    finish(checked) {
      const coverage: Record<UnitType, ValidationMode> = {
        memory: rules.schema.memory || rules.validate ? 'schema' : 'structure-only',
        wiki: rules.schema.wiki || rules.validate ? 'schema' : 'structure-only',
      }
      const mode: ValidationMode = coverage.memory === 'schema' || coverage.wiki === 'schema' ? 'schema' : 'structure-only'
      return { ok: failures.length === 0, version, checked, mode, coverage, note: noteFor(version, coverage, rules.source), failures }
    },
  }
}

// `path: field: message`, one line per issue, units in the order given.
export function formatFailures(failures: readonly UnitFailure[]): string[] {
  return failures.flatMap((f) => f.issues.map((i) => `${f.unitId}: ${i.field}: ${i.message}`))
}

// Zod issues (v3 or v4 shape) as `field: message` pairs.
export function flattenIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): ValidationIssue[] {
  return issues.map((i) => ({ field: fieldOf(i.path), message: i.message }))
}

function fieldOf(p: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const seg of p) {
    if (typeof seg === 'number') out += `[${seg}]`
    else out += out === '' ? String(seg) : `.${String(seg)}`
  }
  return out === '' ? 'front matter' : out
}

function rulesFor(version: number, scripts: readonly VersionRulesSource[], v1: typeof import('./v1.js') | null): Rules {
  const script = scripts.find((s) => s.to === version) ?? null
  const own = script?.migration.schema ?? {}
  const validate = script?.migration.validate ? script : null
  if (v1) {
    return {
      schema: { memory: own.memory ?? v1.schemaV1.memory, wiki: own.wiki ?? v1.schemaV1.wiki },
      validate,
      fileNameRule: v1.memoryFileNameIssueV1,
      source: 'the built-in v1 schemas',
    }
  }
  return { schema: own, validate, fileNameRule: null, source: script ? script.file : 'no script' }
}

async function checkUnit(unit: ValidationUnit, version: number, rules: Rules): Promise<ValidationIssue[]> {
  const parsed = unit.parsed?.settled ? ({ ok: true, unit: unit.parsed } as const) : parseUnitText(unit.text)
  if (!parsed.ok) {
    const { line, column, message } = parsed.error
    return [{ field: 'front matter', message: `does not parse at line ${line}, column ${column}: ${message}` }]
  }
  if (!parsed.unit.hasFrontmatter) return [{ field: 'front matter', message: 'is missing (the file does not start with a --- block)' }]
  const meta = parsed.unit.peekFrontmatter() // read only here; validate() gets its own copy
  const issues: ValidationIssue[] = []
  const found = meta.schema_version
  const versionWrong = found !== version
  if (versionWrong) issues.push({ field: 'schema_version', message: `must be ${version}, found ${found === undefined ? 'nothing' : JSON.stringify(found)}` })

  const schema = rules.schema[unit.unitType]
  if (schema) {
    const r = schema.safeParse(meta)
    if (!r.success) issues.push(...flattenIssues(r.error.issues).filter((i) => !(versionWrong && i.field === 'schema_version')))
  }
  if (rules.fileNameRule && unit.unitType === 'memory') {
    const msg = rules.fileNameRule(unit.unitId)
    if (msg) issues.push({ field: 'file name', message: msg })
  }
  if (rules.validate) issues.push(...(await runValidate(rules.validate, meta, unit, parsed.unit)))
  return issues
}

async function runValidate(
  script: VersionRulesSource,
  shared: Readonly<Record<string, unknown>>,
  unit: ValidationUnit,
  text: { readFrontmatter(): Record<string, unknown>; readBody(): string },
): Promise<ValidationIssue[]> {
  const view: ValidatedUnit = Object.freeze({
    unitId: unit.unitId,
    unitType: unit.unitType,
    readFrontmatter: () => structuredClone(text.readFrontmatter()),
    readBody: () => text.readBody(),
  })
  let out: unknown
  try {
    out = await script.migration.validate!(structuredClone(shared) as Record<string, unknown>, view) // its own copy
  } catch (err) {
    return [{ field: 'validate', message: `${script.file} validate() threw: ${err instanceof Error ? err.message : String(err)}` }]
  }
  if (out === undefined || out === null) return []
  if (!Array.isArray(out))
    return [{ field: 'validate', message: `${script.file} validate() returned ${typeof out}; it must return an array of 'field: message' strings` }]
  return out.map((e) => splitMessage(String(e)))
}

// 'field: message' → {field, message}; a string without a field names the front matter.
function splitMessage(s: string): ValidationIssue {
  const m = /^([A-Za-z0-9_$.[\]-]+|front matter|file name): (.*)$/s.exec(s)
  return m ? { field: m[1]!, message: m[2]! } : { field: 'front matter', message: s }
}

function noteFor(version: number, coverage: Record<UnitType, ValidationMode>, source: string): string {
  if (coverage.memory === 'schema' && coverage.wiki === 'schema') return `Checked every unit against the v${version} schema (${source}).`
  if (coverage.memory === 'structure-only' && coverage.wiki === 'structure-only') {
    return `No schema is known for v${version} (${source} defines neither schema nor validate): only front matter structure and schema_version === ${version} were checked.`
  }
  const partial = coverage.memory === 'schema' ? 'wiki pages' : 'memory notes'
  return `Checked against the v${version} schema from ${source}; for ${partial} no schema is known, so only front matter structure and schema_version === ${version} were checked.`
}
