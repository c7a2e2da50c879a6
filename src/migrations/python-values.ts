import { PlainScalar, type FrontmatterValue } from '../vault/frontmatter-values.js'

// Values as the Python bridge sends them (see python/bridge.py) turned into front
// matter values for the minimal-diff editor. Dates, datetimes and floats come as
// PlainScalars, so they are written as PyYAML writes them (`2026-01-01` unquoted,
// `2.0`) and read by this tool as the strings and numbers it always reads them as.

export class BadBridgeValue extends Error {}

const SPECIAL_FLOATS: Record<string, number> = { '.nan': NaN, '.inf': Infinity, '-.inf': -Infinity, '+.inf': Infinity }
const DATE = /^\d{4}-\d\d-\d\d$/
// What PyYAML writes for a datetime (isoformat with a space): the engine's YAML 1.2
// reader takes it, unquoted, for the same string.
const DATETIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d(:\d\d(\.\d+)?)?)?$/
const FLOAT = /^[-+]?(\.\d+|\d+(\.\d*)?)(e[-+]?\d+)?$/

export function fromBridgeValue(value: unknown): FrontmatterValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new BadBridgeValue(`a number ${value} that is not a safe integer`)
    return value
  }
  if (Array.isArray(value)) return value.map(fromBridgeValue)
  if (typeof value !== 'object') throw new BadBridgeValue(`a ${typeof value}`)
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
  if (keys.length === 1) {
    const tag = keys[0] as string
    const text = obj[tag]
    if (tag === '$date' && typeof text === 'string' && DATE.test(text)) return new PlainScalar(text, text)
    if (tag === '$datetime' && typeof text === 'string' && DATETIME.test(text)) return new PlainScalar(text, text)
    if (tag === '$float' && typeof text === 'string') {
      const n = SPECIAL_FLOATS[text] ?? (FLOAT.test(text) ? Number(text) : undefined)
      if (n === undefined) throw new BadBridgeValue(`a float written ${JSON.stringify(text)}`)
      return new PlainScalar(text, n)
    }
    if (tag === '$map' && typeof text === 'object' && text !== null && !Array.isArray(text)) return mapOf(text as Record<string, unknown>)
    if (tag.startsWith('$')) throw new BadBridgeValue(`an unknown tag ${tag}`)
  }
  return mapOf(obj)
}

function mapOf(obj: Record<string, unknown>): Record<string, FrontmatterValue> {
  const out: Record<string, FrontmatterValue> = {}
  for (const [k, v] of Object.entries(obj)) setKey(out, k, fromBridgeValue(v))
  return out
}

// out[key] = value, also for a key named __proto__ (an own key, not the prototype).
export function setKey(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
  else out[key] = value
}
