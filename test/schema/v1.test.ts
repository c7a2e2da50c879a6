import { describe, expect, it } from 'vitest'
import { validateUnits, type ValidationUnit } from '../../src/schema/validate.js'

// Front matter as YAML lines; each case changes or removes keys of a valid unit.
type Fm = Record<string, string | null>

const MEMORY: Fm = {
  schema_version: '1',
  name: 'Debt priority order — credit cards before mortgage prepay',
  description: "'Locked: avalanche on highest-rate credit cards before any extra mortgage payments'",
  type: 'feedback',
  captured: '2026-04-15',
  last_seen: '2026-05-06',
  sources: '\n  - conversation_2026-04-15',
  confidence: 'high',
  pinned: 'false',
  expires_at: 'null',
  supersedes: 'null',
  tags: '[debt, strategy, priority]',
}
const WIKI: Fm = { schema_version: '1', type: 'wiki_page', name: 'Avalanche method', description: 'Pay minimums everywhere', tags: '[debt]', pinned: 'true' }

function text(base: Fm, change: Fm): string {
  const fm = { ...base, ...change }
  const lines = Object.entries(fm)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}:${v!.startsWith('\n') ? '' : ' '}${v}`)
  return `---\n${lines.join('\n')}\n---\nbody\n`
}

async function issuesOf(unit: ValidationUnit) {
  const r = await validateUnits([unit], { version: 1 })
  expect(r.mode).toBe('schema')
  return r.failures.flatMap((f) => f.issues.map((i) => i.field))
}

const memory = (change: Fm, name = 'feedback_debt_priority.md'): ValidationUnit => ({
  unitId: `caldwell/memory/${name}`,
  unitType: 'memory',
  text: text(MEMORY, change),
})
const wiki = (change: Fm): ValidationUnit => ({ unitId: 'caldwell/wiki/avalanche_method.md', unitType: 'wiki', text: text(WIKI, change) })

describe('built-in v1 memory note schema', () => {
  it.each<[string, Fm]>([
    ['the sample note', {}],
    ['only required keys', { pinned: null, expires_at: null, supersedes: null, tags: null }],
    ['a name of exactly 80 characters', { name: 'n'.repeat(80) }],
    ['a description of exactly 200 characters', { description: 'd'.repeat(200) }],
    ['every memory type', { type: 'reference' }],
    ['an expiry date and a superseded note', { expires_at: '2026-12-31', supersedes: 'decision_2026-q1_emergency_fund' }],
    ['a leap day', { captured: '2024-02-29' }],
    ['sources as a flow list', { sources: '[a, b]' }],
    ['extra keys', { provenance: 'v1_migrated' }],
  ])('when a memory note has %s then it is valid', async (_case, change) => {
    expect(await issuesOf(memory(change))).toEqual([])
  })

  it.each<[string, Fm, string[]]>([
    ['a name of 81 characters', { name: 'n'.repeat(81) }, ['name']],
    ['a description of 201 characters', { description: 'd'.repeat(201) }, ['description']],
    ['no name', { name: null }, ['name']],
    ['a numeric name', { name: '42' }, ['name']],
    ['an unknown type', { type: 'note' }, ['type']],
    ['the wiki type', { type: 'wiki_page' }, ['type']],
    ['a month 13', { captured: '2026-13-01' }, ['captured']],
    ['a slash date', { last_seen: '2026/05/06' }, ['last_seen']],
    ['an impossible day', { last_seen: '2026-02-30' }, ['last_seen']],
    ['no last_seen', { last_seen: null }, ['last_seen']],
    ['an empty sources list', { sources: '[]' }, ['sources']],
    ['sources as a string', { sources: 'conversation' }, ['sources']],
    ['no sources', { sources: null }, ['sources']],
    ['a numeric source', { sources: '[1]' }, ['sources[0]']],
    ['confidence certain', { confidence: 'certain' }, ['confidence']],
    ['pinned as yes', { pinned: 'yes' }, ['pinned']],
    ['a non-date expiry', { expires_at: 'soon' }, ['expires_at']],
    ['a numeric supersedes', { supersedes: '5' }, ['supersedes']],
    ['tags as a string', { tags: 'debt' }, ['tags']],
    ['a fractional schema_version', { schema_version: '1.5' }, ['schema_version']],
    ['several problems at once', { name: null, type: 'note', sources: '[]', confidence: null }, ['name', 'type', 'sources', 'confidence']],
  ])('when a memory note has %s then it fails on %j', async (_case, change, fields) => {
    expect(await issuesOf(memory(change))).toEqual(fields)
  })

  it.each([
    ['user_household.md', true],
    ['decision_2026-q2_emergency_fund.md', true],
    ['decision_2026_vector_store.md', true],
    ['reference_2026_arxiv_feeds.md', true],
    ['notes.md', false],
    ['User_household.md', false],
    ['feedback-debt.md', false],
    ['project_2026-q5_taxes.md', false],
    ['project_Taxes.md', false],
    ['user_.md', false],
  ])('when a memory note file is named %s then the file name rule holds: %s', async (name, ok) => {
    expect(await issuesOf(memory({}, name))).toEqual(ok ? [] : ['file name'])
  })
})

describe('built-in v1 wiki page schema', () => {
  it.each<[string, Fm]>([
    ['the sample page', {}],
    ['only required keys', { tags: null, pinned: null }],
    ['a file name that memory notes could not have', {}],
  ])('when a wiki page has %s then it is valid', async (_case, change) => {
    expect(await issuesOf(wiki(change))).toEqual([])
  })

  it.each<[string, Fm, string[]]>([
    ['a memory type', { type: 'feedback' }, ['type']],
    ['no type', { type: null }, ['type']],
    ['a name of 81 characters', { name: 'n'.repeat(81) }, ['name']],
    ['no description', { description: null }, ['description']],
    ['pinned as a string', { pinned: "'true'" }, ['pinned']],
    ['a tag map', { tags: '{a: 1}' }, ['tags']],
  ])('when a wiki page has %s then it fails on %j', async (_case, change, fields) => {
    expect(await issuesOf(wiki(change))).toEqual(fields)
  })
})
