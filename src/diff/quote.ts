// Path quoting as git prints paths with core.quotePath=true (git's quote_c_style),
// so that `git apply` parses the headers we print for any file name.

// Escapes git writes with a letter; every other byte that needs quoting is octal.
const LETTER_ESCAPES: Record<number, string> = {
  0x07: '\\a',
  0x08: '\\b',
  0x09: '\\t',
  0x0a: '\\n',
  0x0b: '\\v',
  0x0c: '\\f',
  0x0d: '\\r',
  0x22: '\\"',
  0x5c: '\\\\',
}

function mustQuote(byte: number): boolean {
  return byte < 0x20 || byte === 0x22 || byte === 0x5c || byte >= 0x7f
}

// Quote `name` (a UTF-8 path, possibly with a/ or b/ prefix) the way git does in diff headers.
// Returns a "binary string": one char per output byte (latin1), ready to join with file bytes.
export function quoteGitPathBytes(name: string): string {
  const bytes = Buffer.from(name, 'utf8')
  if (!bytes.some(mustQuote)) return bytes.toString('latin1')
  let out = '"'
  for (const byte of bytes) {
    if (!mustQuote(byte)) out += String.fromCharCode(byte)
    else out += LETTER_ESCAPES[byte] ?? '\\' + byte.toString(8).padStart(3, '0')
  }
  return out + '"'
}

// The same quoting as a normal (UTF-16) string; the output is pure ASCII when quoted.
export function quoteGitPath(name: string): string {
  const quoted = quoteGitPathBytes(name)
  return quoted.startsWith('"') ? quoted : name
}
