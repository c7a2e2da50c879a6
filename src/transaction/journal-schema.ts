import { z } from 'zod'

// The journal as read back from disk (readJournal in journal.ts, which loads this module
// only then): anything else is STORE_CORRUPT. A journal being written is checked by
// invalidJournal (journal.ts) instead, without loading the schema library.

const oid = z.string().regex(/^[0-9a-f]{40}$/)
const mode = z.enum(['100644', '100755', '120000'])
const changeSchema = z
  .object({ path: z.string().min(1), oldOid: oid.nullable(), oldMode: mode.nullable(), newOid: oid.nullable(), newMode: mode.nullable() })
  .refine((c) => (c.oldOid === null) === (c.oldMode === null) && (c.newOid === null) === (c.newMode === null), {
    message: 'oid and mode must be both set or both null',
  })

export const journalSchema = z.object({
  format: z.literal('aas-journal'),
  version: z.literal(1),
  runId: z.string().min(1),
  kind: z.enum(['migrate', 'rollback']),
  agentsRoot: z.string().min(1),
  from: oid,
  to: oid,
  changes: z.array(changeSchema),
  startedAt: z.string().min(1),
})
