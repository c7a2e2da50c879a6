import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'

// A deterministic, realistic v1 vault: several agents (one cascaded role), memory
// notes and wiki pages with valid v1 front matter and ~2 KB bodies, INDEX files,
// persona files and run logs. Same seed, same bytes.
export interface GenVaultOptions {
  units: number
  seed?: number
  bodyBytes?: number
}

const AGENTS = ['caldwell', 'scout', 'writer', 'ledger', 'projects/atlas/agents/researcher', 'projects/atlas/agents/reviewer']
const TYPES = ['user', 'feedback', 'project', 'decision', 'reference'] as const
const WORDS =
  'budget debt avalanche mortgage savings invoice research paper citation draft outline chart feed summary review decision cost plan quarter tax note source memory wiki agent'.split(
    ' ',
  )

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 0x100000000
  }
}

export async function generateVault(root: string, { units, seed = 1, bodyBytes = 2000 }: GenVaultOptions): Promise<string[]> {
  const rand = rng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const words = (n: number): string => Array.from({ length: n }, () => pick(WORDS)).join(' ')
  const paths: string[] = []
  for (const agent of AGENTS) {
    await mkdir(path.join(root, agent, 'memory'), { recursive: true })
    await mkdir(path.join(root, agent, 'wiki'), { recursive: true })
    await mkdir(path.join(root, agent, 'log'), { recursive: true })
    await writeFile(path.join(root, agent, 'persona.md'), `# ${agent}\n\n${words(30)}\n`)
    await writeFile(path.join(root, agent, 'memory', 'INDEX.md'), `# Memory of ${agent}\n`)
    await writeFile(path.join(root, agent, 'log', 'run_2026-05-01.jsonl'), `{"event":"start","agent":"${agent}"}\n`)
  }
  const dirsMade = new Set<string>()
  for (let i = 0; i < units; i++) {
    const agent = AGENTS[i % AGENTS.length] as string
    const wiki = i % 5 === 4
    const bucket = `b${Math.floor(i / 500)}`
    const dir = path.join(agent, wiki ? 'wiki' : 'memory', bucket)
    if (!dirsMade.has(dir)) {
      await mkdir(path.join(root, dir), { recursive: true })
      dirsMade.add(dir)
    }
    const type = pick(TYPES)
    const name = wiki ? `page_${i}.md` : `${type}_${pick(WORDS)}_${i}.md`
    const crlf = i % 97 === 0
    const day = String(1 + (i % 28)).padStart(2, '0')
    const fm = wiki
      ? [`schema_version: 1`, `type: wiki_page`, `name: ${words(3)} ${i}`, `description: "${words(8)}"`, `tags: [${pick(WORDS)}, ${pick(WORDS)}]`]
      : [
          `schema_version: 1`,
          `name: ${words(4)} ${i}`,
          `description: '${words(10)}'`,
          `type: ${type}`,
          `captured: 2026-03-${day}`,
          `last_seen: 2026-04-${day}`,
          `sources:`,
          `  - conversation_2026-03-${day}`,
          `confidence: ${pick(['high', 'medium', 'low'])}`,
          ...(i % 3 === 0 ? [`pinned: false`, `expires_at: null`] : []),
          `tags: [${pick(WORDS)}, ${pick(WORDS)}]  # ${words(2)}`,
        ]
    let body = ''
    while (body.length < bodyBytes) body += `${words(12)}.\n`
    const eol = crlf ? '\r\n' : '\n'
    const text = `---\n${fm.join('\n')}\n---\n${body}`.replace(/\n/g, eol)
    const rel = `${dir}/${name}`.split(path.sep).join('/')
    await writeFile(path.join(root, rel), text)
    paths.push(rel)
  }
  return paths
}
