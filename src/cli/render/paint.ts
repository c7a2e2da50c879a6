// The ANSI codes git uses by default, as in `ansi` of src/diff/unified.ts (not imported
// from there: that module loads the diff engine, which `--status` does not need;
// test/cli/startup.test.ts checks that both agree).
export const PAINT_CODES = { reset: '\x1b[m', bold: '\x1b[1m', red: '\x1b[31m', green: '\x1b[32m', yellow: '\x1b[33m' } as const

// Colors like git's, only when enabled (a TTY, no --no-color, no NO_COLOR).
export interface Paint {
  enabled: boolean
  error(text: string): string
  warn(text: string): string
  ok(text: string): string
  bold(text: string): string
}

export function makePaint(enabled: boolean): Paint {
  const c = PAINT_CODES
  const p = (code: string) => (text: string) => (enabled ? `${code}${text}${c.reset}` : text)
  return { enabled, error: p(`${c.bold}${c.red}`), warn: p(c.yellow), ok: p(c.green), bold: p(c.bold) }
}
