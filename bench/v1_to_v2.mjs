// v1 -> v2 for the benchmark vaults: schema_version 2 and a provenance key, with the
// v2 validation (the same script as fixtures/migrations/v1_to_v2.mjs).
const DATE = /^\d{4}-\d{2}-\d{2}$/

export default {
  from: 1,
  to: 2,
  description: 'add provenance',
  appliesTo(unit) {
    return unit.readFrontmatter().schema_version === 1
  },
  migrate(unit) {
    const meta = unit.readFrontmatter()
    meta.schema_version = 2
    meta.provenance ??= 'v1_migrated'
    unit.writeFrontmatter(meta)
    return { changes: ['schema_version 1→2', 'provenance added'] }
  },
  // The v2 schema: v1's required keys plus a provenance string.
  validate(meta, unit) {
    const errors = []
    if (typeof meta.provenance !== 'string' || meta.provenance === '') errors.push('provenance: is required and must be a non-empty string')
    if (typeof meta.name !== 'string' || meta.name.length > 80) errors.push('name: must be a string of at most 80 characters')
    if (typeof meta.description !== 'string' || meta.description.length > 200) errors.push('description: must be a string of at most 200 characters')
    if (unit.unitType === 'memory') {
      for (const key of ['captured', 'last_seen']) {
        if (typeof meta[key] !== 'string' || !DATE.test(meta[key])) errors.push(`${key}: must be a date written YYYY-MM-DD`)
      }
    } else if (meta.type !== 'wiki_page') {
      errors.push('type: must be wiki_page')
    }
    return errors
  },
}
