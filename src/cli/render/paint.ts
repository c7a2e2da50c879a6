import { ansi } from '../../diff/unified.js'

// Colors like git's, only when enabled (a TTY, no --no-color, no NO_COLOR).
export interface Paint {
  enabled: boolean
  error(text: string): string
  warn(text: string): string
  ok(text: string): string
  bold(text: string): string
}

export function makePaint(enabled: boolean): Paint {
  const p = (code: string) => (text: string) => (enabled ? ansi.paint(code, text) : text)
  return { enabled, error: p(`${ansi.bold}${ansi.red}`), warn: p('\x1b[33m'), ok: p(ansi.green), bold: p(ansi.bold) }
}
