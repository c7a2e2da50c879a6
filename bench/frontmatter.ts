// Times parse + edit (the v1 -> v2 bump plus a provenance key) + write of
// generated units. Usage: npx tsx bench/frontmatter.ts [count] [--json]
import { performance } from 'node:perf_hooks'
import { parseUnitText } from '../src/vault/frontmatter.js'
import { generateUnitCorpus } from '../test/helpers/unit-corpus.js'

export interface FrontmatterBenchResult {
  units: number
  parseMs: number
  editMs: number
  writeMs: number
  totalMs: number
  cpuMs: number // user + system CPU time of the timed loop (the machine may be shared)
  edited: number
}

export function runFrontmatterBench({ count = 10_000, seed = 1 }: { count?: number; seed?: number } = {}): FrontmatterBenchResult {
  const corpus = generateUnitCorpus({ count, seed })
  let parseMs = 0
  let editMs = 0
  let writeMs = 0
  let edited = 0
  let bytes = 0
  const cpu0 = process.cpuUsage()
  for (const { name, text } of corpus) {
    const t0 = performance.now()
    const parsed = parseUnitText(text)
    const t1 = performance.now()
    if (!parsed.ok) throw new Error(`${name}: ${parsed.error.message}`)
    const meta = parsed.unit.readFrontmatter()
    if (meta.schema_version === 1) {
      meta.schema_version = 2
      meta.provenance ??= 'v1_migrated'
      parsed.unit.writeFrontmatter(meta)
      edited++
    }
    const t2 = performance.now()
    bytes += parsed.unit.toString().length
    const t3 = performance.now()
    parseMs += t1 - t0
    editMs += t2 - t1
    writeMs += t3 - t2
  }
  const cpu = process.cpuUsage(cpu0)
  if (bytes === 0) throw new Error('nothing written')
  const round = (n: number): number => Math.round(n)
  return {
    units: count,
    parseMs: round(parseMs),
    editMs: round(editMs),
    writeMs: round(writeMs),
    totalMs: round(parseMs + editMs + writeMs),
    cpuMs: round((cpu.user + cpu.system) / 1000),
    edited,
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop() ?? '')
if (invokedDirectly) {
  const count = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 10_000)
  runFrontmatterBench({ count: Math.min(count, 1000), seed: 99 }) // warm-up
  const result = runFrontmatterBench({ count })
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`)
  else
    process.stdout.write(
      `frontmatter: ${result.units} units (${result.edited} edited): parse ${result.parseMs} ms + edit ${result.editMs} ms + write ${result.writeMs} ms = ${result.totalMs} ms (cpu ${result.cpuMs} ms)\n`,
    )
}
