// The read+write floor: a plain Node loop that reads every unit and writes it to a
// copy (no parsing, no hashing, no fsync). Usage: node bench/floor-child.mjs LIST FROM TO
// where LIST is a file of vault-relative unit paths, one a line.
import { mkdirSync, readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'

const [list, from, to] = process.argv.slice(2)
if (!list || !from || !to) throw new Error('usage: node bench/floor-child.mjs LIST FROM TO')
const units = readFileSync(list, 'utf8').split('\n').filter(Boolean)
const made = new Set()
for (const rel of units) {
  const dir = path.dirname(path.join(to, rel))
  if (!made.has(dir)) {
    mkdirSync(dir, { recursive: true })
    made.add(dir)
  }
  await writeFile(path.join(to, rel), await readFile(path.join(from, rel)))
}
process.stdout.write(`${units.length}\n`)
