import { readFileSync } from 'node:fs'

// Read once from package.json so --version and the commit trailers agree.
export const ENGINE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
