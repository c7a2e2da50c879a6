import { z } from 'zod'

// The built-in v1 validators, as atomic-agents defines them (docs/how-it-works.md,
// "Validation"). Values are checked as written: dates are 'YYYY-MM-DD' strings, never
// Date objects.

const required = (what: string) => (iss: { input?: unknown }) => (iss.input === undefined ? 'is required' : `must be ${what}`)

const text = (max: number) => z.string({ error: required('a string') }).max(max, { error: `must be at most ${max} characters` })
const date = () => z.iso.date({ error: required('a date written YYYY-MM-DD') })
const stringList = () => z.array(z.string({ error: 'must be a string' }), { error: required('a list of strings') })

export const MEMORY_TYPES_V1 = ['user', 'feedback', 'project', 'decision', 'reference'] as const

// Memory note file names: <type>[_YYYY[-qN]]_<slug>.md
export const MEMORY_FILE_NAME_V1 = /^(user|feedback|project|decision|reference)(_\d{4}(-q[1-4])?)?_[a-z0-9_]+\.md$/

export const memoryNoteV1 = z.object({
  schema_version: z.int({ error: required('an integer') }),
  name: text(80),
  description: text(200),
  type: z.enum(MEMORY_TYPES_V1, { error: required(`one of ${MEMORY_TYPES_V1.join(', ')}`) }),
  captured: date(),
  last_seen: date(),
  sources: stringList().min(1, { error: 'must list at least one source' }),
  confidence: z.enum(['high', 'medium', 'low'], { error: required('one of high, medium, low') }),
  pinned: z.boolean({ error: 'must be true or false' }).optional(),
  expires_at: z.iso.date({ error: 'must be a date written YYYY-MM-DD, or null' }).nullable().optional(),
  supersedes: z.string({ error: 'must be a string or null' }).nullable().optional(),
  tags: stringList().optional(),
})

export const wikiPageV1 = z.object({
  schema_version: z.int({ error: required('an integer') }),
  type: z.literal('wiki_page', { error: required('wiki_page') }),
  name: text(80),
  description: text(200),
  tags: stringList().optional(),
  pinned: z.boolean({ error: 'must be true or false' }).optional(),
})

export const schemaV1 = { memory: memoryNoteV1, wiki: wikiPageV1 } as const

// The file-name rule for v1 memory notes, as an issue message or null when it holds.
export function memoryFileNameIssueV1(unitId: string): string | null {
  const name = unitId.slice(unitId.lastIndexOf('/') + 1)
  return MEMORY_FILE_NAME_V1.test(name) ? null : `${name} must match <type>[_YYYY[-qN]]_<words>.md, i.e. ${MEMORY_FILE_NAME_V1.source}`
}
