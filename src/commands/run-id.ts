import { randomBytes } from 'node:crypto'

// Sortable and unique: UTC time to the second plus 6 random hex digits.
export function newRunId(now: Date = new Date()): string {
  const iso = now.toISOString()
  return `${iso.slice(0, 10).replace(/-/g, '')}T${iso.slice(11, 19).replace(/:/g, '')}Z-${randomBytes(3).toString('hex')}`
}
