import { AasError } from '../../errors.js'
import { JSON_SCHEMA_VERSION } from './json.js'

export function renderErrorText(err: AasError): string {
  let text = `Error: ${err.message}\n`
  if (err.hint) text += `  fix: ${err.hint}\n`
  return text
}

export function renderErrorJson(err: AasError): string {
  return `${JSON.stringify({ schemaVersion: JSON_SCHEMA_VERSION, ok: false, error: err.toJSON() }, null, 2)}\n`
}

// An unexpected failure still gets an Error: line and a non-zero exit, with the cause kept.
export function toAasError(err: unknown): AasError {
  if (err instanceof AasError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new AasError('IO_FAILED', `unexpected failure: ${message}`, {
    hint: 'Nothing was changed past the last completed step; run `aas-migrate --doctor` and report this if it repeats.',
    cause: err,
  })
}
