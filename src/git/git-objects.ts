import { createHash } from 'node:crypto'
import { AasError } from '../errors.js'
import type { FileMode } from '../vault/walk.js'
import { AAS_IDENT } from './git-env.js'
import type { CommitInfo, CommitInput, TreeEntry } from './store.js'

// Object encoding shared by both backends, so the same files give the same ids.

export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904'

export function hashObject(type: 'blob' | 'tree' | 'commit', content: Buffer): string {
  return createHash('sha1').update(`${type} ${content.length}\0`).update(content).digest('hex')
}

export interface RawObject {
  oid: string
  content: Buffer
}

interface Dir {
  files: Map<string, { mode: FileMode; oid: string }>
  dirs: Map<string, Dir>
}

// Every tree object of a flat, vault-relative entry list, children before parents;
// the last one is the root. Throws TARBALL_INVALID-free STORE_FAILED on a path that is
// both a file and a folder (callers validate user input before).
export function buildTrees(entries: Iterable<{ path: string; mode: FileMode; oid: string }>): { root: string; trees: RawObject[] } {
  const root: Dir = { files: new Map(), dirs: new Map() }
  for (const e of entries) {
    const parts = e.path.split('/')
    let dir = root
    for (let i = 0; i < parts.length - 1; i++) {
      const name = parts[i] as string
      if (dir.files.has(name)) throw conflict(parts.slice(0, i + 1).join('/'))
      let next = dir.dirs.get(name)
      if (!next) dir.dirs.set(name, (next = { files: new Map(), dirs: new Map() }))
      dir = next
    }
    const leaf = parts[parts.length - 1] as string
    if (dir.dirs.has(leaf) || leaf === '') throw conflict(e.path)
    dir.files.set(leaf, { mode: e.mode, oid: e.oid })
  }
  const trees: RawObject[] = []
  const write = (dir: Dir): string => {
    const items: Array<{ name: string; sortKey: Buffer; mode: string; oid: string }> = []
    for (const [name, sub] of dir.dirs) {
      const oid = write(sub)
      items.push({ name, sortKey: Buffer.from(`${name}/`), mode: '40000', oid })
    }
    for (const [name, f] of dir.files) items.push({ name, sortKey: Buffer.from(name), mode: f.mode, oid: f.oid })
    items.sort((a, b) => Buffer.compare(a.sortKey, b.sortKey))
    const parts: Buffer[] = []
    for (const it of items) parts.push(Buffer.from(`${it.mode} ${it.name}\0`), Buffer.from(it.oid, 'hex'))
    const content = Buffer.concat(parts)
    const oid = hashObject('tree', content)
    trees.push({ oid, content })
    return oid
  }
  const rootOid = write(root)
  return { root: rootOid, trees }
}

function conflict(p: string): AasError {
  return new AasError('STORE_FAILED', `Path ${p} is both a file and a folder.`, {
    hint: 'A tree cannot hold a file and a folder of the same name; check the input.',
    data: { path: p },
  })
}

export interface RawTreeItem {
  name: string
  mode: string
  oid: string
}

export function parseTree(content: Buffer): RawTreeItem[] {
  const items: RawTreeItem[] = []
  let i = 0
  while (i < content.length) {
    const sp = content.indexOf(0x20, i)
    const nul = content.indexOf(0, sp)
    const mode = content.toString('latin1', i, sp)
    const name = content.toString('utf8', sp + 1, nul)
    const oid = content.toString('hex', nul + 1, nul + 21)
    items.push({ name, mode: mode.padStart(6, '0'), oid })
    i = nul + 21
  }
  return items
}

export function isFileMode(mode: string): mode is FileMode {
  return mode === '100644' || mode === '100755' || mode === '120000'
}

// A commit object's bytes: fixed identity, UTC, message verbatim (one trailing newline).
export function encodeCommit({ tree, parents, message, timestamp = Math.floor(Date.now() / 1000) }: CommitInput): Buffer {
  const ident = `${AAS_IDENT.name} <${AAS_IDENT.email}> ${timestamp} +0000`
  const lines = [`tree ${tree}`, ...parents.map((p) => `parent ${p}`), `author ${ident}`, `committer ${ident}`]
  const body = message.endsWith('\n') ? message : `${message}\n`
  return Buffer.from(`${lines.join('\n')}\n\n${body}`)
}

export function parseCommit(oid: string, content: Buffer): CommitInfo {
  const text = content.toString('utf8')
  const split = text.indexOf('\n\n')
  const head = split < 0 ? text : text.slice(0, split)
  const message = split < 0 ? '' : text.slice(split + 2)
  let tree = ''
  const parents: string[] = []
  let timestamp = 0
  for (const line of head.split('\n')) {
    if (line.startsWith('tree ')) tree = line.slice(5)
    else if (line.startsWith('parent ')) parents.push(line.slice(7))
    else if (line.startsWith('committer ')) {
      const m = / (\d+) [+-]\d{4}$/.exec(line)
      if (m) timestamp = Number(m[1])
    }
  }
  return { oid, tree, parents, message, timestamp, trailers: parseTrailers(message) }
}

// Trailers: `Key: value` lines of the message's last paragraph.
export function parseTrailers(message: string): Record<string, string> {
  const paragraphs = message.trimEnd().split(/\n\s*\n/)
  const last = paragraphs[paragraphs.length - 1] ?? ''
  const out: Record<string, string> = {}
  if (paragraphs.length < 2) return out
  for (const line of last.split('\n')) {
    const m = /^([A-Za-z0-9-]+): (.*)$/.exec(line)
    if (!m) return {}
    out[m[1] as string] = m[2] as string
  }
  return out
}

export function sortEntries<T extends { path: string }>(entries: T[]): T[] {
  return entries.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)))
}

export type { TreeEntry }
