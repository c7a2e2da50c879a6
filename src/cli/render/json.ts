// Bumped when a --json document changes shape incompatibly (docs/json.md).
export const JSON_SCHEMA_VERSION = 1

export function renderJson(command: string, body: Record<string, unknown>): string {
  return `${JSON.stringify({ schemaVersion: JSON_SCHEMA_VERSION, ok: true, command, ...body }, null, 2)}\n`
}
