import { AasError } from '../errors.js'
import type { Store } from '../git/store.js'
import type { DiffFile } from './unified.js'

// A side that exists (it has a mode) but whose bytes were not kept: a large run keeps
// blob ids only (migrate's AAS_BUFFER_MB), the bytes are in the store.
function lacksContent(f: DiffFile): boolean {
  return (f.oldMode !== null && f.oldContent === null && f.oldOid !== null) || (f.newMode !== null && f.newContent === null && f.newOid !== null)
}

export function diffNeedsStore(files: readonly DiffFile[]): boolean {
  return files.some(lacksContent)
}

// The files in chunks of `chunk`, in the order given, each with both sides' bytes: those
// not held are read from the store, one batch of blobs per chunk, so that rendering a
// diff of any size holds one chunk.
export async function* withDiffContents(store: Store, files: readonly DiffFile[], chunk = 512): AsyncGenerator<DiffFile[]> {
  for (let i = 0; i < files.length; i += chunk) {
    const slice = files.slice(i, i + chunk)
    const wanted = new Set<string>()
    for (const f of slice) {
      if (!lacksContent(f)) continue
      if (f.oldMode !== null && f.oldContent === null && f.oldOid) wanted.add(f.oldOid)
      if (f.newMode !== null && f.newContent === null && f.newOid) wanted.add(f.newOid)
    }
    const got = new Map<string, Buffer>()
    if (wanted.size > 0) for await (const { oid, content } of store.readBlobs([...wanted])) got.set(oid, content)
    const missing = [...wanted].find((oid) => !got.has(oid))
    if (missing)
      throw new AasError('STORE_CORRUPT', `Object ${missing} of the diff is missing from the store.`, {
        hint: 'Run `aas-migrate --doctor`; the store may be damaged.',
        data: { oid: missing },
      })
    yield slice.map((f) =>
      lacksContent(f)
        ? {
            ...f,
            oldContent: f.oldContent ?? (f.oldMode !== null && f.oldOid ? (got.get(f.oldOid) ?? null) : null),
            newContent: f.newContent ?? (f.newMode !== null && f.newOid ? (got.get(f.newOid) ?? null) : null),
          }
        : f,
    )
  }
}
