import type { AasError } from '../../errors.js'

// Bumped when a --json document changes shape incompatibly (docs/json.md).
export const JSON_SCHEMA_VERSION = 1

export interface JsonError {
  code: string
  message: string
  hint: string | null
  data: Record<string, unknown>
}

export function errorJson(err: AasError): JsonError {
  return { code: err.code, message: err.message, hint: err.hint ?? null, data: err.data }
}

// Every --json document: schemaVersion, command, ok, error (null when ok), then the
// command's own fields (docs/json.md). `command` is null when the flags did not parse.
export function renderJson(command: string | null, body: Record<string, unknown>, error: AasError | null = null): string {
  const doc = { schemaVersion: JSON_SCHEMA_VERSION, command, ok: error === null, error: error ? errorJson(error) : null, ...body }
  return `${JSON.stringify(doc, null, 2)}\n`
}
