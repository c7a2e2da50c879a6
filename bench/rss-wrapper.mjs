// Runs a Node script in this process and, on exit, writes this process's peak RSS
// (KB) to $AAS_BENCH_RSS_FILE: the fallback when GNU time is not installed.
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const script = process.argv[2]
if (!script) throw new Error('usage: node rss-wrapper.mjs SCRIPT [ARGS...]')
process.argv.splice(1, 1) // the script sees its own argv, as if run directly
process.on('exit', () => {
  const file = process.env.AAS_BENCH_RSS_FILE
  if (file) writeFileSync(file, `${process.resourceUsage().maxRSS}\n`)
})
await import(pathToFileURL(path.resolve(script)).href)
