import path from 'node:path'
import type { AtomicValidators, PythonProbe } from './python-interpreter.js'

// Which validators a run would use, for --status and --doctor.
export type ValidatorsInfo =
  | { kind: 'atomic-agents'; label: string; schemaVersion: number | null; note: boolean; wiki: boolean; error: string | null }
  | { kind: 'built-in'; reason: string }

export function validatorsInfo(probe: PythonProbe): ValidatorsInfo {
  if (!probe.version) return { kind: 'built-in', reason: `no Python interpreter (${probe.command}) to look for atomic-agents in` }
  const v = probe.validators
  if (!probe.atomicAgents || !v) return { kind: 'built-in', reason: `atomic_agents is not installed in ${probe.executable ?? probe.command}` }
  const label = labelOf(v, probe.atomicAgents)
  if (!probe.ok)
    return { kind: 'built-in', reason: `${label} is installed, but ${probe.command} cannot run it: ${String(probe.error?.data.reason ?? 'unusable')}` }
  if (!v.error && !v.note && !v.wiki) return { kind: 'built-in', reason: `${label} has no validate_atomic_note_frontmatter or validate_wiki_frontmatter` }
  return { kind: 'atomic-agents', label, schemaVersion: v.schemaVersion, note: v.note, wiki: v.wiki, error: v.error }
}

export function labelOf(v: AtomicValidators, origin: string): string {
  const dir = path.basename(origin) === '__init__.py' ? path.dirname(origin) : origin
  return `atomic-agents${v.package ? ` ${v.package}` : ''} (${dir})`
}
